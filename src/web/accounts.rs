//! Pages for signing up, confirming the address, signing in and out, resetting the
//! password, and the account settings (email, password, deletion). Thin: each handler
//! reads the form, calls one function of [`crate::account`], and renders the outcome.

use maud::{html, Markup};
use warp::http::StatusCode;

use super::forms::{self, Form};
use super::pages::{layout_for, notice_for};
use super::{html_status, see_other, Request, Response};
use crate::account::{self, session, Account, SignUp};
use crate::pod::Pod;
use crate::{Error, Result};

fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A page with the navigation for `user`; sets the CSRF cookie when the browser has none.
pub fn page(
    pod: &Pod,
    req: &Request,
    status: StatusCode,
    user: Option<&Account>,
    title: &str,
    body: Markup,
) -> Response {
    let (csrf, set) = forms::csrf(pod, req);
    let viewer = user.map(|u| (u, csrf.as_str()));
    forms::with_cookie(html_status(status, layout_for(viewer, title, body)), set)
}

fn error_box(error: Option<&str>) -> Markup {
    html! { @if let Some(e) = error { p.notice.error role="alert" { (e) } } }
}

// ----- sign up -----

pub async fn sign_up_form(pod: &Pod, req: &Request) -> Result<Response> {
    render_sign_up(pod, req, StatusCode::OK, None, "", "")
}

fn render_sign_up(
    pod: &Pod,
    req: &Request,
    status: StatusCode,
    error: Option<&str>,
    username: &str,
    email: &str,
) -> Result<Response> {
    let (csrf, _) = forms::csrf(pod, req);
    if !pod.config.accounts.open_registrations {
        let body = html! { h1 { "Sign up" } p.notice { "Registrations are closed on this pod." } };
        return Ok(page(pod, req, StatusCode::FORBIDDEN, None, "Sign up", body));
    }
    let body = html! {
        h1 { "Create an account on " (pod.config.public_host()) }
        (error_box(error))
        form.stack method="post" action="/users/sign_up" {
            (csrf_field(&csrf))
            label for="username" { "Username" }
            input #username type="text" name="username" value=(username) required maxlength="32" pattern="[a-z0-9_]{1,32}" autocomplete="username";
            p.hint { "1 to 32 characters: a–z, 0–9 and _. Your diaspora* ID will be " code { "username@" (pod.config.public_host()) } "." }
            label for="email" { "Email address" }
            input #email type="email" name="email" value=(email) required autocomplete="email";
            p.hint { "We send a link to confirm it. If this pod ever disappears, restoring your account depends on this mailbox." }
            label for="password" { "Password" }
            input #password type="password" name="password" required minlength="8" autocomplete="new-password";
            p.hint { "At least 8 characters." }
            fieldset {
                legend { "Encrypted backup" }
                p.hint { "This pod keeps an encrypted copy of your account on another pod, so you can bring it back if this pod ever disappears. Only this pass phrase opens it: write it down and keep it safe. We never store it and cannot recover it." }
                label for="passphrase" { "Backup pass phrase" }
                input #passphrase type="password" name="passphrase" minlength="12" autocomplete="new-password";
                p.hint { "At least 12 characters and hard to guess, e.g. four or five unrelated words." }
                label { input type="checkbox" name="no_backups"; " No encrypted backups for me (you can turn them on later in your settings)" }
            }
            button type="submit" { "Create account" }
        }
        p { "Already have an account? " a href="/users/sign_in" { "Sign in" } "." }
    };
    Ok(page(pod, req, status, None, "Sign up", body))
}

pub async fn sign_up(pod: &Pod, req: &mut Request) -> Result<Response> {
    let form = forms::read(req, pod.config.server.max_body_bytes).await?;
    if !pod.limits.mail_forms.allow(&req.client.key()) {
        return Err(Error::RateLimited(
            "too many sign-ups from your address; try again later".into(),
        ));
    }
    let username = form.text("username").trim().to_ascii_lowercase();
    let email = form.text("email").to_string();
    if form.optional("passphrase").is_none() && !form.checked("no_backups") {
        let message = "choose a backup pass phrase, or tick \"No encrypted backups\"";
        return render_sign_up(pod, req, StatusCode::BAD_REQUEST, Some(message), &username, &email);
    }
    let result = account::sign_up(
        pod,
        SignUp {
            username: username.clone(),
            email: email.clone(),
            password: form.text("password").to_string(),
            passphrase: form.optional("passphrase"),
            backups_opted_out: form.checked("no_backups"),
        },
    )
    .await;
    match result {
        Ok(account) => {
            let id = session::start(pod, &account).await?;
            let mut response = see_other("/settings?done=signed_up")?;
            let cookie = forms::set_cookie(pod, forms::SESSION_COOKIE, &id, None, "Lax");
            response = forms::with_cookie(response, Some(cookie));
            Ok(response)
        }
        Err(e @ (Error::BadRequest(_) | Error::Conflict(_))) => {
            render_sign_up(pod, req, e.status(), Some(&e.client_message()), &username, &email)
        }
        Err(e) => Err(e),
    }
}

// ----- confirm email -----

pub async fn confirm_email_page(pod: &Pod, req: &Request) -> Result<Response> {
    let (csrf, _) = forms::csrf(pod, req);
    let token = req.query_param("token").unwrap_or_default();
    let user = forms::signed_in(pod, req)?;
    let body = html! {
        h1 { "Confirm your email address" }
        p { "Press the button to confirm that this mailbox belongs to your account." }
        form method="post" action="/users/confirm_email" {
            (csrf_field(&csrf))
            input type="hidden" name="token" value=(token);
            button type="submit" { "Confirm my address" }
        }
    };
    Ok(no_referrer(page(
        pod,
        req,
        StatusCode::OK,
        user.as_ref(),
        "Confirm your email address",
        body,
    )))
}

pub async fn confirm_email(pod: &Pod, req: &mut Request) -> Result<Response> {
    let form = forms::read(req, pod.config.server.max_body_bytes).await?;
    let username = account::confirm_email(pod, form.text("token")).await?;
    let user = forms::signed_in(pod, req)?;
    let body = html! {
        h1 { "Address confirmed" }
        p.notice.ok { "Thank you: the email address of " strong { (username) } " is confirmed." }
        @if user.is_some() { p { a href="/settings" { "Back to your settings" } } } @else { p { a href="/users/sign_in" { "Sign in" } } }
    };
    Ok(no_referrer(page(
        pod,
        req,
        StatusCode::OK,
        user.as_ref(),
        "Address confirmed",
        body,
    )))
}

fn no_referrer(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert("referrer-policy", warp::http::HeaderValue::from_static("no-referrer"));
    response
}

// ----- sign in / out -----

pub async fn sign_in_form(pod: &Pod, req: &Request) -> Result<Response> {
    render_sign_in(pod, req, StatusCode::OK, None, "")
}

fn render_sign_in(pod: &Pod, req: &Request, status: StatusCode, error: Option<&str>, login: &str) -> Result<Response> {
    let (csrf, _) = forms::csrf(pod, req);
    let body = html! {
        h1 { "Sign in" }
        (error_box(error))
        form.stack method="post" action="/users/sign_in" {
            (csrf_field(&csrf))
            label for="login" { "Username or email address" }
            input #login type="text" name="login" value=(login) required autocomplete="username";
            label for="password" { "Password" }
            input #password type="password" name="password" required autocomplete="current-password";
            button type="submit" { "Sign in" }
        }
        p { a href="/users/password/forgot" { "Forgot your password?" } }
        @if pod.config.accounts.open_registrations { p { "New here? " a href="/users/sign_up" { "Create an account" } "." } }
    };
    Ok(page(pod, req, status, None, "Sign in", body))
}

pub async fn sign_in(pod: &Pod, req: &mut Request) -> Result<Response> {
    let form = forms::read(req, pod.config.server.max_body_bytes).await?;
    let login = form.text("login").trim().to_string();
    if !pod.limits.sign_in.allow(&req.client.key())
        || !pod
            .limits
            .sign_in
            .allow(&format!("user:{}", login.to_ascii_lowercase()))
    {
        return render_sign_in(
            pod,
            req,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many sign-in attempts. Wait a few minutes and try again."),
            &login,
        );
    }
    match account::sign_in(pod, &login, form.text("password")).await {
        Ok(account) => {
            let id = session::start(pod, &account).await?;
            tracing::info!(username = %account.username, "signed in");
            let cookie = forms::set_cookie(pod, forms::SESSION_COOKIE, &id, None, "Lax");
            Ok(forms::with_cookie(see_other("/settings")?, Some(cookie)))
        }
        Err(e @ (Error::Unauthorized(_) | Error::Gone(_))) => {
            render_sign_in(pod, req, e.status(), Some(&e.client_message()), &login)
        }
        Err(e) => Err(e),
    }
}

pub async fn sign_out(pod: &Pod, req: &mut Request) -> Result<Response> {
    forms::read(req, pod.config.server.max_body_bytes).await?;
    if let Some(id) = forms::cookie(req, forms::SESSION_COOKIE) {
        session::end(pod, &id).await?;
    }
    let clear = forms::set_cookie(pod, forms::SESSION_COOKIE, "", Some(0), "Lax");
    Ok(forms::with_cookie(see_other("/")?, Some(clear)))
}

// ----- password reset -----

pub async fn forgot_form(pod: &Pod, req: &Request) -> Result<Response> {
    let (csrf, _) = forms::csrf(pod, req);
    let body = html! {
        h1 { "Forgot your password?" }
        form.stack method="post" action="/users/password/forgot" {
            (csrf_field(&csrf))
            label for="email" { "Your account's email address" }
            input #email type="email" name="email" required autocomplete="email";
            button type="submit" { "Send me a link" }
        }
    };
    Ok(page(pod, req, StatusCode::OK, None, "Forgot your password?", body))
}

pub async fn forgot(pod: &Pod, req: &mut Request) -> Result<Response> {
    let form = forms::read(req, pod.config.server.max_body_bytes).await?;
    if pod.limits.mail_forms.allow(&req.client.key()) {
        account::request_password_reset(pod, form.text("email")).await?;
    }
    let body = html! {
        h1 { "Check your email" }
        p { "If an account on this pod uses this address, we have sent it a link to choose a new password. The link works for one hour." }
    };
    Ok(page(pod, req, StatusCode::OK, None, "Check your email", body))
}

pub async fn reset_form(pod: &Pod, req: &Request) -> Result<Response> {
    render_reset(
        pod,
        req,
        StatusCode::OK,
        None,
        &req.query_param("token").unwrap_or_default(),
    )
}

fn render_reset(pod: &Pod, req: &Request, status: StatusCode, error: Option<&str>, token: &str) -> Result<Response> {
    let (csrf, _) = forms::csrf(pod, req);
    let body = html! {
        h1 { "Choose a new password" }
        (error_box(error))
        form.stack method="post" action="/users/password/reset" {
            (csrf_field(&csrf))
            input type="hidden" name="token" value=(token);
            label for="password" { "New password" }
            input #password type="password" name="password" required minlength="8" autocomplete="new-password";
            button type="submit" { "Set password" }
        }
    };
    Ok(no_referrer(page(pod, req, status, None, "Choose a new password", body)))
}

pub async fn reset(pod: &Pod, req: &mut Request) -> Result<Response> {
    let form = forms::read(req, pod.config.server.max_body_bytes).await?;
    match account::reset_password(pod, form.text("token"), form.text("password")).await {
        Ok(_) => {
            let body = html! { h1 { "Password changed" } p.notice.ok { "Your new password is set. Every earlier sign-in has ended." } p { a href="/users/sign_in" { "Sign in" } } };
            Ok(no_referrer(page(
                pod,
                req,
                StatusCode::OK,
                None,
                "Password changed",
                body,
            )))
        }
        Err(e @ Error::BadRequest(_)) => {
            render_reset(pod, req, e.status(), Some(&e.client_message()), form.text("token"))
        }
        Err(e) => Err(e),
    }
}

// ----- settings -----

/// Redirects to sign-in when nobody is signed in.
pub fn require(pod: &Pod, req: &Request) -> Result<std::result::Result<Account, Response>> {
    match forms::signed_in(pod, req)? {
        Some(account) => Ok(Ok(account)),
        None => Ok(Err(see_other("/users/sign_in")?)),
    }
}

pub async fn settings(pod: &Pod, req: &Request) -> Result<Response> {
    let account = match require(pod, req)? {
        Ok(a) => a,
        Err(redirect) => return Ok(redirect),
    };
    render_settings(pod, req, &account, StatusCode::OK, None)
}

pub(crate) fn render_settings(
    pod: &Pod,
    req: &Request,
    account: &Account,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response> {
    let (csrf, _) = forms::csrf(pod, req);
    let done = req.query_param("done");
    let host = pod.config.public_host();
    let body = html! {
        h1 { "Settings" }
        (notice_for(done.as_deref()))
        (error_box(error))
        section.card {
            h2 { "Your account" }
            p { "Your diaspora* ID is " strong { (account.diaspora_id(&host)) } "." }
            @if pod.config.accounts.admins.contains(&account.username) {
                p { "You are an admin of this pod: " a href="/admin" { "pod administration" } "." }
            }
            p { "Email: " (account.email) " — "
                @if account.email_confirmed { "confirmed" } @else { strong { "not confirmed yet" } ": check your mailbox for the link." }
            }
        }
        (moves_section(pod, account, &csrf)?)
        (backup_section(account, &csrf))
        (super::backup_sync::section(pod, account, &csrf, done.as_deref()))
        (download_section(account, &csrf, pod))
        section.card {
            h2 { "Change email address" }
            form.stack method="post" action="/settings/email" {
                (csrf_field(&csrf))
                label for="new_email" { "New email address" }
                input #new_email type="email" name="email" required;
                label for="email_password" { "Current password" }
                input #email_password type="password" name="password" required autocomplete="current-password";
                p.hint { "We send a link to the new address; it takes effect when you open it." }
                button type="submit" { "Change email" }
            }
        }
        section.card {
            h2 { "Change password" }
            form.stack method="post" action="/settings/password" {
                (csrf_field(&csrf))
                label for="current_password" { "Current password" }
                input #current_password type="password" name="current" required autocomplete="current-password";
                label for="new_password" { "New password" }
                input #new_password type="password" name="password" required minlength="8" autocomplete="new-password";
                button type="submit" { "Change password" }
            }
        }
        section.card {
            h2 { "Delete account" }
            p { "This closes your account for good: your profile, contacts and keys are deleted, and your username is never given to anyone else." }
            form.stack method="post" action="/settings/delete" {
                (csrf_field(&csrf))
                label for="delete_password" { "Current password" }
                input #delete_password type="password" name="password" required autocomplete="current-password";
                button.danger type="submit" { "Delete my account" }
            }
        }
    };
    Ok(page(pod, req, status, Some(account), "Settings", body))
}

async fn settings_form(pod: &Pod, req: &mut Request) -> Result<std::result::Result<(Account, Form), Response>> {
    let form = forms::read(req, pod.config.server.max_body_bytes).await?;
    Ok(require(pod, req)?.map(|account| (account, form)))
}

pub async fn change_email(pod: &Pod, req: &mut Request) -> Result<Response> {
    let (account, form) = match settings_form(pod, req).await? {
        Ok(x) => x,
        Err(redirect) => return Ok(redirect),
    };
    match account::change_email(pod, &account.username, form.text("password"), form.text("email")).await {
        Ok(_) => see_other("/settings?done=email_sent"),
        Err(e @ (Error::BadRequest(_) | Error::Conflict(_) | Error::Unauthorized(_))) => {
            render_settings(pod, req, &account, e.status(), Some(&e.client_message()))
        }
        Err(e) => Err(e),
    }
}

pub async fn change_password(pod: &Pod, req: &mut Request) -> Result<Response> {
    let (account, form) = match settings_form(pod, req).await? {
        Ok(x) => x,
        Err(redirect) => return Ok(redirect),
    };
    match account::change_password(pod, &account.username, form.text("current"), form.text("password")).await {
        Ok(()) => {
            // The change ended every session, this one included: open a new one.
            let account = account::open_account(&pod.store, &account.username)?;
            let id = session::start(pod, &account).await?;
            let cookie = forms::set_cookie(pod, forms::SESSION_COOKIE, &id, None, "Lax");
            Ok(forms::with_cookie(
                see_other("/settings?done=password_changed")?,
                Some(cookie),
            ))
        }
        Err(e @ (Error::BadRequest(_) | Error::Unauthorized(_))) => {
            render_settings(pod, req, &account, e.status(), Some(&e.client_message()))
        }
        Err(e) => Err(e),
    }
}

pub async fn delete(pod: &Pod, req: &mut Request) -> Result<Response> {
    let (account, form) = match settings_form(pod, req).await? {
        Ok(x) => x,
        Err(redirect) => return Ok(redirect),
    };
    match crate::people::profiles::delete_account(pod, &account.username, form.text("password")).await {
        Ok(()) => {
            let clear = forms::set_cookie(pod, forms::SESSION_COOKIE, "", Some(0), "Lax");
            let body = html! { h1 { "Account deleted" } p { "Your account is closed and its data deleted." } };
            Ok(forms::with_cookie(
                page(pod, req, StatusCode::OK, None, "Account deleted", body),
                Some(clear),
            ))
        }
        Err(e @ Error::Unauthorized(_)) => render_settings(pod, req, &account, e.status(), Some(&e.client_message())),
        Err(e) => Err(e),
    }
}

fn backup_section(account: &Account, csrf: &str) -> Markup {
    html! {
        section.card #backup {
            h2 { "Encrypted backup" }
            @if account.sealing_key.is_some() {
                p { "Your backup pass phrase is set. Your account's backup is sealed with it; only it opens the backup, so keep it safe." }
            } @else if account.backups_opted_out {
                p { "You chose not to have encrypted backups. If this pod disappears, your account cannot be restored." }
            } @else {
                p.notice { "Choose a backup pass phrase to have your account backed up, encrypted, on another pod." }
            }
            form.stack method="post" action="/settings/passphrase" {
                (csrf_field(csrf))
                label for="passphrase" { @if account.sealing_key.is_some() { "New backup pass phrase" } @else { "Backup pass phrase" } }
                input #passphrase type="password" name="passphrase" required minlength="12" autocomplete="new-password";
                p.hint { "At least 12 characters and hard to guess. We never store it and cannot recover it." }
                label for="passphrase_password" { "Current password" }
                input #passphrase_password type="password" name="password" required autocomplete="current-password";
                button type="submit" { @if account.sealing_key.is_some() { "Change pass phrase" } @else { "Set pass phrase" } }
            }
            @if !account.backups_opted_out {
                form.stack method="post" action="/settings/backups/opt_out" {
                    (csrf_field(csrf))
                    label for="optout_password" { "Current password" }
                    input #optout_password type="password" name="password" required autocomplete="current-password";
                    button.secondary type="submit" { "Stop encrypted backups" }
                }
            }
        }
    }
}

pub async fn set_passphrase(pod: &Pod, req: &mut Request) -> Result<Response> {
    let (account, form) = match settings_form(pod, req).await? {
        Ok(x) => x,
        Err(redirect) => return Ok(redirect),
    };
    match account::set_passphrase(pod, &account.username, form.text("password"), form.text("passphrase")).await {
        Ok(_) => see_other("/settings?done=passphrase_set#backup"),
        Err(e @ (Error::BadRequest(_) | Error::Unauthorized(_))) => {
            render_settings(pod, req, &account, e.status(), Some(&e.client_message()))
        }
        Err(e) => Err(e),
    }
}

pub async fn opt_out(pod: &Pod, req: &mut Request) -> Result<Response> {
    let (account, form) = match settings_form(pod, req).await? {
        Ok(x) => x,
        Err(redirect) => return Ok(redirect),
    };
    match account::opt_out_of_backups(pod, &account.username, form.text("password")).await {
        Ok(_) => see_other("/settings?done=backups_off#backup"),
        Err(e @ Error::Unauthorized(_)) => render_settings(pod, req, &account, e.status(), Some(&e.client_message())),
        Err(e) => Err(e),
    }
}

fn download_section(account: &Account, csrf: &str, pod: &Pod) -> Markup {
    let is_admin = pod.config.accounts.admins.contains(&account.username);
    html! {
        section.card #download {
            h2 { "Your data" }
            form.stack method="post" action="/settings/download/archive" {
                (csrf_field(csrf))
                p { "Your account as a diaspora* archive (JSON): profile, aspects, contacts, followed tags, blocks and your key. Keep it private: it contains your private key." }
                label for="archive_password" { "Current password" }
                input #archive_password type="password" name="password" required autocomplete="current-password";
                button.secondary type="submit" { "Download my archive" }
            }
            form.stack method="post" action="/settings/download/backup" {
                (csrf_field(csrf))
                p { "Your account as an encrypted backup file (.lfbk), sealed with your backup pass phrase. "
                    code { "lifeboat backups decrypt" } " or libsodium opens it." }
                label for="backup_password" { "Current password" }
                input #backup_password type="password" name="password" required autocomplete="current-password";
                @if account.sealing_key.is_none() {
                    label for="backup_passphrase" { "Pass phrase to seal it with" }
                    input #backup_passphrase type="password" name="passphrase" required minlength="12" autocomplete="new-password";
                }
                button.secondary type="submit" { "Download my encrypted backup" }
            }
        }
        section.card #move {
            h2 { "Move to another pod" }
            @if is_admin {
                p { "You are an admin of this pod. An admin account cannot move away: hand the admin role to another account first (the podmin lists admins in the configuration)." }
            } @else {
                p { "To move while this pod still runs: download your encrypted backup here, then on your new pod choose " strong { "Moving from another pod" } " and give it the file and your pass phrase. Your new pod tells every pod that knew you; when the message reaches this pod, this account closes at once and points to the new one." }
                form.stack method="post" action="/settings/move" {
                    (csrf_field(csrf))
                    label for="move_password" { "Current password" }
                    input #move_password type="password" name="password" required autocomplete="current-password";
                    @if account.sealing_key.is_none() {
                        label for="move_passphrase" { "Pass phrase to seal the file with" }
                        input #move_passphrase type="password" name="passphrase" required minlength="12" autocomplete="new-password";
                    }
                    button type="submit" { "Download my file and start moving" }
                }
            }
        }
    }
}

fn attachment(bytes: Vec<u8>, content_type: &'static str, filename: &str) -> Result<Response> {
    let mut response = Response::new(bytes::Bytes::from(bytes));
    let headers = response.headers_mut();
    headers.insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static(content_type),
    );
    headers.insert(
        warp::http::header::CONTENT_DISPOSITION,
        warp::http::HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")).map_err(Error::internal)?,
    );
    headers.insert(
        warp::http::header::CACHE_CONTROL,
        warp::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

pub async fn download_archive(pod: &Pod, req: &mut Request) -> Result<Response> {
    let (account, form) = match settings_form(pod, req).await? {
        Ok(x) => x,
        Err(redirect) => return Ok(redirect),
    };
    if let Err(e) = account::check_current_password(&account, form.text("password")).await {
        return render_settings(pod, req, &account, e.status(), Some(&e.client_message()));
    }
    let bytes = account::archive::write_archive(&account, &pod.config.public_host(), &pod.config.public_url())?;
    attachment(bytes, "application/json", &format!("{}-archive.json", account.username))
}

pub async fn download_backup(pod: &Pod, req: &mut Request) -> Result<Response> {
    sealed_file(pod, req, false).await
}

pub async fn start_move(pod: &Pod, req: &mut Request) -> Result<Response> {
    sealed_file(pod, req, true).await
}

async fn sealed_file(pod: &Pod, req: &mut Request, moving: bool) -> Result<Response> {
    let (account, form) = match settings_form(pod, req).await? {
        Ok(x) => x,
        Err(redirect) => return Ok(redirect),
    };
    let passphrase = form.optional("passphrase");
    match account::sealed_download(
        pod,
        &account.username,
        form.text("password"),
        passphrase.as_deref(),
        moving,
    )
    .await
    {
        Ok(bytes) => {
            if moving {
                tracing::info!(username = %account.username, "account flagged as moving");
            }
            attachment(bytes, "application/octet-stream", &format!("{}.lfbk", account.username))
        }
        Err(e @ (Error::BadRequest(_) | Error::Unauthorized(_) | Error::Forbidden(_))) => {
            render_settings(pod, req, &account, e.status(), Some(&e.client_message()))
        }
        Err(e) => Err(e),
    }
}

fn moves_section(pod: &Pod, account: &Account, csrf: &str) -> Result<Markup> {
    use crate::delivery::DeliveryState;
    let pending = crate::arrivals::received::pending_closure(pod, &account.username)?;
    let outgoing = crate::arrivals::outgoing(pod, &account.username)?;
    let deliveries = match &outgoing {
        Some(_) => crate::delivery::topic_deliveries(&pod.store, &crate::arrivals::topic(&account.username))?,
        None => Vec::new(),
    };
    let count = |f: fn(&DeliveryState) -> bool| deliveries.iter().filter(|d| f(&d.state)).count();
    Ok(html! {
        @if let Some(pending) = &pending {
            section.card.notice.error #not-me {
                h2 { "Your account is moving" }
                p { "This pod received a signed message saying that this account moved to " strong { (pending.new_id) } ". "
                    "Unless you object, this account closes and points there." }
                form method="post" action="/settings/not_me" {
                    (csrf_field(csrf))
                    button.danger type="submit" { "This was not me" }
                }
            }
        }
        @if let Some(outgoing) = &outgoing {
            section.card #moved-in {
                h2 { "Your move" }
                p { "This account arrived from " strong { (outgoing.old_id) } ". Every pod that knew that identity is being told, in diaspora*'s own AccountMigration message, that it is now " strong { (outgoing.new_id) } "." }
                p.move-summary { (count(|s| matches!(s, DeliveryState::Delivered { .. }))) " delivered, "
                    (count(|s| *s == DeliveryState::Pending)) " pending, "
                    (count(|s| *s == DeliveryState::Failed)) " failed." }
                @if !deliveries.is_empty() {
                    table.deliveries {
                        thead { tr { th { "Pod" } th { "State" } th { "Attempts" } th {} } }
                        tbody {
                            @for d in &deliveries {
                                tr {
                                    td { code { (d.origin) } }
                                    td.state { @match &d.state {
                                        DeliveryState::Delivered { .. } => "delivered",
                                        DeliveryState::Pending => { "pending" @if let Some(e) = &d.last_error { " (" (e) ")" } },
                                        DeliveryState::Failed => { "failed" @if let Some(e) = &d.last_error { " (" (e) ")" } },
                                    } }
                                    td { (d.attempts) }
                                    td {
                                        @if !matches!(d.state, DeliveryState::Delivered { .. }) {
                                            form.inline method="post" action="/settings/move/retry" {
                                                (csrf_field(csrf))
                                                input type="hidden" name="id" value=(d.id);
                                                button.secondary type="submit" { "Retry now" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

pub async fn not_me(pod: &Pod, req: &mut Request) -> Result<Response> {
    let (account, _) = match settings_form(pod, req).await? {
        Ok(x) => x,
        Err(redirect) => return Ok(redirect),
    };
    crate::arrivals::received::cancel_closure(pod, &account.username).await?;
    see_other("/settings?done=move_cancelled")
}

pub async fn retry_delivery(pod: &Pod, outbox: &crate::delivery::Outbox, req: &mut Request) -> Result<Response> {
    let (account, form) = match settings_form(pod, req).await? {
        Ok(x) => x,
        Err(redirect) => return Ok(redirect),
    };
    let id: u64 = form.text("id").parse().map_err(|_| Error::bad("no such delivery"))?;
    outbox.retry(&crate::arrivals::topic(&account.username), id).await?;
    see_other("/settings?done=retrying#moved-in")
}
