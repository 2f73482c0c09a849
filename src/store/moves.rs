//! Moves on sled: see [`crate::arrivals::MovesStore`] (trees `moves_out`, `moves_in`,
//! `pending_closures`, `contact_moves`; layouts on their `Tree` variants) and what
//! received moves still owe ([`crate::arrivals::received::ResendStore`]). Tree
//! `contact_resends`: username 0x00
//! new diaspora ID -> empty value; one entry per local user whose `contact` must still
//! be sent to an identity that moved.

use super::{decode, Store, Tree, Tx};
use crate::account::TxResult;
use crate::arrivals::received::{PendingClosure, ReceivedMove, Resend, ResendStore, ResendTx};
use crate::arrivals::{MovesStore, MovesTx, OutgoingMove};
use crate::{Error, Result};

/// `contact_moves` key: username 0x00 new diaspora ID.
fn contact_move_key(username: &str, new_id: &str) -> Vec<u8> {
    [username.as_bytes(), &[0], new_id.as_bytes()].concat()
}

impl MovesStore for Store {
    fn outgoing_move(&self, username: &str) -> Result<Option<OutgoingMove>> {
        self.tree(Tree::MovesOut).get(username)?.map(|b| decode(&b)).transpose()
    }

    fn received_move(&self, old_id: &str) -> Result<Option<ReceivedMove>> {
        self.tree(Tree::MovesIn).get(old_id)?.map(|b| decode(&b)).transpose()
    }

    fn pending_closure(&self, username: &str) -> Result<Option<PendingClosure>> {
        self.tree(Tree::PendingClosures)
            .get(username)?
            .map(|b| decode(&b))
            .transpose()
    }

    fn pending_closures(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for key in self.tree(Tree::PendingClosures).iter().keys() {
            if let Ok(name) = String::from_utf8(key?.to_vec()) {
                out.push(name);
            }
        }
        Ok(out)
    }

    fn cancel_closure(&self, username: &str) -> Result<()> {
        self.tree(Tree::PendingClosures).remove(username)?;
        Ok(())
    }

    fn contact_moved_from(&self, username: &str, new_id: &str) -> Result<Option<String>> {
        Ok(self
            .tree(Tree::ContactMoves)
            .get(contact_move_key(username, new_id))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}

impl MovesTx for Tx<'_> {
    fn put_outgoing_move(&self, username: &str, outgoing: &OutgoingMove) -> TxResult<()> {
        self.put(Tree::MovesOut, username.as_bytes(), outgoing)
    }

    fn received_move(&self, old_id: &str) -> TxResult<Option<ReceivedMove>> {
        self.get(Tree::MovesIn, old_id.as_bytes())
    }

    fn put_received_move(&self, received: &ReceivedMove) -> TxResult<()> {
        self.put(Tree::MovesIn, received.old_id.as_bytes(), received)
    }

    fn put_pending_closure(&self, username: &str, closure: &PendingClosure) -> TxResult<()> {
        self.put(Tree::PendingClosures, username.as_bytes(), closure)
    }

    fn remove_pending_closure(&self, username: &str) -> TxResult<()> {
        self.tree(Tree::PendingClosures).remove(username.as_bytes())?;
        Ok(())
    }

    fn note_contact_moved(&self, username: &str, new_id: &str, old_id: &str) -> TxResult<()> {
        self.tree(Tree::ContactMoves)
            .insert(contact_move_key(username, new_id), old_id.as_bytes())?;
        Ok(())
    }
}

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
