//! Writing an account out as a version "2.0" archive diaspora*'s importer takes.

use super::*;

// ---------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------

/// Writes `account` as a version "2.0" archive (compact JSON, the same bytes for the
/// same account): `version`, `user` with lifeboat's parts first and the verbatim
/// sections after them, the verbatim top-level sections, then the `lifeboat` key.
/// `host` makes the diaspora ID (`username@host`); `base_url` the avatar's URL.
pub fn write_archive(account: &Account, host: &str, base_url: &str) -> Result<Vec<u8>> {
    let diaspora_id = account.diaspora_id(host);
    let (verbatim_user, verbatim_top) = split_verbatim(&account.verbatim_json)?;
    let private_key = if account.private_key_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        account.private_key_pem.clone()
    } else {
        private_key_to_pem(&private_key_from_pem(&account.private_key_pem)?)?
    };

    let mut user = Map::new();
    user.insert("username".into(), account.username.clone().into());
    user.insert("email".into(), account.email.clone().into());
    user.insert("language".into(), account.language.clone().into());
    user.insert("private_key".into(), private_key.into());
    user.insert("profile".into(), profile_entity(account, &diaspora_id, base_url));
    let groups = account
        .aspects
        .iter()
        .map(|name| Value::Object(Map::from_iter([("name".to_string(), Value::from(name.clone()))])))
        .collect();
    user.insert("contact_groups".into(), Value::Array(groups));
    user.insert(
        "contacts".into(),
        Value::Array(account.contacts.iter().map(contact_entry).collect()),
    );
    user.insert("followed_tags".into(), account.followed_tags.clone().into());
    user.insert("blocks".into(), account.blocks.clone().into());
    for (key, value) in verbatim_user {
        if !user.contains_key(&key) {
            user.insert(key, value);
        }
    }

    let mut top = Map::new();
    top.insert("version".into(), ARCHIVE_VERSION.into());
    top.insert("user".into(), Value::Object(user));
    for (key, value) in verbatim_top {
        if !TOP_KEYS.contains(&key.as_str()) {
            top.insert(key, value);
        }
    }
    let mut lifeboat = Map::new();
    lifeboat.insert("version".into(), LIFEBOAT_KEY_VERSION.into());
    lifeboat.insert("guid".into(), account.guid.clone().into());
    lifeboat.insert("diaspora_id".into(), diaspora_id.into());
    lifeboat.insert("known_pods".into(), account.known_pods.clone().into());
    if let Some(avatar) = &account.avatar {
        let mut carried = Map::new();
        carried.insert("content_type".into(), avatar.content_type.clone().into());
        carried.insert("data".into(), STANDARD.encode(&avatar.data).into());
        lifeboat.insert("avatar".into(), Value::Object(carried));
    }
    top.insert("lifeboat".into(), Value::Object(lifeboat));
    serde_json::to_vec(&Value::Object(top)).map_err(Error::from)
}

/// The verbatim sections of `user` and of the top level, in their order.
pub(super) fn split_verbatim(verbatim_json: &str) -> Result<(Map<String, Value>, Map<String, Value>)> {
    if verbatim_json.trim().is_empty() {
        return Ok((Map::new(), Map::new()));
    }
    let value: Value = serde_json::from_str(verbatim_json)
        .map_err(|e| Error::internal(format!("the account's verbatim archive sections are damaged: {e}")))?;
    let section = |name: &str| match value.get(name) {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    Ok((section("user"), section("top")))
}

/// `user.profile` as diaspora*'s `profile` entity. Absent values are left out (the
/// importer keeps its own value for a missing key, as for a null one).
pub(super) fn profile_entity(account: &Account, diaspora_id: &str, base_url: &str) -> Value {
    let profile = &account.profile;
    let mut data = Map::new();
    let mut text = |key: &str, value: Option<&str>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            data.insert(key.to_string(), value.into());
        }
    };
    text("author", Some(diaspora_id));
    text("edited_at", profile.edited_at.as_deref());
    text("first_name", profile.first_name.as_deref());
    text("last_name", profile.last_name.as_deref());
    let uploaded = account.avatar.as_ref().map(|_| avatar_url(base_url, &account.guid));
    match &uploaded {
        Some(url) => {
            text("image_url", Some(url));
            text("image_url_medium", Some(url));
            text("image_url_small", Some(url));
        }
        None => {
            text("image_url", profile.image_url.as_deref());
            text("image_url_medium", profile.image_url_medium.as_deref());
            text("image_url_small", profile.image_url_small.as_deref());
        }
    }
    text("bio", profile.bio.as_deref());
    text("birthday", profile.birthday.as_deref());
    text("gender", profile.gender.as_deref());
    text("location", profile.location.as_deref());
    data.insert("searchable".into(), profile.searchable.into());
    data.insert("public".into(), profile.public.into());
    data.insert("nsfw".into(), profile.nsfw.into());
    if let Some(tags) = profile.tag_string.as_deref().filter(|t| !t.is_empty()) {
        data.insert("tag_string".into(), tags.into());
    }
    let mut entity = Map::new();
    entity.insert("entity_type".into(), "profile".into());
    entity.insert("entity_data".into(), Value::Object(data));
    Value::Object(entity)
}

/// One `user.contacts` entry, its keys in diaspora*'s order; optional strings are left
/// out when unknown (the schema wants strings there, not nulls).
pub(super) fn contact_entry(contact: &ContactData) -> Value {
    let mut entry = Map::new();
    // diaspora*'s exporter writes `following` = `sharing`, `followed` = `receiving`.
    entry.insert("sharing".into(), contact.sharing.into());
    entry.insert("receiving".into(), contact.receiving.into());
    entry.insert("following".into(), contact.sharing.into());
    entry.insert("followed".into(), contact.receiving.into());
    if let Some(guid) = &contact.person_guid {
        entry.insert("person_guid".into(), guid.clone().into());
    }
    if let Some(name) = &contact.person_name {
        entry.insert("person_name".into(), name.clone().into());
    }
    entry.insert("account_id".into(), contact.diaspora_id.clone().into());
    if let Some(key) = &contact.public_key {
        entry.insert("public_key".into(), key.clone().into());
    }
    entry.insert("contact_groups_membership".into(), contact.aspects.clone().into());
    Value::Object(entry)
}
