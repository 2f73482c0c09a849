//! A small, tolerant HTML reader for the hCards of other pods: it builds an element
//! tree the way browsers roughly do (void elements such as `<meta>` or `<img>` need no
//! end tag, stray end tags are ignored, unclosed elements end with the document,
//! character references are decoded) and answers the few class selectors the hCard
//! parser needs. It never fails: whatever the input, some tree comes out.

/// Elements that never have content or an end tag.
const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr",
];

/// Elements whose content is raw text up to their end tag.
const RAW_TEXT_ELEMENTS: &[&str] = &["script", "style"];

/// Deepest nesting of open elements kept (see [`TreeBuilder::add`]).
const MAX_DEPTH: usize = 256;

/// A parsed document: elements in document order, the first being a synthetic root.
pub(crate) struct HtmlDocument {
    nodes: Vec<HtmlElement>,
}

struct HtmlElement {
    name: String,
    attributes: Vec<(String, String)>,
    parent: Option<usize>,
    children: Vec<HtmlChild>,
}

enum HtmlChild {
    Element(usize),
    Text(String),
}

/// A handle on one element of an [`HtmlDocument`].
#[derive(Clone, Copy)]
pub(crate) struct ElementRef<'a> {
    document: &'a HtmlDocument,
    index: usize,
}

impl HtmlDocument {
    /// Reads any text as HTML.
    pub fn parse(input: &str) -> HtmlDocument {
        let mut builder = TreeBuilder::new();
        let mut tokenizer = Tokenizer { input, position: 0 };
        while let Some(token) = tokenizer.next_token() {
            builder.add(token, &mut tokenizer);
        }
        HtmlDocument { nodes: builder.nodes }
    }

    /// The first element, in document order, carrying the class `class_name`.
    pub fn first_with_class(&self, class_name: &str) -> Option<ElementRef<'_>> {
        self.elements().find(|element| element.has_class(class_name))
    }

    /// The first element, in document order, carrying the class `class_name` and the
    /// attribute `attribute`, inside an element carrying the class `ancestor_class`
    /// (the CSS selector `.ancestor_class .class_name[attribute]`).
    pub fn first_with_class_inside(
        &self,
        ancestor_class: &str,
        class_name: &str,
        attribute: &str,
    ) -> Option<ElementRef<'_>> {
        self.elements().find(|element| {
            element.has_class(class_name)
                && element.attribute(attribute).is_some()
                && element.ancestors().any(|a| a.has_class(ancestor_class))
        })
    }

    fn elements(&self) -> impl Iterator<Item = ElementRef<'_>> {
        (1..self.nodes.len()).map(move |index| ElementRef { document: self, index })
    }
}

impl<'a> ElementRef<'a> {
    fn node(&self) -> &'a HtmlElement {
        &self.document.nodes[self.index]
    }

    /// The value of an attribute (names are compared case-insensitively).
    pub fn attribute(&self, name: &str) -> Option<&'a str> {
        self.node()
            .attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether the `class` attribute holds this class among its tokens.
    pub fn has_class(&self, class_name: &str) -> bool {
        self.attribute("class")
            .is_some_and(|classes| classes.split_ascii_whitespace().any(|token| token == class_name))
    }

    /// All text inside the element, in document order.
    pub fn text(&self) -> String {
        let mut text = String::new();
        let mut pending: Vec<&HtmlChild> = self.node().children.iter().rev().collect();
        while let Some(child) = pending.pop() {
            match child {
                HtmlChild::Text(piece) => text.push_str(piece),
                HtmlChild::Element(index) => pending.extend(self.document.nodes[*index].children.iter().rev()),
            }
        }
        text
    }

    fn ancestors(&self) -> impl Iterator<Item = ElementRef<'a>> {
        let document = self.document;
        std::iter::successors(self.node().parent, move |&index| document.nodes[index].parent)
            .filter(|&index| index != 0)
            .map(move |index| ElementRef { document, index })
    }
}

enum Token {
    StartTag {
        name: String,
        attributes: Vec<(String, String)>,
        self_closing: bool,
    },
    EndTag(String),
    Text(String),
}

struct TreeBuilder {
    nodes: Vec<HtmlElement>,
    open: Vec<usize>,
}

impl TreeBuilder {
    fn new() -> Self {
        TreeBuilder {
            nodes: vec![HtmlElement {
                name: String::new(),
                attributes: Vec::new(),
                parent: None,
                children: Vec::new(),
            }],
            open: vec![0],
        }
    }

    fn current(&self) -> usize {
        self.open.last().copied().unwrap_or(0)
    }

    fn add(&mut self, token: Token, tokenizer: &mut Tokenizer<'_>) {
        match token {
            Token::Text(text) => self.add_text(text),
            Token::StartTag {
                name,
                attributes,
                self_closing,
            } => {
                let parent = self.current();
                let index = self.nodes.len();
                self.nodes.push(HtmlElement {
                    name: name.clone(),
                    attributes,
                    parent: Some(parent),
                    children: Vec::new(),
                });
                self.nodes[parent].children.push(HtmlChild::Element(index));
                if RAW_TEXT_ELEMENTS.contains(&name.as_str()) {
                    let raw = tokenizer.raw_text_until_end_tag(&name);
                    self.nodes[index].children.push(HtmlChild::Text(raw));
                } else if !self_closing && !VOID_ELEMENTS.contains(&name.as_str()) {
                    if self.open.len() >= MAX_DEPTH {
                        // Too deep: the new element takes its parent's place on the
                        // stack, so nesting stops growing but content still lands in it.
                        self.open.pop();
                    }
                    self.open.push(index);
                }
            }
            Token::EndTag(name) => {
                let matching = self
                    .open
                    .iter()
                    .rposition(|&index| index != 0 && self.nodes[index].name == name);
                if let Some(position) = matching {
                    self.open.truncate(position);
                }
            }
        }
    }

    fn add_text(&mut self, text: String) {
        let current = self.current();
        match self.nodes[current].children.last_mut() {
            Some(HtmlChild::Text(previous)) => previous.push_str(&text),
            _ => self.nodes[current].children.push(HtmlChild::Text(text)),
        }
    }
}

struct Tokenizer<'a> {
    input: &'a str,
    position: usize,
}

impl<'a> Tokenizer<'a> {
    fn rest(&self) -> &'a str {
        &self.input[self.position..]
    }

    fn next_token(&mut self) -> Option<Token> {
        loop {
            let rest = self.rest();
            if rest.is_empty() {
                return None;
            }
            if let Some(after) = rest.strip_prefix("<!--") {
                self.position += 4 + after.find("-->").map_or(after.len(), |end| end + 3);
                continue;
            }
            if rest.starts_with("<!") || rest.starts_with("<?") {
                // DOCTYPE, CDATA-like or processing instruction: nothing the hCard needs.
                self.position += rest.find('>').map_or(rest.len(), |end| end + 1);
                continue;
            }
            if let Some(after) = rest.strip_prefix("</") {
                if after.starts_with(|c: char| c.is_ascii_alphabetic()) {
                    let name = tag_name(after);
                    self.position += 2 + after.find('>').map_or(after.len(), |end| end + 1);
                    return Some(Token::EndTag(name));
                }
            }
            if let Some(after) = rest.strip_prefix('<') {
                if after.starts_with(|c: char| c.is_ascii_alphabetic()) {
                    self.position += 1;
                    return Some(self.start_tag());
                }
            }
            return Some(self.text());
        }
    }

    fn text(&mut self) -> Token {
        let rest = self.rest();
        // A '<' that starts no tag is text; look for the next one after it.
        let first_len = rest.chars().next().map_or(0, char::len_utf8);
        let end = rest[first_len..].find('<').map_or(rest.len(), |i| i + first_len);
        self.position += end;
        Token::Text(decode_character_references(&rest[..end]))
    }

    /// Reads a start tag; the position is just after its `<`.
    fn start_tag(&mut self) -> Token {
        let name = tag_name(self.rest());
        self.position += name.len();
        let mut attributes: Vec<(String, String)> = Vec::new();
        let mut self_closing = false;
        loop {
            self.skip_whitespace();
            let rest = self.rest();
            let Some(first) = rest.chars().next() else {
                break;
            };
            match first {
                '>' => {
                    self.position += 1;
                    break;
                }
                '/' => {
                    self.position += 1;
                    if self.rest().starts_with('>') {
                        self.position += 1;
                        self_closing = true;
                        break;
                    }
                }
                _ => {
                    let (key, value) = self.attribute();
                    if !key.is_empty() && !attributes.iter().any(|(k, _)| *k == key) {
                        attributes.push((key, value));
                    }
                }
            }
        }
        Token::StartTag {
            name,
            attributes,
            self_closing,
        }
    }

    fn attribute(&mut self) -> (String, String) {
        let rest = self.rest();
        let name_end = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '>' || c == '/')
            .unwrap_or(rest.len());
        if name_end == 0 {
            // A '=' with no name before it: skip it, as browsers do.
            self.position += 1;
            return (String::new(), String::new());
        }
        let key = rest[..name_end].to_ascii_lowercase();
        self.position += name_end;
        self.skip_whitespace();
        if !self.rest().starts_with('=') {
            return (key, String::new());
        }
        self.position += 1;
        self.skip_whitespace();
        let rest = self.rest();
        let raw_value = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let inner = &rest[1..];
                let end = inner.find(quote).unwrap_or(inner.len());
                self.position += 1 + end + usize::from(end < inner.len());
                &inner[..end]
            }
            _ => {
                let end = rest
                    .find(|c: char| c.is_ascii_whitespace() || c == '>')
                    .unwrap_or(rest.len());
                self.position += end;
                &rest[..end]
            }
        };
        (key, decode_character_references(raw_value))
    }

    fn skip_whitespace(&mut self) {
        let rest = self.rest();
        self.position += rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_whitespace()).len();
    }

    /// The raw content of a `<script>` or `<style>`, up to its end tag (consumed).
    fn raw_text_until_end_tag(&mut self, name: &str) -> String {
        let rest = self.rest();
        let closing = format!("</{name}");
        let end = rest.to_ascii_lowercase().find(&closing).unwrap_or(rest.len());
        let raw = rest[..end].to_string();
        let after = &rest[end..];
        self.position += end + after.find('>').map_or(after.len(), |i| i + 1);
        raw
    }
}

/// The tag name at the start of `text`, lower-cased.
fn tag_name(text: &str) -> String {
    let end = text
        .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
        .unwrap_or(text.len());
    text[..end].to_ascii_lowercase()
}

/// Decodes numeric references and the named references HTML pages commonly carry;
/// anything else stays as written, as browsers leave unknown references.
pub(crate) fn decode_character_references(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut decoded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        decoded.push_str(&rest[..start]);
        rest = &rest[start..];
        let reference_end = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .map_or(rest.len(), |i| i + 1);
        let name = &rest[1..reference_end];
        let terminated = rest[reference_end..].starts_with(';');
        match resolve_reference(name) {
            Some(c) => {
                decoded.push(c);
                rest = &rest[reference_end + usize::from(terminated)..];
            }
            None => {
                decoded.push('&');
                rest = &rest[1..];
            }
        }
    }
    decoded.push_str(rest);
    decoded
}

fn resolve_reference(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse::<u32>().ok()?,
        };
        return Some(match char::from_u32(code) {
            Some('\0') | None => '\u{FFFD}',
            Some(c) => c,
        });
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{A0}',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerates_void_elements_stray_end_tags_and_unclosed_elements() {
        let document = HtmlDocument::parse(
            "<!doctype html><html><head><meta charset=utf-8><link rel=x></head>\
             <body><div class='a b'><br><img class=photo src=/x.png alt>\
             <span class=\"fn\">A &amp; B &lt;3 &#x41;&#66; &unknown; &nbsp;</span></p></div>\
             <dl class=entity_photo><dd><img class='photo' src='y.png'/></dd></dl><div>unclosed",
        );
        let fn_text = document.first_with_class("fn").unwrap().text();
        assert_eq!(fn_text, "A & B <3 AB &unknown; \u{A0}");
        let photo = document.first_with_class("photo").unwrap();
        assert_eq!(photo.attribute("src"), Some("/x.png"));
        assert_eq!(photo.attribute("alt"), Some(""));
        let nested = document
            .first_with_class_inside("entity_photo", "photo", "src")
            .unwrap();
        assert_eq!(nested.attribute("src"), Some("y.png"));
        assert!(document.first_with_class("b").is_some());
        assert!(document.first_with_class("c").is_none());
    }

    #[test]
    fn skips_comments_scripts_and_styles() {
        let document = HtmlDocument::parse(
            "<!-- <span class=fn>no</span> --><script>var s = '<span class=fn>no</span>';</script>\
             <style>.fn{}</style><span class=fn>yes</span>",
        );
        assert_eq!(document.first_with_class("fn").unwrap().text(), "yes");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for input in [
            "",
            "<",
            "<<",
            "</",
            "</>",
            "<a",
            "<a b",
            "<a b=",
            "<a b='",
            "<a b=\"x",
            "&",
            "&#",
            "&#x",
            "&#xZZ;",
            "&#99999999999;",
            "<a =x>",
            "<a ==>",
            "é<é>",
            "<a/",
            "<script>",
            "<!--",
            "<!",
            "<?",
            "<a\u{0}b>",
        ] {
            let document = HtmlDocument::parse(input);
            let _ = document.first_with_class("fn").map(|e| e.text());
        }
        let deep = "<div>".repeat(10_000);
        let document = HtmlDocument::parse(&(deep + "<span class=fn>x</span>"));
        assert_eq!(document.first_with_class("fn").unwrap().text(), "x");
    }
}
