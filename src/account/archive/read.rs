//! Reading an archive a user brings: plain JSON or gzip within the size cap, then
//! every check in the order the module doc of `archive` gives, with the repairs
//! listed.

use super::*;

// ---------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------

/// Reads and checks an archive: plain JSON, gzip (`.json.gz`, recognised by its magic
/// bytes) or what lifeboat exports. `max_decompressed` bounds the JSON text; a gzip
/// file is decompressed while it is parsed, never past that bound, so a gzip bomb is
/// refused ([`Error::TooLarge`]) after at most `max_decompressed` bytes of work. Any
/// other problem is an [`Error::BadRequest`] naming where the archive is wrong.
pub fn read_archive(bytes: &[u8], max_decompressed: u64) -> Result<ImportedArchive> {
    let document = parse_json(bytes, max_decompressed)?;
    check_archive(document)
}

/// The first two bytes of a gzip stream (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads the archive inside an opened `.lfbk` (move-in, restore). Lifeboat never
/// compresses inside a sealed backup, so gzip there is refused outright: the plaintext
/// is then the JSON itself, its size is its decompressed size (what the opened-restore
/// cap counts), and a small sealed file cannot unpack into a large tree.
pub fn read_sealed_archive(plaintext: &[u8], max_decompressed: u64) -> Result<ImportedArchive> {
    if plaintext.starts_with(&GZIP_MAGIC) {
        return Err(Error::bad(
            "this backup holds a compressed archive; a lifeboat backup (.lfbk) holds the archive's JSON itself",
        ));
    }
    read_archive(plaintext, max_decompressed)
}

/// The archive's JSON, decompressed if need be.
pub(super) fn parse_json(bytes: &[u8], max: u64) -> Result<Json<'_>> {
    if bytes.starts_with(&crate::sealed::MAGIC) {
        return Err(Error::bad(
            "this is a sealed lifeboat backup (.lfbk): it opens only with its pass phrase, through \"Moving from another pod\" or a restore",
        ));
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(Error::bad(
            "this is a zip file; a diaspora* archive is a .json or .json.gz file",
        ));
    }
    if bytes.starts_with(&GZIP_MAGIC) {
        return parse_gzip(bytes, max);
    }
    if bytes.len() as u64 > max {
        return Err(too_large(max, false));
    }
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    serde_json::from_slice(text).map_err(|e| Error::bad(format!("the archive is not valid JSON: {e}")))
}

/// Parses the JSON while decompressing it, through a [`Read::take`] of one byte past
/// `max`: reading stops there, whatever the compressed file claims.
pub(super) fn parse_gzip(bytes: &[u8], max: u64) -> Result<Json<'static>> {
    let mut limited = MultiGzDecoder::new(bytes).take(max.saturating_add(1));
    let parsed = {
        let mut reader = BufReader::new(&mut limited);
        // A byte-order mark, as some editors write, would stop the JSON parser.
        match reader.fill_buf().map(|head| head.starts_with(b"\xef\xbb\xbf")) {
            Ok(bom) => {
                if bom {
                    reader.consume(3);
                }
                let mut deserializer = serde_json::Deserializer::from_reader(reader);
                Json::deserialize(&mut deserializer).and_then(|value| deserializer.end().map(|_| value))
            }
            Err(e) => Err(serde_json::Error::io(e)),
        }
    };
    let over_limit = |limited: &mut std::io::Take<MultiGzDecoder<&[u8]>>| {
        // Whatever went wrong, an archive past the limit is refused as such: read on
        // (without keeping anything) up to the limit to tell.
        let _ = std::io::copy(limited, &mut std::io::sink());
        limited.limit() == 0
    };
    match parsed {
        Ok(value) if limited.limit() > 0 => Ok(value),
        Ok(_) => Err(too_large(max, true)),
        Err(_) if over_limit(&mut limited) => Err(too_large(max, true)),
        Err(e) if e.is_io() => Err(Error::bad(format!(
            "the archive is not a readable gzip file: {}",
            io_reason(&e)
        ))),
        Err(e) => Err(Error::bad(format!("the archive is not valid JSON: {e}"))),
    }
}

pub(super) fn io_reason(e: &serde_json::Error) -> String {
    // serde_json adds " at line 0 column 0" to I/O errors; the cause is what matters.
    let text = e.to_string();
    match text.find(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

pub(super) fn too_large(max: u64, compressed: bool) -> Error {
    const MIB: u64 = 1024 * 1024;
    let size = if max >= MIB && max % MIB == 0 {
        format!("{max} bytes ({} MiB)", max / MIB)
    } else {
        format!("{max} bytes")
    };
    if compressed {
        Error::TooLarge(format!("the archive is larger than {size} when decompressed"))
    } else {
        Error::TooLarge(format!("the archive is larger than {size}"))
    }
}

/// Problems found so far; each is `path: what is wrong`.
#[derive(Default)]
pub(super) struct Problems(Vec<String>);

impl Problems {
    fn push(&mut self, path: impl std::fmt::Display, problem: impl std::fmt::Display) {
        self.0.push(format!("{path}: {problem}"));
    }

    fn into_result(self) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let total = self.0.len();
        let mut shown: Vec<String> = self.0.into_iter().take(MAX_PROBLEMS_SHOWN).collect();
        if total > MAX_PROBLEMS_SHOWN {
            shown.push(format!("and {} more problems", total - MAX_PROBLEMS_SHOWN));
        }
        Err(Error::bad(format!("the archive is not valid: {}", shown.join("; "))))
    }
}

pub(super) fn check_archive(document: Json<'_>) -> Result<ImportedArchive> {
    if document.as_object().is_none() {
        return Err(Error::bad("the archive is not valid: expected a JSON object"));
    }
    check_version(document.get("version"))?;
    // The contacts are read (their keys checked) while the schema is checked: both only
    // read the document, and with thousands of contacts each takes tens of
    // milliseconds. Reading needs no valid schema: it never panics on other shapes.
    let contacts_value = document.get("user").and_then(|user| user.get("contacts"));
    let many = contacts_value.and_then(Json::as_array).is_some_and(|c| c.len() >= 1000);
    let mut left_out = Vec::new();
    let (schema_problems, mut contacts) = if many {
        std::thread::scope(|scope| {
            let schema = scope.spawn(|| schema::validate(&document));
            let contacts = read_contacts(contacts_value, &mut left_out);
            let schema = schema.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (schema, contacts)
        })
    } else {
        let schema = schema::validate(&document);
        let contacts = if schema.is_empty() {
            read_contacts(contacts_value, &mut left_out)
        } else {
            Vec::new()
        };
        (schema, contacts)
    };
    Problems(schema_problems).into_result()?;
    let Json::Object(mut top) = document else {
        return Err(Error::bad("the archive is not valid: expected a JSON object"));
    };
    // The schema guarantees the shapes read below (nothing here would panic if not).
    let mut problems = Problems::default();

    let user = match top.remove("user") {
        Some(Json::Object(user)) => user,
        _ => Object::default(),
    };
    let text = |key: &str| user.get(key).and_then(Json::as_str).unwrap_or_default().to_string();

    let (private_key_pem, public_key_pem) = match read_private_key(&text("private_key")) {
        Ok(keys) => keys,
        Err(problem) => {
            problems.push("user.private_key", problem);
            (String::new(), String::new())
        }
    };
    let (author, profile) = read_profile(user.get("profile"), &mut problems);
    let written_aspects = aspect_names(user.get("contact_groups"));
    let followed_tags = unique_strings(user.get("followed_tags"))
        .into_iter()
        .map(|tag| tag.trim().trim_start_matches('#').to_string())
        .filter(|tag| !tag.is_empty())
        .fold(Vec::new(), push_unique);
    let blocks = read_blocks(user.get("blocks"), &mut problems);
    let lifeboat = read_lifeboat_key(top.get("lifeboat"), &mut problems);
    problems.into_result()?;

    if lifeboat.present && lifeboat.version < 2 {
        // Written by a lifeboat that read the two flags the other way round.
        for contact in &mut contacts {
            std::mem::swap(&mut contact.sharing, &mut contact.receiving);
        }
    }
    let (mut aspects, became, mut repairs) = crate::account::profile::repair_aspect_names(&written_aspects);
    repairs.extend(crate::account::profile::place_contacts_in_aspects(
        &mut aspects,
        &became,
        &mut contacts,
    ));
    repairs.extend(left_out);

    let old_diaspora_id = lifeboat.diaspora_id.or(author);
    let mut known_pods = Vec::new();
    add_known_pods(&mut known_pods, &lifeboat.known_pods);
    let mut hosts = std::collections::HashSet::new();
    add_known_pods(
        &mut known_pods,
        contacts
            .iter()
            .filter_map(|contact| contact.diaspora_id.split_once('@'))
            .filter(|(_, host)| hosts.insert(*host))
            .map(|(_, host)| format!("https://{host}")),
    );
    add_known_pods(&mut known_pods, subscribed_pods(user.get("posts")));

    let username = text("username");
    let email = text("email");
    let language = text("language");
    // The rest moves into the verbatim sections, in order (no copy of the posts).
    fn unread<'a>(object: Object<'a>, read: &[&str]) -> Json<'a> {
        Json::Object(
            object
                .into_iter()
                .filter(|(key, _)| !read.contains(&key.as_ref()))
                .collect(),
        )
    }
    let kept: Object = [
        ("user".into(), unread(user, USER_KEYS)),
        ("top".into(), unread(top, TOP_KEYS)),
    ]
    .into_iter()
    .collect();

    Ok(ImportedArchive {
        username,
        email,
        language: if language.trim().is_empty() {
            "en".to_string()
        } else {
            language
        },
        private_key_pem,
        public_key_pem,
        profile,
        aspects,
        contacts,
        followed_tags,
        blocks,
        verbatim_json: Json::Object(kept).to_string(),
        old_diaspora_id,
        old_guid: lifeboat.guid,
        known_pods,
        avatar: lifeboat.avatar,
        repairs,
    })
}

pub(super) fn check_version(version: Option<&Json>) -> Result<()> {
    let problem = match version {
        Some(Json::String(v)) if v == ARCHIVE_VERSION => return Ok(()),
        None => format!("version: missing (diaspora* archives say \"version\": \"{ARCHIVE_VERSION}\")"),
        Some(Json::String(v)) if v.starts_with("1.") || v == "1" => format!(
            "version: expected \"{ARCHIVE_VERSION}\"; this is a version {v} archive, written by an older diaspora*, which cannot be imported (export it again from an up-to-date pod)"
        ),
        Some(other) => format!("version: expected \"{ARCHIVE_VERSION}\", found {other}"),
    };
    Err(Error::bad(format!("the archive is not valid: {problem}")))
}

/// The private key re-encoded as PKCS#1 PEM, and its public key as SPKI PEM.
pub(super) fn read_private_key(pem: &str) -> std::result::Result<(String, String), String> {
    let key = private_key_from_pem(pem).map_err(|_| "not an RSA private key in PEM form".to_string())?;
    let public_key = key.to_public_key();
    check_key_strength(&public_key).map_err(|e| e.to_string())?;
    let private_pem = private_key_to_pem(&key).map_err(|_| "the RSA private key cannot be re-encoded".to_string())?;
    Ok((private_pem, public_key_to_pem(&public_key)))
}

/// An optional text field: absent, null and empty are all `None`.
pub(super) fn optional_text(data: &Object, key: &str, path: &str, problems: &mut Problems) -> Option<String> {
    match data.get(key) {
        None | Some(Json::Null) => None,
        Some(Json::String(text)) if text.is_empty() => None,
        Some(Json::String(text)) => Some(text.to_string()),
        Some(_) => {
            problems.push(format_args!("{path}.{key}"), "expected a string or null");
            None
        }
    }
}

pub(super) fn optional_bool(data: &Object, key: &str, path: &str, problems: &mut Problems) -> Option<bool> {
    match data.get(key) {
        None | Some(Json::Null) => None,
        Some(Json::Bool(b)) => Some(*b),
        Some(_) => {
            problems.push(format_args!("{path}.{key}"), "expected a boolean or null");
            None
        }
    }
}

/// An image URL carried over only when it is an absolute http(s) URL: diaspora* writes
/// a path to its default picture for people without one, which means nothing on
/// another pod.
pub(super) fn usable_image_url(url: Option<String>) -> Option<String> {
    url.filter(|url| {
        let lower = url.to_ascii_lowercase();
        (lower.starts_with("https://") || lower.starts_with("http://"))
            && !url.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

/// The profile (and its author) from `user.profile`, checked against diaspora*'s
/// validators.
pub(super) fn read_profile(profile: Option<&Json>, problems: &mut Problems) -> (Option<String>, ProfileData) {
    const PATH: &str = "user.profile.entity_data";
    let empty = Object::default();
    let data = profile
        .and_then(|p| p.get("entity_data"))
        .and_then(Json::as_object)
        .unwrap_or(&empty);
    let author = data
        .get("author")
        .and_then(Json::as_str)
        .map(str::trim)
        .unwrap_or_default();
    let author = if valid_diaspora_id(author) {
        Some(author.to_string())
    } else {
        problems.push(
            format_args!("{PATH}.author"),
            "not a valid diaspora ID (user@host, in lower case)",
        );
        None
    };
    let mut text = |key: &str| optional_text(data, key, PATH, problems);
    let full_name = text("full_name");
    let first_name = text("first_name");
    let last_name = text("last_name");
    let image_url = text("image_url");
    let image_url_medium = text("image_url_medium");
    let image_url_small = text("image_url_small");
    let bio = text("bio");
    let birthday = text("birthday");
    let gender = text("gender");
    let location = text("location");
    let tag_string = text("tag_string");
    let edited_at = text("edited_at");
    let searchable = optional_bool(data, "searchable", PATH, problems);
    let public = optional_bool(data, "public", PATH, problems);
    let nsfw = optional_bool(data, "nsfw", PATH, problems);

    // diaspora*'s limits, field by field, so that each problem names its field.
    type Setter = fn(&mut Profile, String);
    let fields: [(&str, &Option<String>, Setter); 8] = [
        ("full_name", &full_name, |p, v| p.full_name = Some(v)),
        ("first_name", &first_name, |p, v| p.first_name = Some(v)),
        ("last_name", &last_name, |p, v| p.last_name = Some(v)),
        ("bio", &bio, |p, v| p.bio = Some(v)),
        ("birthday", &birthday, |p, v| p.birthday = Some(v)),
        ("gender", &gender, |p, v| p.gender = Some(v)),
        ("location", &location, |p, v| p.location = Some(v)),
        ("tag_string", &tag_string, |p, v| p.tag_string = Some(v)),
    ];
    for (key, value, set) in fields {
        let Some(value) = value else { continue };
        let mut alone = Profile {
            author: "someone@pod.example".to_string(),
            ..Profile::default()
        };
        set(&mut alone, value.clone());
        if let Err(found) = validate_profile(&alone) {
            for problem in found {
                problems.push(format_args!("{PATH}.{key}"), field_problem(&problem, key));
            }
        }
    }
    let profile = ProfileData {
        first_name,
        last_name,
        image_url: usable_image_url(image_url),
        image_url_medium: usable_image_url(image_url_medium),
        image_url_small: usable_image_url(image_url_small),
        bio,
        birthday,
        gender,
        location,
        // diaspora*'s defaults for a profile that does not say.
        searchable: searchable.unwrap_or(true),
        public: public.unwrap_or(false),
        nsfw: nsfw.unwrap_or(false),
        tag_string,
        edited_at,
    };
    (author, profile)
}

/// `validate_profile` names the field in words ("first name is longer than ..."); the
/// path already names it, so the words go.
pub(super) fn field_problem(problem: &str, key: &str) -> String {
    let words = key.replace('_', " ");
    problem
        .strip_prefix(&words)
        .map(|rest| rest.trim_start())
        .map(|rest| rest.strip_prefix("is ").unwrap_or(rest))
        .unwrap_or(problem)
        .to_string()
}

/// The aspect names as the archive writes them (repaired by the caller).
pub(super) fn aspect_names(groups: Option<&Json>) -> Vec<String> {
    groups
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(|group| group.get("name").and_then(Json::as_str).unwrap_or_default().to_string())
        .collect()
}

/// The contacts that can be read; each one that cannot is left out, with a note for
/// the user in `left_out` (one odd contact never refuses the whole archive).
pub(super) fn read_contacts<'a>(contacts: Option<&'a Json<'a>>, left_out: &mut Vec<String>) -> Vec<ContactData> {
    let items: &[Json] = contacts.and_then(Json::as_array).unwrap_or_default();
    // Each contact is checked on its own (its public key is the costly part), so
    // thousands are split over two threads; duplicates are dropped afterwards, in order.
    type Part<'a> = (Vec<Option<(&'a str, ContactData)>>, Vec<String>);
    fn read_part<'a>(start: usize, part: &'a [Json<'a>]) -> Part<'a> {
        let mut found = Vec::new();
        let read = part
            .iter()
            .enumerate()
            .map(|(i, contact)| read_contact(start + i, contact, &mut found))
            .collect();
        (read, found)
    }
    let parts = if items.len() >= 2000 {
        let middle = items.len() / 2;
        std::thread::scope(|scope| {
            let first = scope.spawn(|| read_part(0, &items[..middle]));
            let second = read_part(middle, &items[middle..]);
            let first = first.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            vec![first, second]
        })
    } else {
        vec![read_part(0, items)]
    };
    let mut out: Vec<ContactData> = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    for (read, mut found) in parts {
        left_out.append(&mut found);
        for (id, contact) in read.into_iter().flatten() {
            if seen.insert(id) {
                out.push(contact);
            }
        }
    }
    out
}

/// One contact, checked; with its diaspora ID as written (for spotting duplicates).
/// `following` and `followed` mirror the two flags and are not read (diaspora*'s
/// importer does not read them either).
pub(super) fn read_contact<'a>(
    index: usize,
    contact: &'a Json<'a>,
    left_out: &mut Vec<String>,
) -> Option<(&'a str, ContactData)> {
    let flag = |key: &str| contact.get(key).and_then(Json::as_bool).unwrap_or(false);
    let text = |key: &str| contact.get(key).and_then(Json::as_str);
    let written_id = text("account_id").unwrap_or_default().trim();
    let mut leave_out = |problem: &str| {
        let who: String = written_id.chars().take(80).collect();
        left_out.push(format!("contact {} ({who:?}) was left out: {problem}", index + 1));
        None
    };
    if !valid_diaspora_id(written_id) {
        return leave_out("not a valid diaspora ID (user@host, in lower case)");
    }
    let person_guid = text("person_guid").map(str::trim);
    if person_guid.is_some_and(|guid| !valid_guid(guid)) {
        return leave_out(
            "its guid is not valid (16 to 255 characters of 0-9 A-Z a-z - _ @ . :, ending in a letter or digit)",
        );
    }
    let public_key = match text("public_key").filter(|pem| !pem.trim().is_empty()) {
        None => None,
        Some(pem) if pem.len() > MAX_CONTACT_KEY_PEM_BYTES => {
            return leave_out("its public key is far larger than an RSA key of at most 4,096 bits")
        }
        Some(pem) => match canonical_public_key_pem(pem) {
            Ok(pem) => Some(pem),
            Err(_) => return leave_out("its public key is not an RSA public key in PEM form of at most 4,096 bits"),
        },
    };
    let contact_data = ContactData {
        diaspora_id: written_id.to_string(),
        person_guid: person_guid.map(str::to_string),
        person_name: text("person_name").filter(|name| !name.is_empty()).map(str::to_string),
        public_key,
        sharing: flag("sharing"),
        receiving: flag("receiving"),
        aspects: unique_strings(contact.get("contact_groups_membership")),
    };
    Some((written_id, contact_data))
}

pub(super) fn read_blocks(blocks: Option<&Json>, problems: &mut Problems) -> Vec<String> {
    let mut out = Vec::new();
    for (index, block) in blocks.and_then(Json::as_array).into_iter().flatten().enumerate() {
        let id = block.as_str().unwrap_or_default().trim();
        if !valid_diaspora_id(id) {
            problems.push(
                format_args!("user.blocks[{index}]"),
                "not a valid diaspora ID (user@host, in lower case)",
            );
            continue;
        }
        out = push_unique(out, id.to_string());
    }
    out
}

/// The strings of an array, in order, without duplicates.
pub(super) fn unique_strings(value: Option<&Json>) -> Vec<String> {
    value
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .map(str::to_string)
        .fold(Vec::new(), push_unique)
}

pub(super) fn push_unique(mut list: Vec<String>, item: String) -> Vec<String> {
    if !list.contains(&item) {
        list.push(item);
    }
    list
}

/// Every `subscribed_pods_uris` entry of the user's posts.
pub(super) fn subscribed_pods<'a>(posts: Option<&'a Json<'a>>) -> impl Iterator<Item = &'a str> {
    posts
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|post| post.get("subscribed_pods_uris"))
        .filter_map(Json::as_array)
        .flatten()
        .filter_map(Json::as_str)
}

/// What the archive's own `lifeboat` key says.
#[derive(Default)]
pub(super) struct LifeboatKey {
    /// Whether the archive has the key at all (lifeboat wrote it).
    present: bool,
    /// `lifeboat.version`: 1 when absent (written before the contact flags took
    /// diaspora*'s meaning), 2 since.
    version: u64,
    guid: Option<String>,
    diaspora_id: Option<String>,
    known_pods: Vec<String>,
    avatar: Option<Avatar>,
}

pub(super) fn read_lifeboat_key(value: Option<&Json>, problems: &mut Problems) -> LifeboatKey {
    let mut key = LifeboatKey::default();
    let Some(value) = value else {
        return key;
    };
    let Some(object) = value.as_object() else {
        problems.push("lifeboat", "expected an object");
        return key;
    };
    key.present = true;
    key.version = match object.get("version") {
        None | Some(Json::Null) => 1,
        Some(version) => match version {
            Json::Number(n) => n.as_u64().filter(|v| (1..=LIFEBOAT_KEY_VERSION).contains(v)),
            _ => None,
        }
        .unwrap_or_else(|| {
            problems.push(
                "lifeboat.version",
                format_args!("expected 1 to {LIFEBOAT_KEY_VERSION} (a newer lifeboat wrote this archive?)"),
            );
            1
        }),
    };
    match object.get("guid") {
        None | Some(Json::Null) => {}
        Some(Json::String(guid)) if valid_guid(guid) => key.guid = Some(guid.to_string()),
        Some(_) => problems.push("lifeboat.guid", "not a valid guid"),
    }
    match object.get("diaspora_id") {
        None | Some(Json::Null) => {}
        Some(Json::String(id)) if valid_diaspora_id(id) => key.diaspora_id = Some(id.to_string()),
        Some(_) => problems.push("lifeboat.diaspora_id", "not a valid diaspora ID"),
    }
    match object.get("known_pods") {
        None | Some(Json::Null) => {}
        Some(Json::Array(pods)) => {
            for (index, pod) in pods.iter().enumerate() {
                match pod.as_str().map(origin_of) {
                    Some(Ok(origin)) => key.known_pods.push(origin),
                    Some(Err(_)) => problems.push(format_args!("lifeboat.known_pods[{index}]"), "not a pod URL"),
                    None => problems.push(format_args!("lifeboat.known_pods[{index}]"), "expected a string"),
                }
            }
        }
        Some(_) => problems.push("lifeboat.known_pods", "expected an array"),
    }
    match object.get("avatar") {
        None | Some(Json::Null) => {}
        Some(avatar) => match read_avatar(avatar) {
            Ok(avatar) => key.avatar = Some(avatar),
            Err((path, problem)) => problems.push(path, problem),
        },
    }
    key
}

/// `{"content_type", "data": standard base64}`, re-checked by its bytes (the bytes
/// decide the type; the declared one is only checked to be a string).
pub(super) fn read_avatar(value: &Json) -> std::result::Result<Avatar, (&'static str, String)> {
    let object = value
        .as_object()
        .ok_or(("lifeboat.avatar", "expected an object".to_string()))?;
    object
        .get("content_type")
        .and_then(Json::as_str)
        .ok_or(("lifeboat.avatar.content_type", "expected a string".to_string()))?;
    let data = object
        .get("data")
        .and_then(Json::as_str)
        .ok_or(("lifeboat.avatar.data", "expected a string".to_string()))?;
    // Base64 is 4/3 of the bytes (plus any line breaks): refuse before decoding what
    // cannot fit.
    if data.len() > AVATAR_MAX_BYTES * 2 {
        return Err(("lifeboat.avatar.data", avatar_too_large()));
    }
    let bytes = decode_standard_base64(data).map_err(|_| ("lifeboat.avatar.data", "not valid base64".to_string()))?;
    if bytes.len() > AVATAR_MAX_BYTES {
        return Err(("lifeboat.avatar.data", avatar_too_large()));
    }
    let content_type =
        sniff_image(&bytes).ok_or(("lifeboat.avatar.data", "not a PNG, JPEG, GIF or WebP image".to_string()))?;
    Ok(Avatar {
        content_type: content_type.to_string(),
        data: bytes,
    })
}

pub(super) fn avatar_too_large() -> String {
    format!("the avatar is larger than {} KiB", AVATAR_MAX_BYTES / 1024)
}
