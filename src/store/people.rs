//! Known remote people on sled: see [`crate::federation::people::PeopleStore`].
//! Tree `people`: diaspora ID (lower case, UTF-8) -> [`Person`].

use super::{abort, Store, Tree};
use crate::federation::people::{PeopleChange, PeopleStore, Person};
use crate::Result;

impl PeopleStore for Store {
    fn person(&self, diaspora_id: &str) -> Result<Option<Person>> {
        match self.tree(Tree::People).get(diaspora_id.as_bytes())? {
            Some(bytes) => super::decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    fn people(&self) -> Result<Vec<Person>> {
        self.tree(Tree::People)
            .iter()
            .values()
            .map(|v| super::decode(&v?))
            .collect()
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
