//! Outgoing mail (placeholder until the mail module lands).
use serde::{Deserialize, Serialize};

/// A message waiting in the durable queue.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QueuedMail {
    pub to: String,
    pub subject: String,
    pub body: String,
}
