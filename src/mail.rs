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
    /// Queues `mail` under `id` inside the caller's unit of work (placeholder: the mail
    /// module replaces this with the same signature).
    pub fn enqueue_in(
        &self,
        tx: &crate::store::Tx,
        id: u64,
        mail: &Mail,
    ) -> std::result::Result<(), sled::transaction::ConflictableTransactionError<crate::Error>> {
        let queued = QueuedMail {
            to: mail.to.clone(),
            subject: mail.subject.clone(),
            body: mail.text.clone(),
        };
        tx.put(crate::store::Tree::MailQueue, &id.to_be_bytes(), &queued)
    }
    /// Tells the worker to look at the queue (placeholder).
    pub fn wake(&self) {}
    pub async fn run(self, _shutdown: tokio::sync::watch::Receiver<bool>) {}
}
