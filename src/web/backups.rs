//! The holder's HTTP edge: `POST /api/lifeboat/v1/backups`, `POST
//! /api/lifeboat/v1/backups/status`, and the confirmation page `/backups/confirm`
//! (GET shows it, POST acts). Each handler reads the request, calls one function of
//! [`crate::backup::holder`] and maps the answer.

use std::sync::Arc;

use maud::html;
use serde_json::json;
use warp::http::StatusCode;

use super::{form_pairs, html, json, Request, Response};
use crate::backup::holder::{ConfirmAction, Holder, PushOutcome, StatusOutcome};
use crate::pod::Pod;
use crate::store::backups::SledSlots;
use crate::{Error, Result};

/// Whether NodeInfo advertises `acceptsBackups` (opted in, confirmed quota not full).
pub fn backup_room(holder: &Holder<SledSlots>) -> bool {
    holder.accepts_backups().unwrap_or_else(|e| {
        tracing::error!("reading backup totals: {e}");
        false
    })
}

fn rate_limited(pod: &Pod, req: &Request) -> Result<()> {
    if pod.limits.backup_push.allow(&req.client.key()) {
        Ok(())
    } else {
        Err(Error::RateLimited(
            "too many backup requests from this address; try again in a minute".into(),
        ))
    }
}

async fn read_body(holder: &Holder<SledSlots>, req: &mut Request) -> Result<bytes::Bytes> {
    match req.body(holder.body_limit()).await {
        Err(Error::TooLarge(message)) => Err(holder.oversized(message)),
        other => other,
    }
}

/// `POST /api/lifeboat/v1/backups`.
pub async fn push(pod: &Arc<Pod>, holder: &Holder<SledSlots>, mut req: Request) -> Result<Response> {
    rate_limited(pod, &req)?;
    let body = read_body(holder, &mut req).await?;
    let (status, answer) = match holder.push(&body).await? {
        PushOutcome::AwaitingConfirmation => (StatusCode::ACCEPTED, json!({"status": "awaiting_confirmation"})),
        PushOutcome::Stored(n) => (StatusCode::OK, json!({"status": "stored", "sequence": n})),
        PushOutcome::Deleted(n) => (StatusCode::OK, json!({"status": "deleted", "sequence": n})),
        PushOutcome::Stale(held) => (StatusCode::CONFLICT, json!({"status": "stale", "sequence": held})),
        PushOutcome::Restored => (StatusCode::GONE, json!({"status": "restored"})),
    };
    Ok(json(status, &answer))
}

/// `POST /api/lifeboat/v1/backups/status`.
pub async fn status(pod: &Arc<Pod>, holder: &Holder<SledSlots>, mut req: Request) -> Result<Response> {
    rate_limited(pod, &req)?;
    let body = match req.body(crate::backup::holder::ENVELOPE_BYTES).await {
        Err(Error::TooLarge(message)) => return Err(Error::TooLarge(message)),
        other => other?,
    };
    Ok(match holder.status(&body).await? {
        StatusOutcome::Held(status) => json(StatusCode::OK, &status),
        StatusOutcome::Restored => json(StatusCode::GONE, &json!({"status": "restored"})),
    })
}

/// `GET /backups/confirm?token=...`: shows the slot and two buttons. Changes nothing.
pub fn confirm_page(pod: &Arc<Pod>, holder: &Holder<SledSlots>, req: &Request) -> Result<Response> {
    let token = req.query_param("token").unwrap_or_default();
    let pending = holder.pending(&token)?;
    let host = pod.config.public_host();
    Ok(html(super::layout::layout(
        "Confirm a backup",
        html! {
            h1 { "Is this your backup?" }
            p { "This pod (" (host) ") holds an encrypted backup of a diaspora* account that gives the address " strong { (pending.email) } "." }
            p { "It was signed with the account key whose short fingerprint is " code { (pending.short_fingerprint) } ". Your home pod shows the same fingerprint in its backup settings." }
            p { "The backup is " (pending.size) " bytes, sealed with your backup pass phrase: this pod cannot read it." }
            // These forms are reached from an emailed link by someone who is not signed
            // in: the unguessable single-use token in each form is the CSRF protection
            // (a forged request would have to know it), so no session token is needed.
            form method="post" action="/backups/confirm" {
                input type="hidden" name="token" value=(token);
                input type="hidden" name="action" value="confirm";
                button type="submit" { "Yes, this is my pod's backup" }
            }
            form method="post" action="/backups/confirm" {
                input type="hidden" name="token" value=(token);
                input type="hidden" name="action" value="reject";
                button type="submit" { "Not mine — delete it" }
            }
        },
    )))
}

/// `POST /backups/confirm`: confirms the slot or deletes it as "not mine".
pub async fn confirm_post(pod: &Arc<Pod>, holder: &Holder<SledSlots>, mut req: Request) -> Result<Response> {
    let body = req.body(4096).await?;
    let pairs = form_pairs(&body);
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let action = match field("action") {
        Some("confirm") => ConfirmAction::Confirm,
        Some("reject") => ConfirmAction::Reject,
        _ => return Err(Error::bad("choose confirm or reject")),
    };
    let token = field("token").unwrap_or_default();
    let done = holder.decide(token, action).await?;
    let url = pod.config.public_url();
    Ok(html(super::layout::layout(
        "Backup",
        match action {
            ConfirmAction::Confirm => html! {
                h1 { "Backup confirmed" }
                p { "Thank you. This pod keeps the backup for " strong { (done.email) } " (key " code { (done.short_fingerprint) } ") and keeps it current as your home pod sends new ones." }
                p { "If your home pod ever disappears, restore your account at " a href={ (url) "/restore_backup" } { (url) "/restore_backup" } " with this address and your backup pass phrase." }
            },
            ConfirmAction::Reject => html! {
                h1 { "Backup deleted" }
                p { "This pod deleted the backup sent for " strong { (done.email) } " with the key " code { (done.short_fingerprint) } ", and will neither keep nor mail about backups signed with that key for this address again." }
            },
        },
    )))
}
