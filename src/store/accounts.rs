//! Accounts, tokens and sessions on sled: see [`crate::account::AccountStore`].
//!
//! Trees (layouts also on their `Tree` variants): `accounts` username -> Account;
//! `account_emails` normalised email -> username; `account_guids` guid -> username;
//! `tokens` SHA-256(token) -> TokenRecord; `sessions` (see `account::session`).

use crate::account::{Account, AccountStore, AccountTx, TokenRecord, TxResult};
use crate::store::{decode, Store, Tree, Tx};
use crate::Result;

impl AccountStore for Store {
    fn account(&self, username: &str) -> Result<Option<Account>> {
        self.tree(Tree::Accounts).get(username)?.map(|b| decode(&b)).transpose()
    }

    fn username_for_email(&self, email: &str) -> Result<Option<String>> {
        self.tree(Tree::AccountEmails)
            .get(email)?
            .map(|b| decode(&b))
            .transpose()
    }

    fn account_by_guid(&self, guid: &str) -> Result<Option<Account>> {
        match self.tree(Tree::AccountGuids).get(guid)? {
            Some(bytes) => AccountStore::account(self, &decode::<String>(&bytes)?),
            None => Ok(None),
        }
    }

    fn accounts(&self) -> Result<Vec<Account>> {
        self.tree(Tree::Accounts).iter().values().map(|v| decode(&v?)).collect()
    }
}

impl AccountTx for Tx<'_> {
    fn account(&self, username: &str) -> TxResult<Option<Account>> {
        self.get(Tree::Accounts, username.as_bytes())
    }

    fn username_for_email(&self, email: &str) -> TxResult<Option<String>> {
        self.get(Tree::AccountEmails, email.as_bytes())
    }

    fn put_account(&self, previous: Option<&Account>, account: &Account) -> TxResult<()> {
        if let Some(previous) = previous {
            if previous.email != account.email || account.closed.is_some() {
                self.tree(Tree::AccountEmails).remove(previous.email.as_bytes())?;
            }
            if previous.guid != account.guid {
                self.tree(Tree::AccountGuids).remove(previous.guid.as_bytes())?;
            }
        }
        if account.closed.is_none() {
            self.put(Tree::AccountEmails, account.email.as_bytes(), &account.username)?;
        }
        self.put(Tree::AccountGuids, account.guid.as_bytes(), &account.username)?;
        // Any change to an account may change its backup: the worker takes it up.
        super::backup_sync::note_account_changed(self, &account.username)?;
        self.put(Tree::Accounts, account.username.as_bytes(), account)
    }

    fn put_token(&self, token: &str, record: &TokenRecord) -> TxResult<()> {
        self.put(Tree::Tokens, &crate::account::credentials::token_hash(token), record)
    }

    fn take_token(&self, token: &str) -> TxResult<Option<TokenRecord>> {
        let key = crate::account::credentials::token_hash(token);
        let record = self.get(Tree::Tokens, &key)?;
        self.tree(Tree::Tokens).remove(&key)?;
        Ok(record)
    }
}
