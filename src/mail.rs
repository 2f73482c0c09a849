//! Outgoing mail (placeholder until the mail module lands).
use serde::{Deserialize, Serialize};

/// A message waiting in the durable queue.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QueuedMail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// A plain-text message.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// Placeholder mailer until the mail module lands.
#[derive(Clone)]
pub struct Mailer;

impl Mailer {
    pub fn new(_config: &crate::config::Config, _store: crate::store::Store) -> crate::Result<Mailer> {
        Ok(Mailer)
    }
    pub async fn send_now(&self, _mail: &Mail) -> crate::Result<()> {
        Err(crate::Error::internal("mail not implemented yet"))
    }
    pub async fn run(self, _shutdown: tokio::sync::watch::Receiver<bool>) {}
}
