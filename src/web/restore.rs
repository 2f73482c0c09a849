//! The restore and move-in pages (docs/restore.md): `/restore_backup` (the address form),
//! `/restore_backup/confirm` (GET shows the emailed link's pass-phrase form and changes
//! nothing; POST tries the pass phrase), `/restore_backup/create` (the account form),
//! `/restore_backup/download` (the held `.lfbk` instead), `/move_in` ("Moving from
//! another pod"), and the settings card that shows an arrived account's move.
//!
//! Thin: each handler reads the form, calls one function of
//! [`crate::arrivals::restore`], and renders the outcome in plain words. Pages reached
//! with a link's token answer `Cache-Control: no-store` (and, as every page,
//! `Referrer-Policy: no-referrer`); the request log never shows query strings.

use std::sync::Arc;

use base64::Engine as _;
use maud::{html, Markup};
use warp::http::{header, HeaderValue, StatusCode};

use super::forms::{self, Form};
use super::layout::{csrf_field, error_box, page};
use super::HttpStatus;
use super::{Request, Response};
use crate::account::session;
use crate::arrivals::move_in::{accepts_move_ins, MoveIn};
use crate::arrivals::restore::{
    self, Create, Created, KeyCheck, RestoreView, Restores, Unlock, ATTEMPTS, WHAT_COMES_BACK, WHAT_DOES_NOT,
};
use crate::passphrase::Passphrase;
use crate::pod::Pod;
use crate::{Error, Result};

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

fn what_comes_back() -> Markup {
    html! {
        section.card {
            h2 { "What comes back, and what does not" }
            p { strong { "Comes back: " } (WHAT_COMES_BACK) "." }
            p { strong { "Does not come back: " } (WHAT_DOES_NOT) "." }
            p.hint { "Your new account gets a new diaspora* ID on this pod and a new key pair. The pods that knew your old ID are told that you moved, and re-point your contacts to the new one." }
        }
    }
}

// ----- the address form -----

/// `GET /restore_backup`.
pub async fn form(pod: &Pod, req: &Request) -> Result<Response> {
    let (csrf, _) = forms::csrf(pod, req);
    let body = html! {
        h1 { "Restore your diaspora* account" }
        p.lead { "If your home pod is gone and it kept an encrypted backup of your account on this pod, you can bring the account back here, as " code { "username@" (pod.config.public_host()) } "." }
        form.stack method="post" action="/restore_backup" {
            (csrf_field(&csrf))
            label for="email" { "Your account's email address" }
            input #email type="email" name="email" required autocomplete="email";
            p.hint { "If this pod holds a backup for this address, we email it a link. You then need your backup pass phrase." }
            button type="submit" { "Email me a restore link" }
        }
        (what_comes_back())
        p { "Is your old pod still running? Then move from there instead: in its settings choose " strong { "Move to another pod" } ", download your file, and bring it to "
            @if accepts_move_ins(&pod.config) { a href="/move_in" { "Moving from another pod" } } @else { "a pod that takes accounts moving in" } "." }
    };
    Ok(page(pod, req, StatusCode::OK, None, "Restore your account", body))
}

/// `POST /restore_backup`: always the same page, at once.
pub async fn request(pod: &Arc<Pod>, restores: &Restores, req: &mut Request) -> Result<Response> {
    let form = forms::read(req, pod.config.server.max_body_bytes).await?;
    if pod.limits.mail_forms.allow(&req.client.key()) {
        restore::request_link(pod, restores, form.text("email"));
    }
    let ttl = pod.config.backups.restore_link_ttl.get().as_secs() / 60;
    let body = html! {
        h1 { "Check your email" }
        p { "If this pod holds a backup for this address, we have emailed it a link to restore the account. The link works for " (ttl) " minutes." }
        p.hint { "No mail? Look in your spam folder. Only the address your old pod knew you by works; a new link replaces any earlier one." }
    };
    Ok(page(pod, req, StatusCode::OK, None, "Check your email", body))
}

// ----- the emailed link: pass phrase -----

fn passphrase_page(
    pod: &Pod,
    req: &Request,
    status: StatusCode,
    token: &str,
    email: &str,
    attempts_left: u8,
    error: Option<&str>,
) -> Response {
    let (csrf, _) = forms::csrf(pod, req);
    let body = html! {
        h1 { "Restore your account" }
        p { "This pod holds an encrypted backup for " strong { (email) } ". Only your backup pass phrase opens it." }
        (error_box(error))
        form.stack method="post" action="/restore_backup/confirm" {
            (csrf_field(&csrf))
            input type="hidden" name="token" value=(token);
            label for="passphrase" { "Backup pass phrase" }
            input #passphrase type="password" name="passphrase" required autocomplete="current-password";
            p.hint { (attempts_left) " of " (ATTEMPTS) " attempts left. After the last wrong one this link stops working and you need a new one." }
            button type="submit" { "Open my backup" }
        }
        (what_comes_back())
    };
    no_store(page(pod, req, status, None, "Restore your account", body))
}

/// `GET /restore_backup/confirm?token=...`: the pass-phrase form. Changes nothing.
pub async fn confirm_page(pod: &Pod, req: &Request) -> Result<Response> {
    let token = req.query_param("token").unwrap_or_default();
    match restore::link_info(pod, &token) {
        Ok(info) => Ok(passphrase_page(
            pod,
            req,
            StatusCode::OK,
            &token,
            &info.email,
            info.attempts_left,
            None,
        )),
        Err(e) => Ok(no_store(message_page(pod, req, &e, "This link does not work"))),
    }
}

fn message_page(pod: &Pod, req: &Request, error: &Error, title: &str) -> Response {
    let body = html! {
        h1 { (title) }
        p.notice.error role="alert" { (capitalise(&error.client_message())) }
        p { a href="/restore_backup" { "Ask for a new restore link" } }
    };
    page(pod, req, error.status(), None, title, body)
}

/// `POST /restore_backup/confirm`: one pass-phrase attempt.
pub async fn unlock(pod: &Pod, restores: &Restores, req: &mut Request) -> Result<Response> {
    let form = forms::read(req, pod.config.server.max_body_bytes).await?;
    let token = form.text("token").to_string();
    if !pod.limits.restore.allow(&req.client.key()) {
        return Err(Error::RateLimited(
            "too many pass-phrase attempts from your address; wait a while and try again (your link keeps its attempts)".into(),
        ));
    }
    let passphrase = Passphrase::new(form.text("passphrase").to_string());
    match restore::unlock(pod, restores, &token, passphrase).await {
        Ok(Unlock::Ready(view)) => Ok(account_page(pod, req, StatusCode::OK, &token, &view, None)),
        Ok(Unlock::StillActive { old_id, pod_origin }) => Ok(still_active_page(pod, req, &old_id, &pod_origin)),
        Ok(Unlock::WrongPassphrase { attempts_left: 0 }) => {
            let e = Error::Gone(
                "wrong pass phrase (or a damaged backup: the two cannot be told apart). That was the last attempt: this link no longer works, and nothing was created. Ask for a new link to try again.".into(),
            );
            Ok(no_store(message_page(pod, req, &e, "Restore stopped")))
        }
        Ok(Unlock::WrongPassphrase { attempts_left }) => {
            let info = restore::link_info(pod, &token)?;
            let message = format!(
                "That pass phrase did not open the backup: wrong pass phrase, or damaged data (the two cannot be told apart). {attempts_left} attempt{} left.",
                if attempts_left == 1 { "" } else { "s" }
            );
            Ok(passphrase_page(
                pod,
                req,
                StatusCode::UNAUTHORIZED,
                &token,
                &info.email,
                attempts_left,
                Some(&message),
            ))
        }
        Err(e @ (Error::Gone(_) | Error::BadRequest(_) | Error::NotFound(_))) => {
            Ok(no_store(message_page(pod, req, &e, "The backup could not be restored")))
        }
        Err(e) => Err(e),
    }
}

fn still_active_page(pod: &Pod, req: &Request, old_id: &str, origin: &str) -> Response {
    let body = html! {
        h1 { "Your account is still alive" }
        p.notice role="alert" { "Your backup belongs to " strong { (old_id) } ", and " (origin) " still answers for it as an active account. A living account is not restored from a backup: nothing was created, and the backup stays here." }
        p { "To move it, sign in on your pod, open " strong { "Settings → Move to another pod" } ", download your file, and bring it to "
            @if accepts_move_ins(&pod.config) { a href="/move_in" { "Moving from another pod" } " on this pod" } @else { "a pod that takes accounts moving in" }
            ". Your old pod then hands the account over properly." }
        p.hint { "If your pod is about to disappear, it stops answering once it is gone, and this restore works then." }
    };
    no_store(page(
        pod,
        req,
        StatusCode::CONFLICT,
        None,
        "Your account is still alive",
        body,
    ))
}

fn avatar_src(view: &RestoreView) -> String {
    match &view.avatar {
        Some(avatar) => format!(
            "data:{};base64,{}",
            avatar.content_type,
            base64::engine::general_purpose::STANDARD.encode(&avatar.data)
        ),
        None => "/assets/default-avatar.png".into(),
    }
}

fn account_page(
    pod: &Pod,
    req: &Request,
    status: StatusCode,
    token: &str,
    view: &RestoreView,
    error: Option<&str>,
) -> Response {
    let (csrf, _) = forms::csrf(pod, req);
    let host = pod.config.public_host();
    let body = html! {
        h1 { "Your backup is open" }
        div.card.restored {
            img.avatar src=(avatar_src(view)) alt="" width="100" height="100";
            h2 { (view.display_name) }
            @if let Some(old) = &view.old_id { p { "formerly " code { (old) } } }
            p { (view.contacts) " contacts, " (view.aspects) " aspects, " (view.followed_tags) " followed tags, " (view.blocks) " blocked people"
                @if view.posts + view.relayables > 0 { "; " (view.posts) " posts and " (view.relayables) " comments and likes carried along (kept, not shown)" } "." }
        }
        (error_box(error))
        form.stack method="post" action="/restore_backup/create" {
            (csrf_field(&csrf))
            input type="hidden" name="token" value=(token);
            label for="username" { "Username on this pod" }
            input #username type="text" name="username" required maxlength="32" pattern="[a-z0-9_]{1,32}" autocomplete="username";
            p.hint { "1 to 32 characters: a–z, 0–9 and _. Your new diaspora* ID will be " code { "username@" (host) } "." }
            label for="password" { "Password" }
            input #password type="password" name="password" required minlength="8" autocomplete="new-password";
            p.hint { "At least 8 characters. Your email address stays " (view.email) "." }
            button type="submit" { "Restore my account here" }
        }
        section.card {
            h2 { "Or take your backup elsewhere" }
            p { "Rather live on another pod? Download your backup as it is held here, still sealed with your pass phrase, and bring it to that pod's " strong { "Moving from another pod" } " page. Nothing is restored here then, and the backup stays." }
            form method="post" action="/restore_backup/download" {
                (csrf_field(&csrf))
                input type="hidden" name="token" value=(token);
                button.secondary type="submit" { "Download my backup (.lfbk)" }
            }
        }
        (what_comes_back())
    };
    no_store(page(pod, req, status, None, "Your backup is open", body))
}

fn session_response(pod: &Pod, mut response: Response, session_id: &str) -> Response {
    let cookie = forms::set_cookie(pod, forms::SESSION_COOKIE, session_id, None, "Lax");
    response = forms::with_cookie(response, Some(cookie));
    response
}

/// What the arrival page says about re-pointing on this pod.
fn key_check_note(check: &KeyCheck, old_id: Option<&str>) -> Markup {
    let old = old_id.unwrap_or("your old identity");
    match check {
        KeyCheck::Stored => {
            html! { p { "This pod knew " (old) " with the same key, so your move was also handed to this pod's own receiving path, which checks it as any pod does and re-points the contacts here to your new ID." } }
        }
        KeyCheck::Published => {
            html! { p { "Your old pod publishes the same key for " (old) ", so the move checks out and was handed to this pod's own receiving path too." } }
        }
        KeyCheck::Mismatch => {
            html! { p.notice { "This pod knows " (old) " with a different key, so nothing was re-pointed on this pod. Other pods check the move for themselves." } }
        }
        KeyCheck::AlreadyMoved { to } => {
            html! { p.notice { "This pod already knows " (old) " as moved to " (to) ", so nothing was re-pointed on this pod." } }
        }
        KeyCheck::Unknown { why } => html! {
            p.notice { "Your old identity's key could not be checked here (this pod did not know " (old) ", and its pod did not answer), so your account was created without re-pointing anything on this pod. The move message is still sent; every pod that receives it checks it for itself." }
            @if let Some(why) = why { p.hint { "Discovery said: " (why) } }
        },
        KeyCheck::NoIdentity => {
            html! { p { "Your backup names no earlier diaspora* ID, so there is no move to announce." } }
        }
    }
}

fn arrived_page(pod: &Pod, req: &Request, created: &Created, title: &str) -> Response {
    let host = pod.config.public_host();
    let account = &created.account;
    let body = html! {
        h1 { (title) }
        p.notice.ok role="status" { "Your account is " strong { (account.diaspora_id(&host)) } ", and you are signed in." }
        @if let Some(old) = &created.old_id {
            p { "The move from " code { (old) } " is announced to " (created.announced_to) " pod" @if created.announced_to != 1 { "s" } "; " a href="/settings#moved-in" { "your settings" } " show how far the announcement has got." }
        }
        (key_check_note(&created.key_check, created.old_id.as_deref()))
        @if !created.repairs.is_empty() {
            section.repairs aria-labelledby="repairs-title" {
                h2 #repairs-title { "What was repaired" }
                p { "Your file had a few things diaspora* pods would not keep. They were changed like this:" }
                ul { @for repair in &created.repairs { li { (repair) } } }
            }
        }
        @if !account.email_confirmed { p { "We have sent a link to " (account.email) ": open it to confirm the address, so this account can be backed up too." } }
        p { "Set a backup pass phrase in your " a href="/settings#backup" { "settings" } " to keep this account backed up on another pod." }
        p.hint { "Came back: " (WHAT_COMES_BACK) ". Not: " (WHAT_DOES_NOT) "." }
    };
    page(pod, req, StatusCode::OK, Some(account), title, body)
}

/// `POST /restore_backup/create`: the account, in one unit of work.
pub async fn create(pod: &Pod, restores: &Restores, req: &mut Request) -> Result<Response> {
    let form = forms::read(req, pod.config.server.max_body_bytes).await?;
    let token = form.text("token").to_string();
    let username = form.text("username").trim().to_ascii_lowercase();
    match restore::create(pod, restores, &token, &username, form.text("password")).await {
        Ok(Create::Done(created)) => {
            let id = session::start(pod, &created.account).await?;
            let response = no_store(arrived_page(pod, req, &created, "Welcome back"));
            Ok(session_response(pod, response, &id))
        }
        Ok(Create::Reopen) => {
            let info = restore::link_info(pod, &token)?;
            Ok(passphrase_page(
                pod,
                req,
                StatusCode::CONFLICT,
                &token,
                &info.email,
                info.attempts_left,
                Some("Your opened backup waited too long (or this pod restarted): enter your pass phrase again. Nothing was created."),
            ))
        }
        Err(e @ (Error::BadRequest(_) | Error::Conflict(_))) => match restore::opened_view(pod, restores, &token) {
            Some(view) => Ok(account_page(
                pod,
                req,
                e.status(),
                &token,
                &view,
                Some(&format!("{} — nothing was created.", capitalise(&e.client_message()))),
            )),
            None => Ok(no_store(message_page(pod, req, &e, "The account was not created"))),
        },
        Err(e @ (Error::Gone(_) | Error::NotFound(_) | Error::Forbidden(_))) => {
            Ok(no_store(message_page(pod, req, &e, "The account was not created")))
        }
        Err(e) => Err(e),
    }
}

/// `POST /restore_backup/download`: the held `.lfbk`, once the pass phrase opened it.
pub async fn download(pod: &Pod, restores: &Restores, req: &mut Request) -> Result<Response> {
    let form = forms::read(req, pod.config.server.max_body_bytes).await?;
    let (bytes, filename) = restore::held_backup(pod, restores, form.text("token"))?;
    let mut response = Response::new(bytes::Bytes::from(bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")).map_err(Error::internal)?,
    );
    Ok(no_store(response))
}

// ----- moving from another pod -----

struct MoveInFields<'a> {
    old_id: &'a str,
    username: &'a str,
    email: &'a str,
}

fn move_in_page(
    pod: &Pod,
    req: &Request,
    status: StatusCode,
    error: Option<&str>,
    fields: MoveInFields<'_>,
) -> Response {
    let (csrf, _) = forms::csrf(pod, req);
    let host = pod.config.public_host();
    if !accepts_move_ins(&pod.config) {
        let body = html! { h1 { "Moving from another pod" } p.notice { "This pod does not take accounts moving in." } };
        return page(pod, req, StatusCode::FORBIDDEN, None, "Moving from another pod", body);
    }
    let body = html! {
        h1 { "Moving from another pod" }
        p.lead { "Bring your account from the pod you are leaving. On that pod, open " strong { "Settings → Move to another pod" } " and download your file (.lfbk); then fill in this form." }
        (error_box(error))
        form.stack method="post" action="/move_in" enctype="multipart/form-data" {
            (csrf_field(&csrf))
            label for="old_id" { "Your old diaspora* ID" }
            input #old_id type="text" name="old_id" value=(fields.old_id) required placeholder="username@old-pod.example.org" autocomplete="off";
            label for="username" { "New username on this pod" }
            input #username type="text" name="username" value=(fields.username) required maxlength="32" pattern="[a-z0-9_]{1,32}" autocomplete="username";
            p.hint { "1 to 32 characters: a–z, 0–9 and _. Your new diaspora* ID will be " code { "username@" (host) } "." }
            label for="password" { "Password" }
            input #password type="password" name="password" required minlength="8" autocomplete="new-password";
            label for="email" { "Email address (optional)" }
            input #email type="email" name="email" value=(fields.email) autocomplete="email";
            p.hint { "Leave empty to keep the address in your file. We send it a link to confirm it." }
            label for="backup" { "Your file (.lfbk)" }
            input #backup type="file" name="backup" required accept=".lfbk,application/octet-stream";
            label for="passphrase" { "The pass phrase the file is sealed with" }
            input #passphrase type="password" name="passphrase" required autocomplete="off";
            button type="submit" { "Move my account here" }
        }
        p.hint { "The key in your file must be the key your old ID is known by (here, or as your old pod publishes it); otherwise the move is refused. Your old pod closes the old account when the move message reaches it." }
        (what_comes_back())
        p { "Old pod gone for good? If it kept a backup on this pod, " a href="/restore_backup" { "restore it" } " instead." }
    };
    page(pod, req, status, None, "Moving from another pod", body)
}

/// `GET /move_in`.
pub async fn move_in_form(pod: &Pod, req: &Request) -> Result<Response> {
    Ok(move_in_page(
        pod,
        req,
        StatusCode::OK,
        None,
        MoveInFields {
            old_id: "",
            username: "",
            email: "",
        },
    ))
}

/// `POST /move_in`.
pub async fn move_in(pod: &Pod, req: &mut Request) -> Result<Response> {
    let limit = pod.config.backups.max_backup_bytes + 64 * 1024;
    let form: Form = forms::read(req, limit).await?;
    let (old_id, username, email) = (
        form.text("old_id").trim().to_string(),
        form.text("username").trim().to_ascii_lowercase(),
        form.text("email").trim().to_string(),
    );
    let fields = MoveInFields {
        old_id: &old_id,
        username: &username,
        email: &email,
    };
    if !pod.limits.restore.allow(&req.client.key()) {
        return Ok(move_in_page(
            pod,
            req,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many attempts from your address; wait a while and try again."),
            fields,
        ));
    }
    let file = form.file("backup").map(|f| f.data.clone()).unwrap_or_default();
    let request = MoveIn {
        old_id: old_id.clone(),
        username: username.clone(),
        password: form.text("password").to_string(),
        email: form.optional("email"),
        file,
        passphrase: Passphrase::new(form.text("passphrase").to_string()),
    };
    match crate::arrivals::move_in::move_in(pod, request).await {
        Ok(created) => {
            let id = session::start(pod, &created.account).await?;
            let response = arrived_page(pod, req, &created, "Welcome to your new pod");
            Ok(session_response(pod, response, &id))
        }
        Err(e @ (Error::BadRequest(_) | Error::Conflict(_) | Error::Forbidden(_) | Error::TooLarge(_))) => {
            let message = format!("{} — nothing was created.", capitalise(&e.client_message()));
            Ok(move_in_page(pod, req, e.status(), Some(&message), fields))
        }
        Err(e) => Err(e),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
