//! The crate-wide error type.
//!
//! Policy:
//! - Every failure that can reach a client is an [`Error`] variant that knows its HTTP
//!   status and a message that is safe to show: it names what was wrong with the
//!   request, never internal paths, keys, tokens, pass phrases or storage details.
//! - Internal failures (storage, I/O, encoding, bugs) become [`Error::Internal`]: the
//!   client sees "internal error", and the full cause is logged once, at the edge that
//!   answers the request (`web`), at `error` level. Nothing secret is put into an
//!   internal message in the first place.
//! - Domain code returns `Result<T>`; only the edges (HTTP handlers, CLI commands)
//!   turn an `Error` into a status, a page or an exit code.

use warp::http::StatusCode;

/// The result type of every fallible lifeboat function.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One error type for the whole crate; see the module doc for the policy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed or invalid input. The message says what is wrong, precisely.
    #[error("{0}")]
    BadRequest(String),
    /// A signature or credential did not verify.
    #[error("{0}")]
    Unauthorized(String),
    /// The request is understood but not allowed here.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing of that name exists (or it is not shown to this client).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (a stale sequence, a taken name).
    #[error("{0}")]
    Conflict(String),
    /// The thing existed and is gone for good (a restored backup, a closed account).
    #[error("{0}")]
    Gone(String),
    /// The body or a field is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// Too many requests from this client or for this target.
    #[error("{0}")]
    RateLimited(String),
    /// The pod is out of room for what was asked (backup quota, a full disk).
    #[error("{0}")]
    InsufficientStorage(String),
    /// A remote pod could not be reached or answered something unusable.
    #[error("{0}")]
    Upstream(String),
    /// The configuration is invalid; each line is one problem.
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Config(Vec<String>),
    /// Anything the client cannot act on: storage, I/O, bugs. Logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Gone(_) => StatusCode::GONE,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            Error::Upstream(_) => StatusCode::BAD_GATEWAY,
            Error::Config(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message that may be shown to the client.
    pub fn client_message(&self) -> String {
        match self {
            Error::Internal(_) | Error::Config(_) => "internal error".to_string(),
            other => other.to_string(),
        }
    }

    /// The data folder's disk is full: nothing was stored (507).
    pub fn disk_full() -> Self {
        Error::InsufficientStorage("this pod's disk is full: nothing was stored; try again later".into())
    }

    /// Shorthand for [`Error::BadRequest`].
    pub fn bad(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    /// Shorthand for [`Error::Internal`].
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull {
            return Error::disk_full();
        }
        Error::Internal(format!("i/o: {e}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("json: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_are_not_shown_to_clients() {
        let e = Error::internal("/var/lib/lifeboat/db: permission denied");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.client_message(), "internal error");
        let e = Error::bad("sequence must be between 1 and 2^53-1");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.client_message(), "sequence must be between 1 and 2^53-1");
    }
}
