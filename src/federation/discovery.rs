//! The discovery documents diaspora* uses to find a person (docs/formats.md,
//! "Discovery"): the WebFinger JRD answered at `/.well-known/webfinger` and the hCard
//! HTML at `/hcard/users/GUID` — rendering ours and parsing other pods', tolerantly,
//! the way diaspora*'s own parser reads them.

use rsa::RsaPublicKey;
use serde_json::{json, Value};

use super::entities::valid_guid;
use super::html::HtmlDocument;
use super::signature::{public_key_from_pem, public_key_to_pem};
use super::xml::{escape_attribute, escape_text};
use crate::{Error, Result};

/// Link relation of the hCard URL.
pub const REL_HCARD: &str = "http://microformats.org/profile/hcard";
/// Link relation of the pod's root URL.
pub const REL_SEED_LOCATION: &str = "http://joindiaspora.com/seed_location";
/// Link relation of the person's profile page.
pub const REL_PROFILE_PAGE: &str = "http://webfinger.net/rel/profile-page";
/// Link relation of the URL private messages to the person are POSTed to.
pub const REL_SALMON: &str = "salmon";
/// The `Content-Type` of a WebFinger answer.
pub const JRD_CONTENT_TYPE: &str = "application/jrd+json";

/// `BASE/hcard/users/GUID`, where a person's hCard is served.
pub fn hcard_url(base_url: &str, guid: &str) -> String {
    format!("{}/hcard/users/{guid}", trim_base(base_url))
}

/// `BASE/people/GUID`, the person's URL that WebFinger lists as its alias (as diaspora*
/// does).
pub fn person_url(base_url: &str, guid: &str) -> String {
    format!("{}/people/{guid}", trim_base(base_url))
}

/// `BASE/receive/users/GUID`, where private messages to the person are POSTed.
pub fn receive_url(base_url: &str, guid: &str) -> String {
    format!("{}/receive/users/{guid}", trim_base(base_url))
}

/// `BASE/u/USERNAME`, the person's profile page (as diaspora* names it).
pub fn profile_page_url(base_url: &str, username: &str) -> String {
    format!("{}/u/{username}", trim_base(base_url))
}

fn trim_base(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

/// The WebFinger JRD for a local person: `subject` `acct:user@host`, the person URL as
/// alias, and the hCard, seed location, profile page and salmon links, in the order
/// diaspora_federation's `WebFinger#to_json` writes them.
pub fn render_jrd(diaspora_id: &str, base_url: &str, guid: &str) -> Value {
    let username = diaspora_id.split('@').next().unwrap_or(diaspora_id);
    json!({
        "subject": format!("acct:{diaspora_id}"),
        "aliases": [person_url(base_url, guid)],
        "links": [
            {"rel": REL_HCARD, "type": "text/html", "href": hcard_url(base_url, guid)},
            {"rel": REL_SEED_LOCATION, "type": "text/html", "href": format!("{}/", trim_base(base_url))},
            {"rel": REL_PROFILE_PAGE, "type": "text/html", "href": profile_page_url(base_url, username)},
            {"rel": REL_SALMON, "href": receive_url(base_url, guid)},
        ],
    })
}

/// What lifeboat needs from another pod's WebFinger answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jrd {
    /// As written, normally `acct:user@host`.
    pub subject: String,
    /// Other URLs of the person, as listed.
    pub aliases: Vec<String>,
    /// Absolute http(s) URL of the hCard.
    pub hcard_url: String,
    /// The pod's root URL.
    pub seed_location: String,
    /// The person's profile page, when linked.
    pub profile_page: Option<String>,
}

impl Jrd {
    /// The diaspora ID the subject names (`subject` without `acct:`), if it is an
    /// `acct:` URI.
    pub fn diaspora_id(&self) -> Option<&str> {
        self.subject.strip_prefix("acct:")
    }
}

/// Reads a WebFinger JRD ([`Error::Upstream`] when it is not JSON or lacks the subject,
/// the hCard link or the seed location, as diaspora* requires).
pub fn parse_jrd(body: &[u8]) -> Result<Jrd> {
    let document: Value =
        serde_json::from_slice(body).map_err(|_| Error::Upstream("WebFinger answer is not JSON".into()))?;
    let subject = document
        .get("subject")
        .and_then(Value::as_str)
        .filter(|subject| !subject.trim().is_empty())
        .ok_or_else(|| Error::Upstream("WebFinger answer has no subject".into()))?
        .trim()
        .to_string();
    let aliases = document
        .get("aliases")
        .and_then(Value::as_array)
        .map(|aliases| aliases.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let links = document
        .get("links")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Upstream("WebFinger answer has no links".into()))?;
    // The first link of that relation with a usable href.
    let link = |rel: &str, usable: fn(&str) -> bool| {
        links
            .iter()
            .filter(|link| link.get("rel").and_then(Value::as_str) == Some(rel))
            .filter_map(|link| link.get("href").and_then(Value::as_str))
            .map(str::trim)
            .find(|href| !href.is_empty() && usable(href))
            .map(str::to_string)
    };
    let hcard_url = link(REL_HCARD, is_http_url)
        .ok_or_else(|| Error::Upstream("WebFinger answer has no http(s) hCard link".into()))?;
    let seed_location = link(REL_SEED_LOCATION, |_| true)
        .ok_or_else(|| Error::Upstream("WebFinger answer has no seed_location link".into()))?;
    Ok(Jrd {
        subject,
        aliases,
        hcard_url,
        seed_location,
        profile_page: link(REL_PROFILE_PAGE, |_| true),
    })
}

/// A person as an hCard describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HcardPerson {
    /// The person's guid (`.uid`), valid per [`valid_guid`].
    pub guid: String,
    /// The user part of the diaspora ID; optional in other pods' hCards.
    pub nickname: Option<String>,
    /// Display name (`.fn`); may be empty.
    pub full_name: String,
    /// `.given_name`; empty when absent.
    pub first_name: String,
    /// `.family_name`; empty when absent.
    pub last_name: String,
    /// The person's signing key (`.key`, SPKI PEM when rendered).
    pub public_key: RsaPublicKey,
    /// The 300×300 avatar URL.
    pub photo_large_url: String,
    /// The 100×100 avatar URL.
    pub photo_medium_url: String,
    /// The 50×50 avatar URL.
    pub photo_small_url: String,
    /// Whether the person may be found by name (`.searchable` is `true`).
    pub searchable: bool,
}

/// Renders an hCard page in the structure diaspora* writes (see
/// `reference/diaspora-examples/hcard.example.html`); every value is escaped.
pub fn render_hcard(person: &HcardPerson) -> String {
    let full_name = escape_text(&person.full_name);
    let mut html = String::with_capacity(4096);
    html.push_str(concat!(
        "<!DOCTYPE html PUBLIC \"-//W3C//DTD HTML 4.0 Transitional//EN\" ",
        "\"http://www.w3.org/TR/REC-html40/loose.dtd\">\n",
        "<html xmlns=\"http://www.w3.org/1999/xhtml\">\n",
        "  <head>\n",
        "    <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n",
        "    <meta charset=\"UTF-8\" />\n",
    ));
    html.push_str(&format!("    <title>{full_name}</title>\n"));
    html.push_str("  </head>\n  <body>\n    <div id=\"content\">\n");
    html.push_str(&format!("      <h1>{full_name}</h1>\n"));
    html.push_str(
        "      <div id=\"content_inner\" class=\"entity_profile vcard author\">\n        <h2>User profile</h2>\n",
    );
    let span = |class: &str, value: &str| format!("<span class=\"{class}\">{}</span>", escape_text(value));
    push_property(&mut html, "uid", &span("uid", &person.guid));
    if let Some(nickname) = &person.nickname {
        push_property(&mut html, "nickname", &span("nickname", nickname));
    }
    push_property(&mut html, "full_name", &span("fn", &person.full_name));
    let searchable = if person.searchable { "true" } else { "false" };
    push_property(&mut html, "searchable", &span("searchable", searchable));
    let key = format!(
        "<pre class=\"key\">{}</pre>",
        escape_text(&public_key_to_pem(&person.public_key))
    );
    push_property(&mut html, "key", &key);
    push_property(&mut html, "first_name", &span("given_name", &person.first_name));
    push_property(&mut html, "family_name", &span("family_name", &person.last_name));
    let photos = [
        ("photo", 300, &person.photo_large_url),
        ("photo_medium", 100, &person.photo_medium_url),
        ("photo_small", 50, &person.photo_small_url),
    ];
    for (name, size, url) in photos {
        let img = format!(
            "<img class=\"photo avatar\" width=\"{size}\" height=\"{size}\" src=\"{}\" />",
            escape_attribute(url)
        );
        push_property(&mut html, name, &img);
    }
    html.push_str("      </div>\n    </div>\n  </body>\n</html>\n");
    html
}

/// One `<dl class="entity_NAME"><dt>Name</dt><dd>CONTENT</dd></dl>` block.
fn push_property(html: &mut String, name: &str, content: &str) {
    let mut label = name.to_string();
    if let Some(first) = label.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    html.push_str(&format!(
        "        <dl class=\"entity_{name}\">\n          <dt>{label}</dt>\n          <dd>\n            {content}\n          </dd>\n        </dl>\n"
    ));
}

/// Reads another pod's hCard ([`Error::Upstream`] when it is unusable).
///
/// Like diaspora*'s parser it refuses a card without `.fn` or without any of the three
/// photos with a `src`; lifeboat also needs a valid guid (`.uid`) and public key
/// (`.key`). Relative photo URLs are resolved against `base_url` (the hCard's URL or
/// the pod's root).
pub fn parse_hcard(html: &str, base_url: &str) -> Result<HcardPerson> {
    let document = HtmlDocument::parse(html);
    let text_of = |class: &str| {
        document
            .first_with_class(class)
            .map(|element| element.text().trim().to_string())
    };
    let full_name = text_of("fn").ok_or_else(|| Error::Upstream("hCard has no full name (.fn)".into()))?;
    let photo = |ancestor_class: &str| -> Result<String> {
        let src = document
            .first_with_class_inside(ancestor_class, "photo", "src")
            .and_then(|element| element.attribute("src"))
            .map(str::trim)
            .filter(|src| !src.is_empty())
            .ok_or_else(|| Error::Upstream(format!("hCard has no photo (.{ancestor_class} .photo[src])")))?;
        resolve_url(base_url, src)
            .ok_or_else(|| Error::Upstream(format!("hCard photo URL in .{ancestor_class} is unusable")))
    };
    let photo_large_url = photo("entity_photo")?;
    let photo_medium_url = photo("entity_photo_medium")?;
    let photo_small_url = photo("entity_photo_small")?;
    let guid = text_of("uid").ok_or_else(|| Error::Upstream("hCard has no guid (.uid)".into()))?;
    if !valid_guid(&guid) {
        return Err(Error::Upstream("hCard guid (.uid) is not a valid guid".into()));
    }
    let key_pem = text_of("key").ok_or_else(|| Error::Upstream("hCard has no public key (.key)".into()))?;
    let public_key = public_key_from_pem(&key_pem)
        .map_err(|_| Error::Upstream("hCard public key (.key) is not an RSA public key".into()))?;
    Ok(HcardPerson {
        guid,
        nickname: text_of("nickname").filter(|nickname| !nickname.is_empty()),
        full_name,
        first_name: text_of("given_name").unwrap_or_default(),
        last_name: text_of("family_name").unwrap_or_default(),
        public_key,
        photo_large_url,
        photo_medium_url,
        photo_small_url,
        searchable: text_of("searchable").as_deref() == Some("true"),
    })
}

fn is_http_url(url: &str) -> bool {
    split_http_url(url).is_some()
}

/// `(scheme, authority, path-and-rest)` of an absolute http(s) URL with a host.
fn split_http_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    if authority.is_empty() || authority.contains(|c: char| c.is_whitespace()) {
        return None;
    }
    Some((scheme, authority, path))
}

/// Resolves a URL reference against an http(s) base (RFC 3986 §5.2, for the references
/// hCards carry). `None` when the result would not be an http(s) URL.
pub(crate) fn resolve_url(base_url: &str, reference: &str) -> Option<String> {
    if reference.contains(|c: char| c.is_control()) {
        return None;
    }
    let has_scheme = reference.split_once(':').is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if has_scheme {
        return is_http_url(reference).then(|| reference.to_string());
    }
    let (scheme, authority, base_path) = split_http_url(base_url)?;
    if let Some(network_path) = reference.strip_prefix("//") {
        let absolute = format!("{scheme}://{network_path}");
        return is_http_url(&absolute).then_some(absolute);
    }
    let base_path = &base_path[..base_path.find(['?', '#']).unwrap_or(base_path.len())];
    let (reference_path, suffix) = reference.split_at(reference.find(['?', '#']).unwrap_or(reference.len()));
    let merged = if reference_path.starts_with('/') {
        reference_path.to_string()
    } else if reference_path.is_empty() {
        if base_path.is_empty() { "/" } else { base_path }.to_string()
    } else {
        let directory = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
        let directory = if directory.is_empty() { "/" } else { directory };
        format!("{directory}{reference_path}")
    };
    Some(format!(
        "{scheme}://{authority}{}{suffix}",
        remove_dot_segments(&merged)
    ))
}

/// RFC 3986 §5.2.4, for an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last_index = segments.len().saturating_sub(1);
    for (index, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if index == last_index {
                    output.push("");
                }
            }
            ".." => {
                output.pop();
                if index == last_index {
                    output.push("");
                }
            }
            other => output.push(other),
        }
    }
    format!("/{}", output.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::test_support::{assert_no_panic_on_damaged_input, key_2048, python_elements, reference};
    use rsa::traits::PublicKeyParts;

    fn reference_hcard() -> String {
        reference("diaspora-examples/hcard.example.html")
    }

    fn reference_person() -> HcardPerson {
        parse_hcard(&reference_hcard(), "https://example.org/hcard/users/x").unwrap()
    }

    #[test]
    fn parses_the_reference_webfinger() {
        let jrd = parse_jrd(reference("diaspora-examples/webfinger.example.json").as_bytes()).unwrap();
        assert_eq!(jrd.subject, "acct:alice@example.org");
        assert_eq!(jrd.diaspora_id(), Some("alice@example.org"));
        assert_eq!(
            jrd.hcard_url,
            "https://example.org/hcard/users/7dba7ca01d64013485eb3131731751e9"
        );
        assert_eq!(jrd.seed_location, "https://example.org/");
        assert_eq!(jrd.profile_page, None);
        assert!(jrd.aliases.is_empty());
    }

    #[test]
    fn renders_a_jrd_that_parses_back() {
        let guid = "0123456789abcdef0123456789abcdef";
        let jrd = render_jrd("alice@pod.example:8443", "https://pod.example:8443/", guid);
        assert_eq!(
            jrd,
            json!({
                "subject": "acct:alice@pod.example:8443",
                "aliases": ["https://pod.example:8443/people/0123456789abcdef0123456789abcdef"],
                "links": [
                    {"rel": "http://microformats.org/profile/hcard", "type": "text/html",
                     "href": "https://pod.example:8443/hcard/users/0123456789abcdef0123456789abcdef"},
                    {"rel": "http://joindiaspora.com/seed_location", "type": "text/html",
                     "href": "https://pod.example:8443/"},
                    {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html",
                     "href": "https://pod.example:8443/u/alice"},
                    {"rel": "salmon",
                     "href": "https://pod.example:8443/receive/users/0123456789abcdef0123456789abcdef"},
                ],
            })
        );
        let parsed = parse_jrd(jrd.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.diaspora_id(), Some("alice@pod.example:8443"));
        assert_eq!(parsed.hcard_url, hcard_url("https://pod.example:8443", guid));
        assert_eq!(parsed.seed_location, "https://pod.example:8443/");
        assert_eq!(parsed.profile_page.as_deref(), Some("https://pod.example:8443/u/alice"));
        assert_eq!(parsed.aliases, [person_url("https://pod.example:8443", guid)]);
    }

    #[test]
    fn parse_jrd_refuses_incomplete_answers() {
        let hcard = json!({"rel": REL_HCARD, "href": "https://a.example/hcard/users/x"});
        let seed = json!({"rel": REL_SEED_LOCATION, "href": "https://a.example/"});
        let cases = [
            b"not json".to_vec(),
            b"[]".to_vec(),
            json!({"links": [hcard, seed]}).to_string().into_bytes(),
            json!({"subject": "acct:a@a.example"}).to_string().into_bytes(),
            json!({"subject": "acct:a@a.example", "links": [seed]})
                .to_string()
                .into_bytes(),
            json!({"subject": "acct:a@a.example", "links": [hcard]})
                .to_string()
                .into_bytes(),
            json!({"subject": "acct:a@a.example", "links": [
                {"rel": REL_HCARD, "href": "/hcard/users/x"}, seed]})
            .to_string()
            .into_bytes(),
            json!({"subject": 5, "links": [hcard, seed]}).to_string().into_bytes(),
        ];
        for case in cases {
            let err = parse_jrd(&case).unwrap_err();
            assert!(
                matches!(err, Error::Upstream(_)),
                "{}: {err:?}",
                String::from_utf8_lossy(&case)
            );
        }
        let extra = json!({"subject": "acct:a@a.example", "links": [
            {"rel": "other", "href": 5}, {"rel": REL_HCARD}, hcard, seed]});
        assert!(parse_jrd(extra.to_string().as_bytes()).is_ok());
    }

    #[test]
    fn parses_the_reference_hcard() {
        let person = reference_person();
        assert_eq!(person.guid, "7dba7ca01d64013485eb3131731751e9");
        assert_eq!(person.nickname, None);
        assert_eq!(person.full_name, "Alice Smith");
        assert_eq!(person.first_name, "Alice");
        assert_eq!(person.last_name, "Smith");
        assert!(person.searchable);
        assert_eq!(person.public_key.n().bits(), 4096);
        assert_eq!(
            person.photo_large_url,
            "https://example.org/images/thumb_large_a795f872c93309597345.jpg"
        );
        assert_eq!(
            person.photo_medium_url,
            "https://example.org/images/thumb_medium_a795f872c93309597345.jpg"
        );
        assert_eq!(
            person.photo_small_url,
            "https://example.org/images/thumb_small_a795f872c93309597345.jpg"
        );
    }

    #[test]
    fn renders_the_reference_hcard_byte_for_byte() {
        assert_eq!(render_hcard(&reference_person()), reference_hcard());
    }

    #[test]
    fn a_rendered_hcard_parses_back_with_escaping_intact() {
        let person = HcardPerson {
            guid: "0123456789abcdef0123456789abcdef".into(),
            nickname: Some("alice".into()),
            full_name: "Alice <b>\"&amp;\" O'Hara</b>".into(),
            first_name: "Alice & co".into(),
            last_name: String::new(),
            public_key: key_2048().to_public_key(),
            photo_large_url: "https://pod.example/avatar.png?size=l&v=\"2\"".into(),
            photo_medium_url: "https://pod.example/avatar.png?size=m".into(),
            photo_small_url: "https://pod.example/avatar.png?size=s".into(),
            searchable: false,
        };
        let html = render_hcard(&person);
        assert!(!html.contains("<b>"));
        assert_eq!(parse_hcard(&html, "https://elsewhere.example/").unwrap(), person);

        // Our rendering is also well-formed XML, read by an independent parser.
        let elements = python_elements(&html);
        let find = |tag: &str, nth: usize| {
            elements
                .iter()
                .filter(|e| e.1.ends_with(tag))
                .nth(nth)
                .map(|e| e.2.clone())
                .unwrap()
        };
        assert_eq!(find("title", 0), person.full_name);
        assert_eq!(find("span", 1), "alice");
        assert_eq!(find("span", 2), person.full_name);
        assert!(find("pre", 0).starts_with("-----BEGIN PUBLIC KEY-----"));
        let classes: Vec<String> = elements
            .iter()
            .filter(|e| e.1.ends_with("dt"))
            .map(|e| e.2.clone())
            .collect();
        assert_eq!(
            classes,
            [
                "Uid",
                "Nickname",
                "Full_name",
                "Searchable",
                "Key",
                "First_name",
                "Family_name",
                "Photo",
                "Photo_medium",
                "Photo_small"
            ]
        );
    }

    #[test]
    fn relative_photo_urls_are_resolved_against_the_base() {
        let html = reference_hcard()
            .replace(
                "https://example.org/images/thumb_large_a795f872c93309597345.jpg",
                "/assets/user/default.png",
            )
            .replace(
                "https://example.org/images/thumb_medium_a795f872c93309597345.jpg",
                "medium.png",
            )
            .replace(
                "https://example.org/images/thumb_small_a795f872c93309597345.jpg",
                "//cdn.example/small.png",
            );
        let person = parse_hcard(&html, "https://pod.example/hcard/users/abc").unwrap();
        assert_eq!(person.photo_large_url, "https://pod.example/assets/user/default.png");
        assert_eq!(person.photo_medium_url, "https://pod.example/hcard/users/medium.png");
        assert_eq!(person.photo_small_url, "https://cdn.example/small.png");
    }

    #[test]
    fn resolves_url_references() {
        let base = "https://pod.example:8443/a/b/c?q=1#f";
        let cases = [
            ("https://other.example/x", Some("https://other.example/x")),
            ("HTTP://other.example", Some("HTTP://other.example")),
            ("/x.png", Some("https://pod.example:8443/x.png")),
            ("x.png", Some("https://pod.example:8443/a/b/x.png")),
            ("../x.png", Some("https://pod.example:8443/a/x.png")),
            ("../../../../x.png", Some("https://pod.example:8443/x.png")),
            ("./x.png?v=1", Some("https://pod.example:8443/a/b/x.png?v=1")),
            ("//cdn.example/x", Some("https://cdn.example/x")),
            ("?v=2", Some("https://pod.example:8443/a/b/c?v=2")),
            ("javascript:alert(1)", None),
            ("data:image/png;base64,AAAA", None),
            ("ftp://x.example/a", None),
            ("https:///nohost", None),
            ("/x\ny", None),
            ("//", None),
        ];
        for (reference, expected) in cases {
            assert_eq!(resolve_url(base, reference).as_deref(), expected, "{reference}");
        }
        assert_eq!(
            resolve_url("https://pod.example", "x.png").as_deref(),
            Some("https://pod.example/x.png")
        );
        assert_eq!(resolve_url("not a url", "x.png"), None);
    }

    #[test]
    fn refuses_hcards_that_diaspora_refuses_or_that_lack_what_lifeboat_needs() {
        let html = reference_hcard();
        let base = "https://example.org/";
        let without = |from: &str, to: &str| {
            let start = html.find(from).unwrap();
            let end = html[start..].find(to).unwrap() + start + to.len();
            format!("{}{}", &html[..start], &html[end..])
        };
        let cases = [
            (without("<dl class=\"entity_full_name\">", "</dl>"), ".fn"),
            (without("<dl class=\"entity_photo\">", "</dl>"), "entity_photo "),
            (
                without("<dl class=\"entity_photo_medium\">", "</dl>"),
                "entity_photo_medium",
            ),
            (
                without("<dl class=\"entity_photo_small\">", "</dl>"),
                "entity_photo_small",
            ),
            (
                html.replace(
                    "src=\"https://example.org/images/thumb_small_a795f872c93309597345.jpg\"",
                    "",
                ),
                "entity_photo_small",
            ),
            (without("<dl class=\"entity_uid\">", "</dl>"), ".uid"),
            (without("<dl class=\"entity_key\">", "</dl>"), ".key"),
            (
                html.replace("MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEA", "MIIC"),
                ".key",
            ),
            (html.replace("7dba7ca01d64013485eb3131731751e9", "short"), "guid"),
            (
                html.replace(
                    "https://example.org/images/thumb_large_a795f872c93309597345.jpg",
                    "javascript:alert(1)",
                ),
                "unusable",
            ),
        ];
        for (damaged, expected) in cases {
            let err = parse_hcard(&damaged, base).unwrap_err();
            assert!(matches!(err, Error::Upstream(_)), "{err:?}");
            assert!(err.to_string().contains(expected), "{err} lacks {expected}");
        }
        assert!(parse_hcard("", base).is_err());
        assert!(parse_hcard("{\"json\": true}", base).is_err());
    }

    #[test]
    fn reads_sloppy_html_like_a_browser() {
        let pem = public_key_to_pem(&key_2048().to_public_key());
        let html = format!(
            "<!doctype html><html><head><meta charset=utf-8><title>x</title><link rel=stylesheet href=a.css>\
             <body><div class=vcard><span class='uid nickname'>0123456789abcdef</span>\
             <span class=fn>Zo&euml; &amp; &#8212; &#x263A;</span><br>\
             <pre class=key>\n{pem}</pre>\
             <span class=searchable> true </span>\
             <dl class=entity_photo><dd><img class=\"photo avatar\" src=/l.png></dl>\
             <dl class=entity_photo_medium><dd><IMG CLASS=photo SRC='/m.png'></dl>\
             <dl class=entity_photo_small><dd><img class=photo src=\"/s.png\"/></dl>"
        );
        let person = parse_hcard(&html, "http://pod.test:3000").unwrap();
        assert_eq!(person.guid, "0123456789abcdef");
        assert_eq!(person.nickname.as_deref(), Some("0123456789abcdef"));
        assert_eq!(person.full_name, "Zo&euml; & \u{2014} \u{263A}");
        assert_eq!(person.first_name, "");
        assert!(person.searchable);
        assert_eq!(person.photo_large_url, "http://pod.test:3000/l.png");
        assert_eq!(person.photo_medium_url, "http://pod.test:3000/m.png");
        assert_eq!(person.photo_small_url, "http://pod.test:3000/s.png");
    }

    #[test]
    fn discovery_parsers_never_panic_on_damaged_input() {
        assert_no_panic_on_damaged_input(&reference_hcard(), |html| parse_hcard(html, "https://example.org/"));
        assert_no_panic_on_damaged_input(&reference("diaspora-examples/webfinger.example.json"), |json| {
            parse_jrd(json.as_bytes())
        });
    }
}
