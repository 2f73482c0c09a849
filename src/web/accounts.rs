//! Pages for signing up, confirming the address, signing in and out, resetting the
//! password, and the account settings (email, password, deletion). Thin: each handler
//! reads the form, calls one function of [`crate::account`], and renders the outcome.

use maud::html;
use warp::http::StatusCode;

use super::forms::{self};
use super::layout::{csrf_field, error_box, page};
use super::HttpStatus;
use super::{see_other, Request, Response};
use crate::account::{self, session, SignUp};
use crate::pod::Pod;
use crate::{Error, Result};

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
