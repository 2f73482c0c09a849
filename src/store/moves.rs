//! What received moves still owe, on sled: see [`crate::migration::receive::ResendStore`]
//! and [`crate::migration::receive::ResendTx`]. Tree `contact_resends`: username 0x00
//! new diaspora ID -> empty value; one entry per local user whose `contact` must still
//! be sent to an identity that moved.

use super::{Store, Tree, Tx};
use crate::account::TxResult;
use crate::migration::receive::{Resend, ResendStore, ResendTx};
use crate::{Error, Result};

fn resend_key(resend: &Resend) -> Vec<u8> {
    [resend.username.as_bytes(), &[0], resend.new_id.as_bytes()].concat()
}

fn split_resend_key(key: &[u8]) -> Option<Resend> {
    let at = key.iter().position(|b| *b == 0)?;
    let username = std::str::from_utf8(&key[..at]).ok()?;
    let new_id = std::str::from_utf8(&key[at + 1..]).ok()?;
    (!username.is_empty() && !new_id.is_empty()).then(|| Resend {
        username: username.to_string(),
        new_id: new_id.to_string(),
    })
}

/// `lifeboat check`: a key must be `username 0x00 diaspora ID`.
pub fn check_resend_key(key: &[u8]) -> Result<()> {
    split_resend_key(key)
        .map(|_| ())
        .ok_or_else(|| Error::internal("a contact re-send key is not username 0x00 diaspora ID"))
}

impl ResendStore for Store {
    fn waiting_resends(&self, limit: usize) -> Result<Vec<Resend>> {
        let mut out = Vec::new();
        for key in self.tree(Tree::ContactResends).iter().keys() {
            if out.len() >= limit {
                break;
            }
            match split_resend_key(&key?) {
                Some(resend) => out.push(resend),
                None => tracing::warn!("a damaged contact re-send entry is skipped (lifeboat check reports it)"),
            }
        }
        Ok(out)
    }
}

impl ResendTx for Tx<'_> {
    fn queue_resend(&self, resend: &Resend) -> TxResult<()> {
        self.tree(Tree::ContactResends).insert(resend_key(resend), &[][..])?;
        Ok(())
    }

    fn take_resend(&self, resend: &Resend) -> TxResult<bool> {
        Ok(self.tree(Tree::ContactResends).remove(resend_key(resend))?.is_some())
    }
}
