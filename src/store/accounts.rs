//! Accounts, tokens and sessions on sled: see [`crate::account::AccountStore`].
//!
//! Trees (layouts also on their `Tree` variants): `accounts` username -> Account;
//! `account_emails` normalised email -> username; `account_guids` guid -> username;
//! `tokens` SHA-256(token) -> TokenRecord; `sessions` (see `account::session`).

use crate::account::{profile, Account, AccountStore, AccountTx, ContactData, TokenRecord, TxResult};
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

impl crate::account::keys::KeyPoolStore for Store {
    fn pop_key(&self) -> Result<Option<crate::account::keys::KeyPair>> {
        match self.tree(Tree::KeyPool).pop_min()? {
            Some((_, value)) => Ok(Some(decode(&value)?)),
            None => Ok(None),
        }
    }

    fn pool_key(&self, pair: &crate::account::keys::KeyPair) -> Result<()> {
        let id = self.generate_id()?;
        self.tree(Tree::KeyPool)
            .insert(id.to_be_bytes(), crate::store::encode(pair))?;
        Ok(())
    }

    fn pooled_keys(&self) -> usize {
        self.tree(Tree::KeyPool).len()
    }
}

impl crate::account::session::SessionStore for Store {
    fn session(&self, key: &[u8; 32]) -> Result<Option<crate::account::session::Session>> {
        self.tree(Tree::Sessions).get(key)?.map(|b| decode(&b)).transpose()
    }

    fn put_session(&self, key: &[u8; 32], session: &crate::account::session::Session) -> Result<()> {
        self.tree(Tree::Sessions).insert(key, crate::store::encode(session))?;
        Ok(())
    }

    fn remove_session(&self, key: &[u8; 32]) -> Result<()> {
        self.tree(Tree::Sessions).remove(key)?;
        Ok(())
    }
}

impl AccountTx for Tx<'_> {
    fn account(&self, username: &str) -> TxResult<Option<Account>> {
        self.get(Tree::Accounts, username.as_bytes())
    }

    fn username_for_email(&self, email: &str) -> TxResult<Option<String>> {
        self.get(Tree::AccountEmails, email.as_bytes())
    }

    fn write_account(&self, previous: Option<&Account>, account: &Account) -> TxResult<()> {
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
        self.put(Tree::Accounts, account.username.as_bytes(), account)
    }

    fn note_account_changed(&self, username: &str) -> TxResult<()> {
        super::backup_sync::note_account_changed(self, username)
    }

    fn put_token(&self, hash: &[u8; 32], record: &TokenRecord) -> TxResult<()> {
        self.put(Tree::Tokens, hash, record)
    }

    fn take_token(&self, hash: &[u8; 32]) -> TxResult<Option<TokenRecord>> {
        let key = *hash;
        let record = self.get(Tree::Tokens, &key)?;
        self.tree(Tree::Tokens).remove(&key)?;
        Ok(record)
    }
}

/// Accounts as schema 4 stored them: contacts with lifeboat's first reading of the
/// flags (`sharing` = the user shares with them) and the archive's mirrors stored too.
mod schema4 {
    use serde::{Deserialize, Serialize};

    use crate::account::{Avatar, Closed, MovedFrom, ProfileData};

    #[derive(Deserialize, Serialize)]
    pub struct Contact {
        pub diaspora_id: String,
        pub person_guid: Option<String>,
        pub person_name: Option<String>,
        pub public_key: Option<String>,
        pub sharing: bool,
        pub receiving: bool,
        pub _following: bool,
        pub _followed: bool,
        pub aspects: Vec<String>,
    }

    #[derive(Deserialize, Serialize)]
    pub struct Account {
        pub username: String,
        pub guid: String,
        pub email: String,
        pub email_confirmed: bool,
        pub password_hash: String,
        pub language: String,
        pub private_key_pem: String,
        pub public_key_pem: String,
        pub created_unix: u64,
        pub profile: ProfileData,
        pub aspects: Vec<String>,
        pub contacts: Vec<Contact>,
        pub followed_tags: Vec<String>,
        pub blocks: Vec<String>,
        pub verbatim_json: String,
        pub known_pods: Vec<String>,
        pub avatar: Option<Avatar>,
        pub moved_from: Option<MovedFrom>,
        pub closed: Option<Closed>,
        pub moving: bool,
        pub sealing_key: Option<crate::sealed::SealingKey>,
        pub backups_opted_out: bool,
    }
}

/// Schema 4 → 5: contact flags take diaspora*'s meaning. Contacts lifeboat made have
/// their two flags swapped; an account that arrived from a diaspora* export (an
/// archive without lifeboat's key: `moved_from` without a guid) keeps its contacts'
/// flags, which the importer stored as diaspora* wrote them. Aspect names are then
/// repaired as an import repairs them, and contacts the user shares with put into an
/// aspect. Every account changed is queued for a backup push. One unit of work.
pub(super) fn upgrade_to_schema5(store: &Store) -> Result<()> {
    let mut upgraded = Vec::new();
    for value in store.tree(Tree::Accounts).iter().values() {
        let old: schema4::Account = decode(&value?)?;
        let from_diaspora_export = old.moved_from.as_ref().is_some_and(|m| m.guid.is_none());
        let swapped = old.contacts.len();
        let contacts: Vec<ContactData> = old
            .contacts
            .into_iter()
            .map(|c| {
                let (sharing, receiving) = if from_diaspora_export {
                    (c.sharing, c.receiving)
                } else {
                    (c.receiving, c.sharing)
                };
                ContactData {
                    diaspora_id: c.diaspora_id,
                    person_guid: c.person_guid,
                    person_name: c.person_name,
                    public_key: c.public_key,
                    sharing,
                    receiving,
                    aspects: c.aspects,
                }
            })
            .collect();
        let mut account = Account {
            username: old.username,
            guid: old.guid,
            email: old.email,
            email_confirmed: old.email_confirmed,
            password_hash: old.password_hash,
            language: old.language,
            private_key_pem: old.private_key_pem,
            public_key_pem: old.public_key_pem,
            created_unix: old.created_unix,
            profile: old.profile,
            aspects: old.aspects,
            contacts,
            followed_tags: old.followed_tags,
            blocks: old.blocks,
            verbatim_json: old.verbatim_json,
            known_pods: old.known_pods,
            avatar: old.avatar,
            moved_from: old.moved_from,
            closed: old.closed,
            moving: old.moving,
            sealing_key: old.sealing_key,
            backups_opted_out: old.backups_opted_out,
        };
        let (mut names, became, mut notes) = profile::repair_aspect_names(&account.aspects);
        if account.closed.is_none() {
            notes.extend(profile::place_contacts_in_aspects(
                &mut names,
                &became,
                &mut account.contacts,
            ));
        }
        account.aspects = names;
        tracing::info!(
            username = %account.username,
            contacts = swapped,
            flags_swapped = !from_diaspora_export,
            repairs = %notes.join("; "),
            "account upgraded to schema 5"
        );
        upgraded.push(account);
    }
    store.transaction(|tx| {
        for account in &upgraded {
            tx.put(Tree::Accounts, account.username.as_bytes(), account)?;
            super::backup_sync::note_account_changed(tx, &account.username)?;
        }
        tx.tree(Tree::Meta).insert("schema_version", &5u32.to_be_bytes())?;
        Ok(())
    })?;
    store.flush()?;
    tracing::info!(
        accounts = upgraded.len(),
        "store upgraded to schema 5: contact flags as diaspora* means them"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::MovedFrom;

    fn contact(id: &str, sharing: bool, receiving: bool, aspects: &[&str]) -> schema4::Contact {
        schema4::Contact {
            diaspora_id: id.into(),
            person_guid: None,
            person_name: None,
            public_key: None,
            sharing,
            receiving,
            _following: sharing,
            _followed: receiving,
            aspects: aspects.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn old_account(username: &str, moved_from: Option<MovedFrom>, contacts: Vec<schema4::Contact>) -> schema4::Account {
        schema4::Account {
            username: username.into(),
            guid: format!("{username:0>16}"),
            email: format!("{username}@example.org"),
            email_confirmed: true,
            password_hash: String::new(),
            language: "en".into(),
            private_key_pem: String::new(),
            public_key_pem: String::new(),
            created_unix: 1,
            profile: Default::default(),
            aspects: vec!["Friends".into(), "A name far longer than twenty".into()],
            contacts,
            followed_tags: Vec::new(),
            blocks: Vec::new(),
            verbatim_json: "{}".into(),
            known_pods: Vec::new(),
            avatar: None,
            moved_from,
            closed: None,
            moving: false,
            sealing_key: None,
            backups_opted_out: true,
        }
    }

    #[tokio::test]
    async fn a_schema_4_store_has_its_contact_flags_swapped_to_diasporas_meaning() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path().join("db")).unwrap();
            db.open_tree(Tree::Meta.name())
                .unwrap()
                .insert("schema_version", &4u32.to_be_bytes())
                .unwrap();
            let accounts = db.open_tree(Tree::Accounts.name()).unwrap();
            // Made here: the user added bob (old `sharing`) into no aspect; carol shares
            // with the user (old `receiving`).
            let made_here = old_account(
                "anna",
                None,
                vec![
                    contact("bob@b.example", true, false, &[]),
                    contact("carol@c.example", false, true, &[]),
                    contact("dave@d.example", true, true, &["A name far longer than twenty"]),
                ],
            );
            // Imported from a diaspora* export (no lifeboat guid): stored as diaspora* wrote it.
            let from_export = old_account(
                "bert",
                Some(MovedFrom {
                    diaspora_id: "bert@old.example".into(),
                    guid: None,
                    public_key_pem: String::new(),
                    at_unix: 1,
                }),
                vec![contact("erin@e.example", false, true, &["Friends"])],
            );
            for account in [made_here, from_export] {
                accounts
                    .insert(account.username.as_bytes(), crate::store::encode(&account))
                    .unwrap();
            }
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let anna = AccountStore::account(&store, "anna").unwrap().unwrap();
        let flags: Vec<(&str, bool, bool, Vec<String>)> = anna
            .contacts
            .iter()
            .map(|c| (c.diaspora_id.as_str(), c.sharing, c.receiving, c.aspects.clone()))
            .collect();
        assert_eq!(
            flags,
            vec![
                ("bob@b.example", false, true, vec!["Friends".to_string()]),
                ("carol@c.example", true, false, vec![]),
                ("dave@d.example", true, true, vec!["A name far longer th".to_string()]),
            ],
            "swapped; the user shares with bob, so bob is put into an aspect; names shortened"
        );
        assert_eq!(anna.aspects, ["Friends", "A name far longer th"]);
        let bert = AccountStore::account(&store, "bert").unwrap().unwrap();
        assert!(
            !bert.contacts[0].sharing && bert.contacts[0].receiving,
            "kept as diaspora* wrote it"
        );
        assert_eq!(
            store.tree(Tree::Meta).get("schema_version").unwrap().unwrap().as_ref(),
            &crate::store::SCHEMA_VERSION.to_be_bytes()
        );
        assert!(
            store.tree(Tree::BackupNudges).get("anna").unwrap().is_some(),
            "the changed archive is queued for a backup push"
        );
        drop(store);
        let again = Store::open(dir.path()).unwrap();
        assert_eq!(
            AccountStore::account(&again, "anna").unwrap().unwrap(),
            anna,
            "upgraded once"
        );
    }
}
