//! Known remote people on sled: see [`crate::people::PeopleStore`] and
//! [`crate::people::PeopleTx`].
//! Tree `people`: diaspora ID (lower case, UTF-8) -> [`Person`].

use super::{abort, decode, Store, Tree, Tx};
use crate::people::{PeopleChange, PeopleStore, PeopleTx, Person, TxResult};
use crate::Result;

impl PeopleStore for Store {
    fn person(&self, diaspora_id: &str) -> Result<Option<Person>> {
        match self.tree(Tree::People).get(diaspora_id.as_bytes())? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    fn people(&self) -> Result<Vec<Person>> {
        self.tree(Tree::People).iter().values().map(|v| decode(&v?)).collect()
    }

    fn change_people(&self, ids: &[&str], change: &PeopleChange<'_>) -> Result<Vec<Option<Person>>> {
        self.transaction(|tx| {
            let mut current = Vec::with_capacity(ids.len());
            for id in ids {
                current.push(tx.get::<Person>(Tree::People, id.as_bytes())?);
            }
            let changed = match change(&current) {
                Ok(changed) => changed,
                Err(e) => return abort(e),
            };
            if changed.len() != ids.len() {
                return abort(crate::Error::internal(
                    "a change of people returned the wrong number of entries",
                ));
            }
            for (id, person) in ids.iter().zip(&changed) {
                if let Some(person) = person {
                    tx.put(Tree::People, id.as_bytes(), person)?;
                }
            }
            Ok(changed)
        })
    }
}

impl PeopleTx for Tx<'_> {
    fn person(&self, diaspora_id: &str) -> TxResult<Option<Person>> {
        self.get(Tree::People, diaspora_id.as_bytes())
    }

    fn put_person(&self, person: &Person) -> TxResult<()> {
        self.put(Tree::People, person.diaspora_id.as_bytes(), person)
    }
}

/// A person as schema 5 stored them, before `closed_unix`.
#[derive(serde::Deserialize)]
struct PersonV5 {
    diaspora_id: String,
    guid: String,
    public_key_pem: String,
    full_name: String,
    first_name: String,
    last_name: String,
    photo_url: String,
    photo_medium_url: String,
    photo_small_url: String,
    searchable: bool,
    pod_origin: String,
    fetched_unix: u64,
    moved_to: Option<String>,
}

/// Schema 5 → 6: every stored person gains `closed_unix` (none: nobody's deletion had
/// been received). One unit of work with the schema version.
pub(super) fn upgrade_to_schema6(store: &Store) -> Result<()> {
    let mut upgraded = Vec::new();
    for entry in store.tree(Tree::People).iter() {
        let (key, value) = entry?;
        let old: PersonV5 = decode(&value)?;
        upgraded.push((
            key,
            Person {
                diaspora_id: old.diaspora_id,
                guid: old.guid,
                public_key_pem: old.public_key_pem,
                full_name: old.full_name,
                first_name: old.first_name,
                last_name: old.last_name,
                photo_url: old.photo_url,
                photo_medium_url: old.photo_medium_url,
                photo_small_url: old.photo_small_url,
                searchable: old.searchable,
                pod_origin: old.pod_origin,
                fetched_unix: old.fetched_unix,
                moved_to: old.moved_to,
                closed_unix: None,
            },
        ));
    }
    store.transaction(|tx| {
        for (key, person) in &upgraded {
            tx.put(Tree::People, key, person)?;
        }
        tx.tree(Tree::Meta).insert("schema_version", &6u32.to_be_bytes())?;
        Ok(())
    })?;
    store.flush()?;
    tracing::info!(
        people = upgraded.len(),
        "store upgraded to schema 6: known people can be marked closed"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_schema_5_store_keeps_its_people_and_marks_none_closed() {
        #[derive(serde::Serialize)]
        struct Old<'a> {
            diaspora_id: &'a str,
            guid: &'a str,
            public_key_pem: &'a str,
            full_name: &'a str,
            first_name: &'a str,
            last_name: &'a str,
            photo_url: &'a str,
            photo_medium_url: &'a str,
            photo_small_url: &'a str,
            searchable: bool,
            pod_origin: &'a str,
            fetched_unix: u64,
            moved_to: Option<&'a str>,
        }
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path().join("db")).unwrap();
            db.open_tree(Tree::Meta.name())
                .unwrap()
                .insert("schema_version", &5u32.to_be_bytes())
                .unwrap();
            let old = Old {
                diaspora_id: "bob@b.example",
                guid: "0123456789abcdef",
                public_key_pem: "PEM",
                full_name: "Bob",
                first_name: "Bob",
                last_name: "",
                photo_url: "https://b.example/a.png",
                photo_medium_url: "https://b.example/m.png",
                photo_small_url: "https://b.example/s.png",
                searchable: true,
                pod_origin: "https://b.example",
                fetched_unix: 7,
                moved_to: Some("bob@c.example"),
            };
            db.open_tree(Tree::People.name())
                .unwrap()
                .insert("bob@b.example", crate::store::encode(&old))
                .unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let bob = store.person("bob@b.example").unwrap().unwrap();
        assert_eq!(bob.full_name, "Bob");
        assert_eq!(bob.photo_small_url, "https://b.example/s.png");
        assert_eq!(bob.fetched_unix, 7);
        assert_eq!(bob.moved_to.as_deref(), Some("bob@c.example"));
        assert_eq!(bob.closed_unix, None);
        assert!(store.check().unwrap().problems.is_empty());
        assert_eq!(
            store.tree(Tree::Meta).get("schema_version").unwrap().unwrap().as_ref(),
            &6u32.to_be_bytes()
        );
    }
}
