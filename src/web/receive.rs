//! `POST /receive/users/GUID`: diaspora*'s private (encrypted) messages to one local
//! user. The edge only reads the body (capped while reading, 413 past
//! [`sharing::body_limit`]) and hands it to [`sharing::receive_private`]. Every
//! message let in answers `202 Accepted`, whether it was applied, ignored or refused:
//! why a message failed to decrypt or verify is logged, never told to the sender.
//! Unknown or closed users answer 404, callers over their rate 429.

use warp::http::StatusCode;

use super::{text, Request, Response};
use crate::federation::sharing;
use crate::pod::Pod;
use crate::Result;

pub async fn private(pod: &Pod, req: &mut Request, guid: &str) -> Result<Response> {
    let body = req.body(sharing::body_limit(&pod.config)).await?;
    sharing::receive_private(pod, &req.client.key(), guid, &body).await?;
    Ok(text(StatusCode::ACCEPTED, ""))
}
