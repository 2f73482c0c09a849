//! The mail queue on sled: see [`crate::mail::MailQueueStore`].
//!
//! Tree `mail_queue`: the id (u64 big-endian, from [`Store::generate_id`], so iteration
//! is creation order) -> [`QueuedMail`]. The queue is small (mails wait minutes, rarely
//! days), so the worker's reads scan it whole.

pub use crate::mail::QueuedMail;
use crate::mail::{MailQueueStore, MailQueueTx};
use crate::store::{decode, Store, Tree, Tx};
use crate::{Error, Result};

fn key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

impl MailQueueTx for Tx<'_> {
    fn put_mail(&self, id: u64, mail: &QueuedMail) -> super::TxResult<()> {
        self.put(Tree::MailQueue, &key(id), mail)
    }
}

impl MailQueueStore for Store {
    fn queued_mails(&self) -> Result<Vec<(u64, QueuedMail)>> {
        let mut out = Vec::new();
        for entry in self.tree(Tree::MailQueue).iter() {
            let (k, v) = entry?;
            let decoded = <[u8; 8]>::try_from(k.as_ref())
                .map_err(|_| Error::internal("key is not 8 bytes"))
                .and_then(|id| Ok((u64::from_be_bytes(id), decode::<QueuedMail>(&v)?)));
            match decoded {
                Ok(item) => out.push(item),
                // One damaged entry must not stop every other mail.
                Err(e) => tracing::error!("mail_queue: entry {} skipped: {e}", hex::encode(&k)),
            }
        }
        Ok(out)
    }

    fn due_mails(&self, now: u64) -> Result<Vec<(u64, QueuedMail)>> {
        let mut mails = self.queued_mails()?;
        mails.retain(|(_, mail)| mail.next_attempt_unix <= now);
        Ok(mails)
    }

    fn next_mail_due(&self) -> Result<Option<u64>> {
        Ok(self
            .queued_mails()?
            .iter()
            .map(|(_, mail)| mail.next_attempt_unix)
            .min())
    }

    fn remove_mail(&self, id: u64) -> Result<bool> {
        Ok(self.tree(Tree::MailQueue).remove(key(id))?.is_some())
    }

    fn reschedule_mail(&self, id: u64, attempts: u32, next_attempt_unix: u64, last_error: &str) -> Result<bool> {
        self.transaction(|tx| {
            let Some(mut mail) = tx.get::<QueuedMail>(Tree::MailQueue, &key(id))? else {
                return Ok(false);
            };
            mail.attempts = attempts;
            mail.next_attempt_unix = next_attempt_unix;
            mail.last_error = Some(last_error.to_string());
            tx.put(Tree::MailQueue, &key(id), &mail)?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::Mail;

    fn queued(to: &str, next: u64) -> QueuedMail {
        QueuedMail {
            mail: Mail::new(to, "s", "t"),
            attempts: 0,
            next_attempt_unix: next,
            created_unix: 100,
            last_error: None,
        }
    }

    /// Opens the store again once the previous one has let go: its group-commit task
    /// holds sled's lock until it has run and seen the store dropped.
    async fn reopen(dir: &std::path::Path) -> Store {
        for _ in 0..500 {
            match Store::open(dir) {
                Ok(store) => return store,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
        Store::open(dir).map_err(|e| format!("{e:?}")).unwrap()
    }

    #[tokio::test]
    async fn the_queue_keeps_order_schedules_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c);
        {
            let store = Store::open(dir.path()).unwrap();
            a = store.generate_id().unwrap();
            b = store.generate_id().unwrap();
            c = store.generate_id().unwrap();
            store
                .transaction(|tx| {
                    tx.put_mail(c, &queued("c@example.org", 300))?;
                    tx.put_mail(a, &queued("a@example.org", 100))?;
                    tx.put_mail(b, &queued("b@example.org", 200))
                })
                .unwrap();
            let order: Vec<u64> = store.queued_mails().unwrap().iter().map(|(id, _)| *id).collect();
            assert_eq!(order, [a, b, c], "creation order");
            assert_eq!(
                store
                    .due_mails(200)
                    .unwrap()
                    .iter()
                    .map(|(id, _)| *id)
                    .collect::<Vec<_>>(),
                [a, b]
            );
            assert_eq!(store.next_mail_due().unwrap(), Some(100));

            assert!(store.reschedule_mail(a, 1, 500, "mail server: 451 try later").unwrap());
            assert_eq!(store.next_mail_due().unwrap(), Some(200));
            assert!(store.remove_mail(b).unwrap());
            assert!(!store.remove_mail(b).unwrap());
            assert!(
                !store.reschedule_mail(b, 1, 500, "x").unwrap(),
                "a removed mail is not brought back"
            );
            store.durable().await.unwrap();
        }
        let store = reopen(dir.path()).await;
        let mails = store.queued_mails().unwrap();
        assert_eq!(mails.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [a, c]);
        assert_eq!(mails[0].1.attempts, 1);
        assert_eq!(mails[0].1.next_attempt_unix, 500);
        assert_eq!(mails[0].1.last_error.as_deref(), Some("mail server: 451 try later"));
        assert!(store.check().unwrap().problems.is_empty());
    }

    #[tokio::test]
    async fn a_damaged_entry_does_not_block_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.tree(Tree::MailQueue).insert(key(1), &[9u8, 9, 9][..]).unwrap();
        store
            .transaction(|tx| tx.put_mail(2, &queued("a@example.org", 0)))
            .unwrap();
        assert_eq!(store.due_mails(0).unwrap().len(), 1);
        assert_eq!(store.check().unwrap().problems.len(), 1);
    }
}
