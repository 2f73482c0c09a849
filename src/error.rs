//! The crate-wide error type.
//!
//! Policy:
//! - Every failure that can reach a client is an [`Error`] variant whose kind says what
//!   went wrong (a bad request, a refusal, a conflict...) and whose message is safe to
//!   show: it names what was wrong with the request, never internal paths, keys,
//!   tokens, pass phrases or storage details. The edges turn the kind into an answer:
//!   `web` maps it to an HTTP status (`web::HttpStatus`), the admin socket to its
//!   [`Error::code`], `main` to an exit code.
//! - Internal failures (storage, I/O, encoding, bugs) become [`Error::Internal`], which
//!   keeps its cause (the source error, with what was being done): the client sees
//!   "internal error", and the whole chain is logged once, at the edge that answers the
//!   request, at `error` level. Nothing secret is put into an internal message in the
//!   first place.
//! - Domain code returns `Result<T>`; only the edges turn an `Error` into a status, a
//!   page or an exit code.

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
    Internal(Internal),
}

/// An internal failure: what was being done, and the error that stopped it (when one
/// did). Shown whole in the log only.
#[derive(Debug)]
pub struct Internal {
    context: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Internal {
    /// The cause, when the failure came from another error.
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl std::fmt::Display for Internal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.context)?;
        let mut cause: Option<&(dyn std::error::Error + 'static)> = self.source.as_deref().map(|e| e as _);
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

impl std::error::Error for Internal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

impl Error {
    /// The kind of error as a short name (`bad_request`, `not_found`...), for edges that
    /// carry it without HTTP (the admin socket); [`Error::from_code`] reads it back.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::Gone(_) => "gone",
            Error::TooLarge(_) => "too_large",
            Error::RateLimited(_) => "rate_limited",
            Error::InsufficientStorage(_) => "insufficient_storage",
            Error::Upstream(_) => "upstream",
            Error::Config(_) => "config",
            Error::Internal(_) => "internal",
        }
    }

    /// The error of a [`Error::code`] and its message (an unknown code is internal).
    pub fn from_code(code: &str, message: String) -> Error {
        match code {
            "bad_request" => Error::BadRequest(message),
            "unauthorized" => Error::Unauthorized(message),
            "forbidden" => Error::Forbidden(message),
            "not_found" => Error::NotFound(message),
            "conflict" => Error::Conflict(message),
            "gone" => Error::Gone(message),
            "too_large" => Error::TooLarge(message),
            "rate_limited" => Error::RateLimited(message),
            "insufficient_storage" => Error::InsufficientStorage(message),
            "upstream" => Error::Upstream(message),
            "config" => Error::Config(vec![message]),
            _ => Error::internal(message.strip_prefix("internal error: ").unwrap_or(&message)),
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

    /// An internal failure described by `msg` alone.
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Error::Internal(Internal {
            context: msg.to_string(),
            source: None,
        })
    }

    /// An internal failure: `context` (what was being done) and the error that stopped it.
    pub fn internal_from(
        context: impl std::fmt::Display,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Internal(Internal {
            context: context.to_string(),
            source: Some(Box::new(source)),
        })
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull {
            return Error::disk_full();
        }
        Error::internal_from("i/o", e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::internal_from("json", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_are_not_shown_to_clients() {
        let e = Error::internal("/var/lib/lifeboat/db: permission denied");
        assert_eq!(e.code(), "internal");
        assert_eq!(e.client_message(), "internal error");
        let e = Error::bad("sequence must be between 1 and 2^53-1");
        assert_eq!(e.code(), "bad_request");
        assert_eq!(e.client_message(), "sequence must be between 1 and 2^53-1");
    }

    #[test]
    fn an_internal_error_keeps_its_cause_and_shows_the_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let e = Error::from(io);
        let Error::Internal(internal) = &e else { panic!("{e:?}") };
        assert_eq!(
            internal.cause().map(|c| c.to_string()).as_deref(),
            Some("permission denied"),
            "the source error is kept, not only its text"
        );
        assert_eq!(e.to_string(), "internal error: i/o: permission denied");
        assert_eq!(e.client_message(), "internal error");
    }

    #[test]
    fn codes_read_back_to_the_same_kind() {
        for e in [
            Error::bad("x"),
            Error::NotFound("x".into()),
            Error::Upstream("x".into()),
            Error::Gone("x".into()),
        ] {
            let back = Error::from_code(e.code(), e.to_string());
            assert_eq!((back.code(), back.to_string()), (e.code(), e.to_string()));
        }
        assert_eq!(
            Error::from_code("internal", "internal error: boom".into()).to_string(),
            "internal error: boom"
        );
    }
}
