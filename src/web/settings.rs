//! The settings page and its forms: email, password, deletion, the backup pass
//! phrase, downloads, moving away (with the move's deliveries), and the backup pod
//! section (`POST /settings/backups/pod`: the user picks another backup pod). Thin:
//! each handler reads the form, calls one domain function, and renders the page again
//! with the outcome.

use maud::{html, Markup};
use warp::http::StatusCode;

use super::forms::{self, Form};
use super::layout::{csrf_field, error_box, notice_for, page, require};
use super::HttpStatus;
use super::{see_other, Request, Response};
use crate::account::{self, session, Account};
use crate::backup::home::pods::PodView;
use crate::backup::home::{self, SlotState};
use crate::pod::Pod;
use crate::{Error, Result};

pub async fn settings(pod: &Pod, req: &Request) -> Result<Response> {
    let account = proceed!(require(pod, req)?);
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
        (backup_pod_section(pod, account, &csrf, done.as_deref()))
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
    let (account, form) = proceed!(settings_form(pod, req).await?);
    match account::change_email(pod, &account.username, form.text("password"), form.text("email")).await {
        Ok(_) => see_other("/settings?done=email_sent"),
        Err(e @ (Error::BadRequest(_) | Error::Conflict(_) | Error::Unauthorized(_))) => {
            render_settings(pod, req, &account, e.status(), Some(&e.client_message()))
        }
        Err(e) => Err(e),
    }
}

pub async fn change_password(pod: &Pod, req: &mut Request) -> Result<Response> {
    let (account, form) = proceed!(settings_form(pod, req).await?);
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
    let (account, form) = proceed!(settings_form(pod, req).await?);
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
    let (account, form) = proceed!(settings_form(pod, req).await?);
    match account::set_passphrase(pod, &account.username, form.text("password"), form.text("passphrase")).await {
        Ok(_) => see_other("/settings?done=passphrase_set#backup"),
        Err(e @ (Error::BadRequest(_) | Error::Unauthorized(_))) => {
            render_settings(pod, req, &account, e.status(), Some(&e.client_message()))
        }
        Err(e) => Err(e),
    }
}

pub async fn opt_out(pod: &Pod, req: &mut Request) -> Result<Response> {
    let (account, form) = proceed!(settings_form(pod, req).await?);
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
    let (account, form) = proceed!(settings_form(pod, req).await?);
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
    let (account, form) = proceed!(settings_form(pod, req).await?);
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
    let (account, _) = proceed!(settings_form(pod, req).await?);
    crate::arrivals::received::cancel_closure(pod, &account.username).await?;
    see_other("/settings?done=move_cancelled")
}

pub async fn retry_delivery(pod: &Pod, outbox: &crate::delivery::Outbox, req: &mut Request) -> Result<Response> {
    let (account, form) = proceed!(settings_form(pod, req).await?);
    let id: u64 = form.text("id").parse().map_err(|_| Error::bad("no such delivery"))?;
    outbox.retry(&crate::arrivals::topic(&account.username), id).await?;
    see_other("/settings?done=retrying#moved-in")
}

// ----- the backup pod section -----

fn host(origin: &str) -> &str {
    origin.split_once("://").map_or(origin, |(_, h)| h)
}

fn vetting(view: Option<&PodView>) -> &'static str {
    match view {
        Some(v) if v.vetted => "vetted by this pod's admins",
        _ => "not vetted by this pod's admins",
    }
}

/// The "Backup pod" section. `done` is the page's `done` parameter.
fn backup_pod_section(pod: &Pod, account: &Account, csrf: &str, done: Option<&str>) -> Markup {
    let overview = match home::overview(pod, account) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(username = %account.username, "backup overview: {e}");
            return html! { section.card #backup-pod { h2 { "Backup pod" } p.notice.error { "The state of your backup cannot be shown right now." } } };
        }
    };
    let state = &overview.state;
    html! {
        section.card #backup-pod {
            h2 { "Backup pod" }
            @if done == Some("backup_pod_chosen") {
                p.notice.ok role="status" { "Your choice is saved: your backup goes to the new pod now, and we have emailed you where it lives." }
            }
            @if let Some(since) = overview.failing_too_long {
                p.notice.error role="alert" {
                    strong { "Your backup has not succeeded since " (home::utc(since)) "." }
                    " We keep trying, and move it to another pod if this one keeps failing; you can also choose another pod below."
                }
            }
            @if let Some(why) = overview.off {
                p { "Encrypted backups are not running: " (why) "." }
                @if account.sealing_key.is_none() && !account.backups_opted_out {
                    p { a href="#backup" { "Set a backup pass phrase" } }
                }
            } @else {
                @match (&state.pod, state.slot) {
                    (_, SlotState::NoPod) | (None, _) => {
                        p.notice { "No backup pod is available right now. We pick one as soon as one appears, and email you where your backup lives." }
                    }
                    (Some(origin), slot) => {
                        p { "Your backup pod is " strong { (host(origin)) } " (" (vetting(overview.pod.as_ref())) "; "
                            @if state.chosen_by_user { "chosen by you" } @else { "chosen automatically" } ")." }
                        p { "State: "
                            @match slot {
                                SlotState::Pending => { strong { "waiting for the first backup" } " to reach " (host(origin)) "." }
                                SlotState::AwaitingConfirmation => { strong { "awaiting your confirmation" } ": " (host(origin)) " keeps your backup and has emailed you to confirm it is yours — check your email." }
                                SlotState::Stored => { strong { "stored" } "." }
                                SlotState::Restored => { strong { "restored elsewhere" } ": " (host(origin)) " says this backup was restored, so your account lives on another pod. Backups are paused; choose a pod below to start them again." }
                                _ => { "—" }
                            }
                        }
                        @if state.pod_refuses {
                            p.notice.error { strong { "Failing" } ": " (host(origin)) " no longer accepts backups. We move your backup as soon as another pod is available." }
                        } @else if let Some(since) = state.failing_since {
                            p.notice.error { strong { "Failing" } " since " (home::utc(since)) ". We retry with growing pauses." }
                        }
                        p { "If this pod ever disappears, restore your account at "
                            a href={ (origin) "/restore_backup" } { (origin) "/restore_backup" }
                            " with your email address and your backup pass phrase." }
                    }
                }
                p { "Last successful backup: "
                    @match state.last_success {
                        Some((at, sequence)) => { (home::utc(at)) " (sequence " (sequence) ")" }
                        None => { "none yet" }
                    }
                }
                @if let Some(error) = &state.last_error {
                    p { "Last error: " (home::utc(error.at_unix)) ": " (error.text) }
                }
                @if let Some(fp) = &overview.short_fingerprint {
                    p.hint { "Your account key's short fingerprint is " code { (fp) } "; the backup pod's confirmation email shows the same." }
                }
                @if !state.left_behind.is_empty() {
                    p.hint { "Asked to delete their copy: "
                        @for (i, left) in state.left_behind.iter().enumerate() {
                            @if i > 0 { ", " }
                            (host(&left.origin))
                            @if !left.armed { " (once the new pod has your backup)" }
                        }
                        "." }
                }
                @if let Some(choice) = &overview.pending_choice {
                    p.hint { "Moving your backup to " (host(choice)) "…" }
                }
                h3 { "Choose another backup pod" }
                @if overview.choices.is_empty() {
                    p { "No other backup pod is available right now." }
                } @else {
                    form.stack method="post" action="/settings/backups/pod" {
                        input type="hidden" name="csrf" value=(csrf);
                        label for="backup_pod" { "Backup pod" }
                        select #backup_pod name="pod" required {
                            @for choice in &overview.choices {
                                option value=(choice.origin) {
                                    (host(&choice.origin))
                                    @if !choice.vetted { " — not vetted by this pod's admins" }
                                }
                            }
                        }
                        p.hint { "Pods vetted by this pod's admins are chosen automatically; the others are offered too, but nobody here vouches for them. Your old pod is asked to delete its copy once the new one has your backup." }
                        button.secondary type="submit" { "Move my backup there" }
                    }
                }
                p { a href="#backup" { "Change your backup pass phrase" } " (not a move: the next backup replaces the one held) · "
                    a href="#backup" { "Stop encrypted backups" } }
            }
        }
    }
}

/// `POST /settings/backups/pod`.
pub async fn choose_pod(pod: &Pod, req: &mut Request) -> Result<Response> {
    let form = forms::read(req, pod.config.server.max_body_bytes).await?;
    let account = proceed!(require(pod, req)?);
    match home::choose(pod, &account, form.text("pod")).await {
        Ok(_) => see_other("/settings?done=backup_pod_chosen#backup-pod"),
        Err(e @ (Error::BadRequest(_) | Error::Conflict(_))) => {
            render_settings(pod, req, &account, e.status(), Some(&e.client_message()))
        }
        Err(e) => Err(e),
    }
}
