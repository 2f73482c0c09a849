//! Validation of an archive against diaspora*'s own JSON schemas (the archive format and
//! the federation entities it refers to), embedded from `tests/reference/`.
//!
//! diaspora*'s importer refuses an archive that does not validate against these schemas,
//! so lifeboat refuses it at import already: whatever it accepts, it can export again in
//! a form a diaspora* pod takes. This is a validator for the part of JSON Schema
//! draft-04 that the two schemas use (`$ref` by URL and JSON pointer, `type`,
//! `properties`, `required`, `items`, `allOf`, `oneOf`, `enum`, `pattern` of the form
//! `^literal$`, `minLength`, `maxLength`); a test checks that they use nothing else.
//! Each problem is reported as `path: what is wrong`, with the path written the way
//! a person reads it (`user.contacts[3].account_id`).

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

use super::json::Json;

const ARCHIVE_SCHEMA_TEXT: &str = include_str!("../../../tests/reference/diaspora-archive-format.schema.json");
const ENTITY_SCHEMA_TEXT: &str = include_str!("../../../tests/reference/diaspora-federation-entities.schema.json");

/// The keywords [`validate`] understands; any other keyword in the schemas is ignored,
/// which a test rules out.
#[cfg(test)]
pub(crate) const SUPPORTED_KEYWORDS: &[&str] = &[
    "$schema",
    "id",
    "$ref",
    "description",
    "definitions",
    "type",
    "properties",
    "required",
    "items",
    "allOf",
    "oneOf",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
];

/// Which of the two schema documents a `$ref` without a URL refers into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Document {
    Archive,
    Entities,
}

pub(crate) struct Schemas {
    archive: Value,
    entities: Value,
    archive_id: String,
    entities_id: String,
}

/// The embedded schemas, parsed once.
pub(crate) fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let archive: Value = serde_json::from_str(ARCHIVE_SCHEMA_TEXT).expect("embedded archive schema is JSON");
        let entities: Value = serde_json::from_str(ENTITY_SCHEMA_TEXT).expect("embedded entity schema is JSON");
        let id = |schema: &Value| schema.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        Schemas {
            archive_id: id(&archive),
            entities_id: id(&entities),
            archive,
            entities,
        }
    })
}

impl Schemas {
    /// The root of a schema document.
    pub(crate) fn root(&self, document: Document) -> &Value {
        match document {
            Document::Archive => &self.archive,
            Document::Entities => &self.entities,
        }
    }

    /// Resolves a `$ref` made inside `from`: the document it lands in and the schema.
    pub(crate) fn resolve(&self, from: Document, reference: &str) -> Option<(Document, &Value)> {
        let (url, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        let document = if url.is_empty() {
            from
        } else if url == self.archive_id {
            Document::Archive
        } else if url == self.entities_id {
            Document::Entities
        } else {
            return None;
        };
        let root = self.root(document);
        let schema = if pointer.is_empty() {
            Some(root)
        } else {
            root.pointer(pointer)
        };
        schema.map(|schema| (document, schema))
    }
}

/// A place in the archive, rendered only when something is wrong there.
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("archive"),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// Checks a whole archive against the archive schema. Each problem is one line,
/// `path: what is wrong`, in document order.
pub(crate) fn validate(archive: &Json) -> Vec<String> {
    let schemas = schemas();
    let mut out = Out::full();
    check(
        schemas,
        Document::Archive,
        schemas.root(Document::Archive),
        archive,
        &Path::Root,
        &mut out,
    );
    out.problems
}

/// [`validate`] for a `Value` (tests build archives with `json!`).
#[cfg(test)]
pub(crate) fn validate_value(archive: &Value) -> Vec<String> {
    let text = archive.to_string();
    validate(&serde_json::from_str(&text).expect("a Value's text is JSON"))
}

/// Where problems go. A quick check (used to try the branches of a `oneOf`, where
/// most branches fail by design) only notes that something failed and stops there,
/// so a valid archive costs no message formatting at all.
struct Out {
    quick: bool,
    failed: bool,
    problems: Vec<String>,
}

impl Out {
    fn full() -> Out {
        Out {
            quick: false,
            failed: false,
            problems: Vec::new(),
        }
    }

    fn quick() -> Out {
        Out {
            quick: true,
            ..Out::full()
        }
    }

    fn report(&mut self, problem: impl FnOnce() -> String) {
        self.failed = true;
        if !self.quick {
            self.problems.push(problem());
        }
    }

    /// Whether a quick check can stop.
    fn done(&self) -> bool {
        self.quick && self.failed
    }
}

/// Every `$ref` of both schemas, resolved once, by the document it is written in.
fn resolved_ref(from: Document, reference: &str) -> Option<(Document, &'static Value)> {
    type Refs = HashMap<String, (Document, &'static Value)>;
    static REFS: OnceLock<[Refs; 2]> = OnceLock::new();
    let refs = REFS.get_or_init(|| {
        let schemas = schemas();
        [Document::Archive, Document::Entities].map(|document| {
            let mut found = Vec::new();
            collect_refs(schemas.root(document), &mut found);
            found
                .into_iter()
                .filter_map(|reference| Some((reference.to_string(), schemas.resolve(document, reference)?)))
                .collect()
        })
    });
    refs[from as usize].get(reference).copied()
}

fn collect_refs<'a>(schema: &'a Value, out: &mut Vec<&'a str>) {
    match schema {
        Value::Object(map) => {
            for (key, sub) in map {
                match (key.as_str(), sub) {
                    ("$ref", Value::String(reference)) => out.push(reference),
                    _ => collect_refs(sub, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}

/// The keywords of one schema object, found in one pass over its few entries (rather
/// than a hashed lookup per keyword for every value checked: an archive with
/// thousands of contacts checks hundreds of thousands of values).
#[derive(Default)]
struct Keywords<'a> {
    reference: Option<&'a Value>,
    types: Option<&'a Value>,
    allowed: Option<&'a Value>,
    pattern: Option<&'a Value>,
    min_length: Option<&'a Value>,
    max_length: Option<&'a Value>,
    properties: Option<&'a Value>,
    required: Option<&'a Value>,
    items: Option<&'a Value>,
    all_of: Option<&'a Value>,
    one_of: Option<&'a Value>,
}

impl<'a> Keywords<'a> {
    fn of(schema: &'a serde_json::Map<String, Value>) -> Keywords<'a> {
        let mut k = Keywords::default();
        for (key, value) in schema {
            let slot = match key.as_str() {
                "$ref" => &mut k.reference,
                "type" => &mut k.types,
                "enum" => &mut k.allowed,
                "pattern" => &mut k.pattern,
                "minLength" => &mut k.min_length,
                "maxLength" => &mut k.max_length,
                "properties" => &mut k.properties,
                "required" => &mut k.required,
                "items" => &mut k.items,
                "allOf" => &mut k.all_of,
                "oneOf" => &mut k.one_of,
                _ => continue,
            };
            *slot = Some(value);
        }
        k
    }
}

fn check(schemas: &Schemas, document: Document, schema: &Value, value: &Json, path: &Path, out: &mut Out) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    let keywords = Keywords::of(schema);
    if let Some(reference) = keywords.reference.and_then(Value::as_str) {
        // Draft-04: a `$ref` replaces every other keyword beside it.
        match resolved_ref(document, reference) {
            Some((target, resolved)) => check(schemas, target, resolved, value, path, out),
            None => out.report(|| format!("{path}: the schema refers to {reference}, which is not known")),
        }
        return;
    }
    if let Some(types) = keywords.types {
        if !type_matches(types, value) {
            out.report(|| format!("{path}: expected {}", describe_types(types)));
            // Further keywords would only repeat the same problem.
            return;
        }
    }
    if let Some(Value::Array(allowed)) = keywords.allowed {
        if !allowed.iter().any(|allowed| value.equals(allowed)) {
            out.report(|| {
                let listed: Vec<String> = allowed.iter().map(Value::to_string).collect();
                format!("{path}: expected {}", listed.join(" or "))
            });
        }
    }
    if let Json::String(text) = value {
        if let Some(pattern) = keywords.pattern.and_then(Value::as_str) {
            match literal_pattern(pattern) {
                Some(literal) if literal == *text => {}
                Some(literal) => out.report(|| format!("{path}: expected {}", Value::String(literal))),
                None => out.report(|| format!("{path}: the schema uses the unsupported pattern {pattern}")),
            }
        }
        let min = keywords.min_length.and_then(Value::as_u64);
        let max = keywords.max_length.and_then(Value::as_u64);
        if min.is_some() || max.is_some() {
            let length = text.chars().count() as u64;
            if let Some(min) = min.filter(|min| length < *min) {
                out.report(|| format!("{path}: shorter than {min} characters"));
            }
            if let Some(max) = max.filter(|max| length > *max) {
                out.report(|| format!("{path}: longer than {max} characters"));
            }
        }
    }
    if out.done() {
        return;
    }
    if let Json::Object(object) = value {
        if let Some(Value::Object(properties)) = keywords.properties {
            for (key, property_schema) in properties {
                if let Some(property) = object.get(key) {
                    check(schemas, document, property_schema, property, &Path::Key(path, key), out);
                    if out.done() {
                        return;
                    }
                }
            }
        }
        if let Some(Value::Array(required)) = keywords.required {
            for key in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(key) {
                    out.report(|| format!("{}: missing", Path::Key(path, key)));
                }
            }
        }
    }
    if let (Json::Array(items), Some(item_schema)) = (value, keywords.items) {
        for (index, item) in items.iter().enumerate() {
            check(schemas, document, item_schema, item, &Path::Index(path, index), out);
            if out.done() {
                return;
            }
        }
    }
    if let Some(Value::Array(all)) = keywords.all_of {
        for sub in all {
            check(schemas, document, sub, value, path, out);
            if out.done() {
                return;
            }
        }
    }
    if let Some(Value::Array(one_of)) = keywords.one_of {
        check_one_of(schemas, document, one_of, value, path, out);
    }
}

/// `oneOf`: exactly one branch must match. When none does, the problems of the branch
/// that came closest (fewest problems) are reported, which is nearly always the form
/// that was meant (its `entity_type` matched).
fn check_one_of(schemas: &Schemas, document: Document, branches: &[Value], value: &Json, path: &Path, out: &mut Out) {
    let matching = branches
        .iter()
        .filter(|branch| {
            let mut trial = Out::quick();
            check(schemas, document, branch, value, path, &mut trial);
            !trial.failed
        })
        .count();
    if matching == 1 {
        return;
    }
    if out.quick {
        out.failed = true;
        return;
    }
    if matching > 1 {
        out.report(|| {
            format!("{path}: matches more than one of the allowed forms, where the schema wants exactly one")
        });
        return;
    }
    let results: Vec<Vec<String>> = branches
        .iter()
        .map(|branch| {
            let mut trial = Out::full();
            check(schemas, document, branch, value, path, &mut trial);
            trial.problems
        })
        .collect();
    let fewest = results.iter().map(Vec::len).min().unwrap_or(0);
    let closest: Vec<&Vec<String>> = results.iter().filter(|p| p.len() == fewest).collect();
    if let [only] = closest.as_slice() {
        for problem in only.iter() {
            out.report(|| problem.clone());
        }
    } else {
        let firsts: Vec<&str> = closest.iter().filter_map(|p| p.first()).map(String::as_str).collect();
        out.report(|| format!("{path}: matches none of the allowed forms ({})", firsts.join("; or ")));
    }
}

fn type_matches(types: &Value, value: &Json) -> bool {
    let one = |name: &str| match name {
        "object" => matches!(value, Json::Object(_)),
        "array" => matches!(value, Json::Array(_)),
        "string" => matches!(value, Json::String(_)),
        "boolean" => matches!(value, Json::Bool(_)),
        "null" => matches!(value, Json::Null),
        "number" => matches!(value, Json::Number(_)),
        "integer" => matches!(value, Json::Number(n)
            if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)),
        // An unknown type name matches nothing, so a schema typo cannot let data through.
        _ => false,
    };
    match types {
        Value::String(name) => one(name),
        Value::Array(names) => names.iter().filter_map(Value::as_str).any(one),
        _ => true,
    }
}

fn describe_types(types: &Value) -> String {
    let article = |name: &str| match name {
        "object" | "array" | "integer" => format!("an {name}"),
        "null" => "null".to_string(),
        other => format!("a {other}"),
    };
    match types {
        Value::String(name) => article(name),
        Value::Array(names) => names
            .iter()
            .filter_map(Value::as_str)
            .map(article)
            .collect::<Vec<_>>()
            .join(" or "),
        other => other.to_string(),
    }
}

/// The text a `^literal$` pattern matches exactly (backslash escapes allowed), or
/// `None` for any other pattern.
pub(crate) fn literal_pattern(pattern: &str) -> Option<String> {
    let inner = pattern.strip_prefix('^')?.strip_suffix('$')?;
    let mut literal = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => literal.push(chars.next().filter(|c| !c.is_ascii_alphanumeric())?),
            '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' => return None,
            c => literal.push(c),
        }
    }
    Some(literal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every keyword of both schemas, with the object keys of `properties` and
    /// `definitions` (and of nested definition groups) taken as names, not keywords.
    fn keywords(schema: &Value, out: &mut std::collections::BTreeSet<String>) {
        match schema {
            Value::Object(map) => {
                for (key, sub) in map {
                    if matches!(key.as_str(), "properties" | "definitions") {
                        for named in sub.as_object().into_iter().flat_map(|m| m.values()) {
                            named_schema(named, out);
                        }
                    } else if key == "enum" {
                        out.insert(key.clone());
                    } else {
                        out.insert(key.clone());
                        keywords(sub, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| keywords(item, out)),
            _ => {}
        }
    }

    /// A definition is a schema, or a group of schemas (`remote_subscription`) whose keys
    /// are names.
    fn named_schema(schema: &Value, out: &mut std::collections::BTreeSet<String>) {
        let is_group = schema.as_object().is_some_and(|map| {
            !map.is_empty() && map.values().all(Value::is_object) && !map.contains_key("properties")
        });
        if is_group {
            for sub in schema.as_object().unwrap().values() {
                named_schema(sub, out);
            }
        } else {
            keywords(schema, out);
        }
    }

    #[test]
    fn the_schemas_use_only_supported_keywords_patterns_and_references() {
        let schemas = schemas();
        for document in [Document::Archive, Document::Entities] {
            let root = schemas.root(document);
            let mut found = std::collections::BTreeSet::new();
            keywords(root, &mut found);
            for keyword in &found {
                assert!(
                    SUPPORTED_KEYWORDS.contains(&keyword.as_str()),
                    "{document:?} schema uses {keyword}, which the validator does not understand"
                );
            }
            let mut refs = Vec::new();
            collect_refs(root, &mut refs);
            assert!(!refs.is_empty());
            for reference in refs {
                assert!(
                    resolved_ref(document, reference).is_some(),
                    "{reference} does not resolve"
                );
            }
        }
        assert_eq!(literal_pattern(r"^2\.0$").as_deref(), Some("2.0"));
        assert_eq!(literal_pattern("^profile$").as_deref(), Some("profile"));
        assert_eq!(literal_pattern("^a.c$"), None);
        assert_eq!(literal_pattern("abc"), None);
        assert_eq!(literal_pattern(r"^\d$"), None);
    }

    #[test]
    fn reports_paths_and_the_closest_form() {
        let archive = json!({
            "version": "2.0",
            "user": {
                "username": "alice",
                "email": 7,
                "private_key": "x",
                "profile": {"entity_type": "profile", "entity_data": {"author": "alice@pod.example"}},
                "contacts": [{"sharing": true, "following": true, "receiving": "yes", "followed": true,
                              "contact_groups_membership": []}],
                "relayables": [{"entity_type": "like", "property_order": [],
                                "entity_data": {"author": "alice@pod.example", "guid": "0123456789abcdef",
                                                "parent_guid": "0123456789abcdef", "parent_type": "Post"}}],
                "post_subscriptions": ["short"],
            }
        });
        let problems = validate_value(&archive);
        assert_eq!(
            problems,
            vec![
                "user.email: expected a string",
                "user.contacts[0].receiving: expected a boolean",
                "user.contacts[0].account_id: missing",
                "user.relayables[0].entity_data.positive: missing",
                "user.post_subscriptions[0]: shorter than 16 characters",
            ]
        );
        assert_eq!(
            validate_value(&json!({"version": "1.0", "user": {}})),
            vec![
                "user.username: missing",
                "user.email: missing",
                "user.private_key: missing",
                "user.profile: missing",
                "version: expected \"2.0\"",
            ]
        );
        assert_eq!(validate_value(&json!([])), vec!["archive: expected an object"]);
    }
}
