//! Discovery for the pages: [`discover_for`] finds a remote person with the pod's
//! store, outbound client and `federation.allow_http`, through
//! [`crate::people::discover`] (which owns the rules: fresh answers from the store, a
//! stored key never replaced by rediscovery).
use crate::people::{self, Person};
use crate::pod::Pod;
use crate::Result;

/// What the pages need of a discovered person.
pub struct FoundPerson {
    pub diaspora_id: String,
    pub guid: String,
    pub full_name: String,
    pub public_key_pem: String,
}

impl From<Person> for FoundPerson {
    fn from(person: Person) -> Self {
        // The display name without its last resort (the ID itself): pages show the ID
        // anyway, and an archive's `person_name` should stay empty rather than repeat it.
        let name = person.display_name();
        FoundPerson {
            full_name: if name == person.diaspora_id {
                String::new()
            } else {
                name
            },
            diaspora_id: person.diaspora_id,
            guid: person.guid,
            public_key_pem: person.public_key_pem,
        }
    }
}

/// The person `id` names, from the store while fresh, else over WebFinger + hCard.
pub async fn discover_for(pod: &Pod, id: &str) -> Result<FoundPerson> {
    people::discover(&pod.store, &pod.http, id, pod.config.federation.allow_http)
        .await
        .map(FoundPerson::from)
}
