//! Temporary: replaced by `federation::people` when it lands.
use crate::pod::Pod;
use crate::{Error, Result};

pub struct FoundPerson {
    pub diaspora_id: String,
    pub guid: String,
    pub full_name: String,
    pub public_key_pem: String,
}

pub async fn discover_for(_pod: &Pod, id: &str) -> Result<FoundPerson> {
    Err(Error::Upstream(format!(
        "could not discover {id}: discovery is not wired yet"
    )))
}
