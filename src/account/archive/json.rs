//! The archive's JSON as the import reads it: a tree whose strings borrow from the
//! archive's text wherever the text has no escapes, and whose objects are their
//! entries in order.
//!
//! `serde_json::Value` (with `preserve_order`) allocates every key and every string
//! and builds a hash table for every object, which for an archive with thousands of
//! contacts is most of the time spent reading it. This tree does neither, and keeps
//! `Value`'s meaning where it shows: a repeated key keeps its first place and its last
//! value, numbers are [`serde_json::Number`], and a tree is written back (the verbatim
//! sections) with the same bytes `Value` would write.
//!
//! Not owned here: what the archive means (the parent module), the schema check
//! (`schema`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Number, Value};

/// A JSON value; strings borrow from the text they were read from when they can.
#[derive(Clone, Debug)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

/// A JSON object: its entries in order, each key once.
#[derive(Clone, Debug, Default)]
pub(crate) struct Object<'a> {
    entries: Vec<(Cow<'a, str>, Json<'a>)>,
}

impl<'a> Json<'a> {
    /// The value under `key`, when this is an object that has it.
    pub(crate) fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.as_object()?.get(key)
    }

    pub(crate) fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Json::Object(object) => Some(object),
            _ => None,
        }
    }

    pub(crate) fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(text) => Some(text),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Whether this equals a value of the schema (`enum`), as `Value`'s `==` has it:
    /// objects are equal whatever the order of their keys.
    pub(crate) fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Json::Null, Value::Null) => true,
            (Json::Bool(a), Value::Bool(b)) => a == b,
            (Json::Number(a), Value::Number(b)) => a == b,
            (Json::String(a), Value::String(b)) => a == b,
            (Json::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.equals(b)),
            (Json::Object(a), Value::Object(b)) => {
                a.len() == b.len() && a.iter().all(|(key, a)| b.get(key).is_some_and(|b| a.equals(b)))
            }
            _ => false,
        }
    }
}

impl<'a> Object<'a> {
    pub(crate) fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, value)| value)
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Takes the value under `key` out, keeping the order of the others.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Json<'a>> {
        let at = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(at).1)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Json<'a>)> {
        self.entries.iter().map(|(key, value)| (key.as_ref(), value))
    }
}

impl<'a> IntoIterator for Object<'a> {
    type Item = (Cow<'a, str>, Json<'a>);
    type IntoIter = std::vec::IntoIter<(Cow<'a, str>, Json<'a>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

/// Collects entries as `Value`'s map does: a repeated key keeps its first place and
/// takes the later value.
impl<'a> FromIterator<(Cow<'a, str>, Json<'a>)> for Object<'a> {
    fn from_iter<I: IntoIterator<Item = (Cow<'a, str>, Json<'a>)>>(entries: I) -> Self {
        let mut builder = Builder::default();
        for (key, value) in entries {
            builder.insert(key, value);
        }
        builder.object
    }
}

/// Builds an object, finding repeated keys by a scan while it is small and by a hash
/// table past that (an object with a great many keys must not cost their square).
#[derive(Default)]
struct Builder<'a> {
    object: Object<'a>,
    index: Option<HashMap<Cow<'a, str>, usize>>,
}

impl<'a> Builder<'a> {
    const SCAN_UP_TO: usize = 16;

    fn insert(&mut self, key: Cow<'a, str>, value: Json<'a>) {
        let entries = &mut self.object.entries;
        if self.index.is_none() && entries.len() >= Self::SCAN_UP_TO {
            let index = entries.iter().enumerate().map(|(at, (k, _))| (k.clone(), at)).collect();
            self.index = Some(index);
        }
        let found = match &mut self.index {
            None => entries.iter().position(|(k, _)| *k == key),
            Some(index) => match index.get(&key) {
                Some(at) => Some(*at),
                None => {
                    index.insert(key.clone(), entries.len());
                    None
                }
            },
        };
        match found {
            Some(at) => entries[at].1 = value,
            None => entries.push((key, value)),
        }
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Json<'de>, E> {
        // As `Value` reads it: a number JSON cannot write becomes null.
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(text.to_string())))
    }

    fn visit_string<E>(self, text: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(text)))
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json<'de>, D::Error> {
        Json::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut builder = Builder::default();
        while let Some(Key(key)) = map.next_key()? {
            builder.insert(key, map.next_value()?);
        }
        Ok(Json::Object(builder.object))
    }
}

/// An object key, borrowed when the text allows.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }

            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(text)))
            }

            fn visit_str<E>(self, text: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(text.to_string())))
            }

            fn visit_string<E>(self, text: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Written as `Value` writes the same value.
impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(b) => serializer.serialize_bool(*b),
            Json::Number(n) => n.serialize(serializer),
            Json::String(text) => serializer.serialize_str(text),
            Json::Array(items) => serializer.collect_seq(items),
            Json::Object(object) => {
                let mut map = serializer.serialize_map(Some(object.len()))?;
                for (key, value) in object.iter() {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

/// Compact JSON, as `Value`'s `Display`.
impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts that exercise every kind of value, escapes, repeated keys and numbers of
    /// each sort.
    const TEXTS: &[&str] = &[
        r#"{"a": 1, "b": [true, false, null, -3, 2.5, 1e300, 18446744073709551615], "a": {"x": "y"}}"#,
        r#"{"s": "plain", "e": "line\nbreak \"quoted\" \u00e9 \ud83d\ude00", "\u0041": "escaped key"}"#,
        r#"[{"k": 1, "k": 2, "k": 3}, [], {}, "", 0, -0, -9223372036854775808]"#,
        r#""just a string""#,
        "12345678901234567890123",
    ];

    #[test]
    fn reads_and_writes_as_value_does() {
        for text in TEXTS {
            let value: Value = serde_json::from_str(text).unwrap();
            let json: Json = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&json).unwrap(), value.to_string(), "{text}");
            assert_eq!(json.to_string(), value.to_string(), "{text}");
            assert!(json.equals(&value), "{text}");
            let mut reader = serde_json::Deserializer::from_reader(text.as_bytes());
            let from_reader = Json::deserialize(&mut reader).unwrap();
            assert_eq!(from_reader.to_string(), value.to_string(), "{text}");
        }
    }

    #[test]
    fn strings_without_escapes_borrow_the_text() {
        let json: Json = serde_json::from_str(r#"{"plain": "text", "esc": "a\nb"}"#).unwrap();
        let object = json.as_object().unwrap();
        let (keys, values): (Vec<_>, Vec<_>) = object.entries.iter().cloned().unzip();
        assert!(keys.iter().all(|key| matches!(key, Cow::Borrowed(_))));
        assert!(matches!(values[0], Json::String(Cow::Borrowed("text"))));
        assert!(matches!(&values[1], Json::String(Cow::Owned(text)) if text == "a\nb"));
    }

    #[test]
    fn repeated_keys_keep_their_first_place_and_last_value_in_small_and_large_objects() {
        for count in [3, 40, 1000] {
            let mut text = String::from("{");
            for i in 0..count {
                text += &format!("\"k{i}\": {i}, ");
            }
            text += "\"k1\": \"again\", \"k0\": null}";
            let value: Value = serde_json::from_str(&text).unwrap();
            let json: Json = serde_json::from_str(&text).unwrap();
            assert_eq!(json.to_string(), value.to_string());
            assert_eq!(json.as_object().unwrap().len(), count);
            let collected: Object = json
                .as_object()
                .unwrap()
                .entries
                .iter()
                .cloned()
                .chain([(Cow::Borrowed("k2"), Json::Bool(true))])
                .collect();
            assert_eq!(collected.len(), count);
            assert_eq!(collected.get("k2").and_then(Json::as_bool), Some(true));
            assert_eq!(collected.iter().nth(2).map(|(k, _)| k), Some("k2"));
        }
    }

    #[test]
    fn equality_with_schema_values_ignores_key_order_only() {
        let json: Json = serde_json::from_str(r#"{"a": [1, "x"], "b": null}"#).unwrap();
        assert!(json.equals(&serde_json::json!({"b": null, "a": [1, "x"]})));
        assert!(!json.equals(&serde_json::json!({"a": [1, "x"]})));
        assert!(!json.equals(&serde_json::json!({"a": ["x", 1], "b": null})));
        assert!(!json.equals(&serde_json::json!({"a": [1.0, "x"], "b": null})));
    }
}
