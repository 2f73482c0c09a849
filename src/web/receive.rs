//! Federation endpoints other pods POST to: `/receive/public` (public Magic Envelopes;
//! lifeboat acts on AccountMigration). Thin: size cap, content type, one domain call.

use warp::http::StatusCode;

use super::{json, Request, Response};
use crate::migration::receive::{receive_public, Received};
use crate::pod::Pod;
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
