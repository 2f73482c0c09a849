//! Federation endpoints other pods POST to: `/receive/public` (public Magic Envelopes;
//! lifeboat acts on AccountMigration) and `/receive/users/GUID` (private messages to
//! one local user; lifeboat acts on `contact`). Thin: size cap, content type, one
//! domain call.

use warp::http::StatusCode;

use super::{json, text, Request, Response};
use crate::arrivals::received::{receive_public, Received};
use crate::pod::Pod;
use crate::sharing;
use crate::{Error, Result};

/// The largest public envelope accepted.
pub const PUBLIC_LIMIT: u64 = 256 * 1024;

pub async fn public(pod: &Pod, mut req: Request) -> Result<Response> {
    match req.content_type().as_deref() {
        Some("application/magic-envelope+xml" | "application/xml" | "text/xml") => {}
        _ => return Err(Error::bad("expected Content-Type: application/magic-envelope+xml")),
    }
    let body = req.body(PUBLIC_LIMIT).await?;
    let xml = std::str::from_utf8(&body).map_err(|_| Error::bad("the envelope is not UTF-8"))?;
    let outcome = receive_public(pod, xml)
        .await
        .inspect_err(|e| tracing::warn!(client = %req.client, "public message refused: {e}"))?;
    let status = match &outcome {
        Received::Applied => "applied",
        Received::AlreadyKnown => "already known",
        Received::Ignored(_) => "ignored",
    };
    if let Received::Ignored(entity) = &outcome {
        tracing::debug!(%entity, "public entity accepted and ignored");
    }
    Ok(json(StatusCode::ACCEPTED, &serde_json::json!({"status": status})))
}

/// `POST /receive/users/GUID`: the body is read (413 past [`sharing::body_limit`]) and
/// handed to [`sharing::receive_private`]. Every message let in answers `202
/// Accepted`, whether it was applied, ignored or refused: why a message failed to
/// decrypt or verify is logged, never told to the sender. Unknown or closed users
/// answer 404, callers over their rate 429.
pub async fn private(pod: &Pod, req: &mut Request, guid: &str) -> Result<Response> {
    let body = req.body(sharing::body_limit(&pod.config)).await?;
    sharing::receive_private(pod, &req.client.key(), guid, &body).await?;
    Ok(text(StatusCode::ACCEPTED, ""))
}
