//! The holder's slots on sled: see [`crate::backup::holder::SlotStore`]. Key layouts
//! are documented on the [`Tree`] variants `backup_*`.

use super::{decode, decode_raw, encode_raw, Store, Tree, Tx};
use crate::backup::holder::{
    AddressRecord, ConfirmToken, MailHour, Slot, SlotKey, SlotStore, SlotTx, Totals, TxResult,
};
use crate::mail::{Mail, Mailer};
use crate::{Error, Result};

const TOTALS: &[u8] = b"totals";
const MAIL_HOUR: &[u8] = b"mail_hour";

/// The holder's storage: the store, and the mailer whose queue shares its units of work.
#[derive(Clone)]
pub struct SledSlots {
    store: Store,
    mailer: Mailer,
}

impl SledSlots {
    pub fn new(store: Store, mailer: Mailer) -> SledSlots {
        SledSlots { store, mailer }
    }
}

/// Checks one value of a `backup_*` tree, for `lifeboat check`.
pub(super) fn check_value(tree: Tree, key: &[u8], value: &[u8]) -> Result<()> {
    let bad_key = || Error::internal("key is not email 0x00 fingerprint");
    match tree {
        Tree::BackupSlots => {
            SlotKey::from_bytes(key).ok_or_else(bad_key)?;
            decode::<Slot>(value).map(|_| ())
        }
        Tree::BackupData => {
            SlotKey::from_bytes(key).ok_or_else(bad_key)?;
            crate::sealed::Header::parse(decode_raw(value)?)
                .map(|_| ())
                .map_err(|e| Error::internal(format!("held backup: {e}")))
        }
        Tree::BackupAddresses => decode::<AddressRecord>(value).map(|_| ()),
        Tree::BackupTokens => decode::<ConfirmToken>(value).map(|_| ()),
        Tree::BackupCounters => match key {
            TOTALS => decode::<Totals>(value).map(|_| ()),
            MAIL_HOUR => decode::<MailHour>(value).map(|_| ()),
            _ => Err(Error::internal("unknown counter")),
        },
        _ => Ok(()),
    }
}

/// The holder's view inside a unit of work.
pub struct SledSlotTx<'t> {
    tx: &'t Tx<'t>,
    mailer: &'t Mailer,
}

impl<'t> SledSlotTx<'t> {
    /// The holder's view inside a unit of work that spans more than slots (a restore:
    /// token, slot, account and outbox together).
    pub fn new(tx: &'t Tx<'t>, mailer: &'t Mailer) -> SledSlotTx<'t> {
        SledSlotTx { tx, mailer }
    }
}

impl SlotStore for SledSlots {
    type Tx<'t> = SledSlotTx<'t>;

    fn unit<R>(&self, work: impl Fn(&Self::Tx<'_>) -> TxResult<R>) -> Result<R> {
        self.store.transaction(|tx| {
            work(&SledSlotTx {
                tx,
                mailer: &self.mailer,
            })
        })
    }

    fn slot(&self, key: &SlotKey) -> Result<Option<Slot>> {
        self.store
            .tree(Tree::BackupSlots)
            .get(key.to_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    fn slots(&self) -> Result<Vec<(SlotKey, Slot)>> {
        let mut out = Vec::new();
        for entry in self.store.tree(Tree::BackupSlots).iter() {
            let (key, value) = entry?;
            let key = SlotKey::from_bytes(&key)
                .ok_or_else(|| Error::internal(format!("backup_slots: bad key {}", hex::encode(&key))))?;
            out.push((key, decode(&value)?));
        }
        Ok(out)
    }

    fn slots_of(&self, email: &str) -> Result<Vec<(SlotKey, Slot)>> {
        let mut prefix = email.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for entry in self.store.tree(Tree::BackupSlots).scan_prefix(&prefix) {
            let (key, value) = entry?;
            let key = SlotKey::from_bytes(&key)
                .ok_or_else(|| Error::internal(format!("backup_slots: bad key {}", hex::encode(&key))))?;
            // A longer address can share the prefix only up to its own 0x00, which an
            // address never holds: every key under this prefix is this address's.
            if key.email == email {
                out.push((key, decode(&value)?));
            }
        }
        Ok(out)
    }

    fn backup(&self, key: &SlotKey) -> Result<Option<Vec<u8>>> {
        match self.store.tree(Tree::BackupData).get(key.to_bytes())? {
            Some(value) => Ok(Some(decode_raw(&value)?.to_vec())),
            None => Ok(None),
        }
    }

    fn token(&self, hash: &[u8; 32]) -> Result<Option<ConfirmToken>> {
        self.store
            .tree(Tree::BackupTokens)
            .get(hash)?
            .map(|v| decode(&v))
            .transpose()
    }

    fn totals(&self) -> Result<Totals> {
        Ok(self
            .store
            .tree(Tree::BackupCounters)
            .get(TOTALS)?
            .map(|v| decode(&v))
            .transpose()?
            .unwrap_or_default())
    }

    fn mail_id(&self) -> Result<u64> {
        self.store.generate_id()
    }

    fn durable(&self) -> impl std::future::Future<Output = Result<()>> + Send {
        let store = self.store.clone();
        async move { store.durable().await }
    }

    fn wake_mailer(&self) {
        self.mailer.wake();
    }
}

impl SlotTx for SledSlotTx<'_> {
    fn slot(&self, key: &SlotKey) -> TxResult<Option<Slot>> {
        self.tx.get(Tree::BackupSlots, &key.to_bytes())
    }

    fn put_slot(&self, key: &SlotKey, slot: &Slot) -> TxResult<()> {
        self.tx.put(Tree::BackupSlots, &key.to_bytes(), slot)
    }

    fn remove_slot(&self, key: &SlotKey) -> TxResult<()> {
        self.tx.tree(Tree::BackupSlots).remove(key.to_bytes())?;
        Ok(())
    }

    fn put_backup(&self, key: &SlotKey, lfbk: &[u8]) -> TxResult<()> {
        self.tx
            .tree(Tree::BackupData)
            .insert(key.to_bytes(), encode_raw(lfbk))?;
        Ok(())
    }

    fn remove_backup(&self, key: &SlotKey) -> TxResult<()> {
        self.tx.tree(Tree::BackupData).remove(key.to_bytes())?;
        Ok(())
    }

    fn address(&self, email: &str) -> TxResult<AddressRecord> {
        Ok(self
            .tx
            .get(Tree::BackupAddresses, email.as_bytes())?
            .unwrap_or_default())
    }

    fn put_address(&self, email: &str, record: &AddressRecord) -> TxResult<()> {
        if record.slots.is_empty() && record.last_mail_unix.is_none() {
            self.tx.tree(Tree::BackupAddresses).remove(email.as_bytes())?;
            return Ok(());
        }
        self.tx.put(Tree::BackupAddresses, email.as_bytes(), record)
    }

    fn totals(&self) -> TxResult<Totals> {
        Ok(self.tx.get(Tree::BackupCounters, TOTALS)?.unwrap_or_default())
    }

    fn put_totals(&self, totals: &Totals) -> TxResult<()> {
        self.tx.put(Tree::BackupCounters, TOTALS, totals)
    }

    fn mail_hour(&self) -> TxResult<MailHour> {
        Ok(self.tx.get(Tree::BackupCounters, MAIL_HOUR)?.unwrap_or_default())
    }

    fn put_mail_hour(&self, hour: &MailHour) -> TxResult<()> {
        self.tx.put(Tree::BackupCounters, MAIL_HOUR, hour)
    }

    fn token(&self, hash: &[u8; 32]) -> TxResult<Option<ConfirmToken>> {
        self.tx.get(Tree::BackupTokens, hash)
    }

    fn put_token(&self, hash: &[u8; 32], token: &ConfirmToken) -> TxResult<()> {
        self.tx.put(Tree::BackupTokens, hash, token)
    }

    fn remove_token(&self, hash: &[u8; 32]) -> TxResult<()> {
        self.tx.tree(Tree::BackupTokens).remove(&hash[..])?;
        Ok(())
    }

    fn enqueue_mail(&self, id: u64, mail: &Mail) -> TxResult<()> {
        self.mailer.enqueue_in(self.tx, id, mail)
    }
}
