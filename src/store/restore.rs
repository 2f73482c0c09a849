//! The restore flow's storage on sled: see [`crate::arrivals::restore::RestoreStore`] and
//! [`crate::arrivals::restore::RestoreTx`]. Key layouts are documented on the [`Tree`]
//! variants `restore_tokens` and `restore_addresses`.

use super::{decode, Store, Tree, Tx};
use crate::arrivals::restore::{RestoreAddress, RestoreStore, RestoreToken, RestoreTx, TxResult};
use crate::{Error, Result};

/// Checks one value of a `restore_*` tree, for `lifeboat check`.
pub(super) fn check_value(tree: Tree, key: &[u8], value: &[u8]) -> Result<()> {
    match tree {
        Tree::RestoreTokens => {
            if key.len() != 32 {
                return Err(Error::internal("key is not a 32-byte token hash"));
            }
            decode::<RestoreToken>(value).map(|_| ())
        }
        Tree::RestoreAddresses => decode::<RestoreAddress>(value).map(|_| ()),
        _ => Ok(()),
    }
}

fn hash_key(key: &[u8]) -> Result<[u8; 32]> {
    key.try_into()
        .map_err(|_| Error::internal(format!("restore_tokens: bad key {}", hex::encode(key))))
}

impl RestoreStore for Store {
    fn restore_token(&self, hash: &[u8; 32]) -> Result<Option<RestoreToken>> {
        self.tree(Tree::RestoreTokens)
            .get(hash)?
            .map(|v| decode(&v))
            .transpose()
    }

    fn restore_tokens(&self) -> Result<Vec<([u8; 32], RestoreToken)>> {
        let mut out = Vec::new();
        for entry in self.tree(Tree::RestoreTokens).iter() {
            let (key, value) = entry?;
            out.push((hash_key(&key)?, decode(&value)?));
        }
        Ok(out)
    }

    fn restore_addresses(&self) -> Result<Vec<(String, RestoreAddress)>> {
        let mut out = Vec::new();
        for entry in self.tree(Tree::RestoreAddresses).iter() {
            let (key, value) = entry?;
            let email = String::from_utf8(key.to_vec())
                .map_err(|_| Error::internal("restore_addresses: a key is not UTF-8"))?;
            out.push((email, decode(&value)?));
        }
        Ok(out)
    }
}

impl RestoreTx for Tx<'_> {
    fn restore_token(&self, hash: &[u8; 32]) -> TxResult<Option<RestoreToken>> {
        self.get(Tree::RestoreTokens, hash)
    }

    fn put_restore_token(&self, hash: &[u8; 32], token: &RestoreToken) -> TxResult<()> {
        self.put(Tree::RestoreTokens, hash, token)
    }

    fn remove_restore_token(&self, hash: &[u8; 32]) -> TxResult<()> {
        self.tree(Tree::RestoreTokens).remove(&hash[..])?;
        Ok(())
    }

    fn restore_address(&self, email: &str) -> TxResult<RestoreAddress> {
        Ok(self.get(Tree::RestoreAddresses, email.as_bytes())?.unwrap_or_default())
    }

    fn put_restore_address(&self, email: &str, record: &RestoreAddress) -> TxResult<()> {
        if record.current.is_none() && record.mailed_unix.is_empty() {
            self.tree(Tree::RestoreAddresses).remove(email.as_bytes())?;
            return Ok(());
        }
        self.put(Tree::RestoreAddresses, email.as_bytes(), record)
    }
}
