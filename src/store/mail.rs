//! The mail queue on sled: see [`crate::mail::MailQueueStore`].
pub use crate::mail::QueuedMail;
