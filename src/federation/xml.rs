//! The small XML layer under the federation formats: a strict reader that turns a
//! document into a tree (refusing any DOCTYPE, so no entity expansion, and nesting
//! deeper than the formats need) and a writer for diaspora*'s two-space indented
//! element style with XML escaping.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::{Error, Result};

/// Deepest element nesting accepted; diaspora*'s entities nest two or three levels.
const MAX_DEPTH: usize = 32;

/// One element of a parsed document. Names are local names (any `prefix:` removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XmlElement {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<XmlNode>,
}

/// A child of an element: another element or a piece of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum XmlNode {
    Element(XmlElement),
    Text(String),
}

impl XmlElement {
    fn new(name: String, attributes: Vec<(String, String)>) -> Self {
        XmlElement {
            name,
            attributes,
            children: Vec::new(),
        }
    }

    /// The child elements, in document order.
    pub fn elements(&self) -> impl Iterator<Item = &XmlElement> {
        self.children.iter().filter_map(|child| match child {
            XmlNode::Element(element) => Some(element),
            XmlNode::Text(_) => None,
        })
    }

    /// The first child element of that name (later duplicates are ignored, as
    /// diaspora*'s parser does).
    pub fn child(&self, name: &str) -> Option<&XmlElement> {
        self.elements().find(|element| element.name == name)
    }

    /// The text of the first child element of that name, `None` when the element is
    /// absent or empty.
    pub fn child_text(&self, name: &str) -> Option<String> {
        self.child(name).map(XmlElement::text).filter(|text| !text.is_empty())
    }

    /// All text inside this element, in document order.
    pub fn text(&self) -> String {
        let mut text = String::new();
        let mut pending: Vec<&XmlNode> = self.children.iter().rev().collect();
        while let Some(node) = pending.pop() {
            match node {
                XmlNode::Text(piece) => text.push_str(piece),
                XmlNode::Element(element) => pending.extend(element.children.iter().rev()),
            }
        }
        text
    }

    /// The value of the attribute with that local name.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Parses a whole XML document into its root element.
///
/// Refuses, with [`Error::BadRequest`]: a DOCTYPE, malformed XML, unknown entities,
/// text or a second element outside the root, and nesting deeper than [`MAX_DEPTH`].
pub(crate) fn parse_document(input: &str) -> Result<XmlElement> {
    let mut reader = Reader::from_str(input);
    reader.config_mut().expand_empty_elements = true;

    let mut open: Vec<XmlElement> = Vec::new();
    let mut root: Option<XmlElement> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| Error::bad(format!("malformed XML: {e}")))?;
        match event {
            Event::DocType(_) => {
                return Err(Error::bad("XML with a DOCTYPE is refused"));
            }
            Event::Start(start) => {
                if root.is_some() {
                    return Err(Error::bad("malformed XML: more than one root element"));
                }
                if open.len() >= MAX_DEPTH {
                    return Err(Error::bad("XML nests too deeply"));
                }
                let name = utf8(start.local_name().as_ref())?.to_string();
                let mut attributes = Vec::new();
                for attribute in start.attributes() {
                    let attribute = attribute.map_err(|e| Error::bad(format!("malformed XML: {e}")))?;
                    let key = utf8(attribute.key.local_name().as_ref())?.to_string();
                    let value = attribute
                        .unescape_value()
                        .map_err(|e| Error::bad(format!("malformed XML: {e}")))?;
                    check_xml_chars(&value)?;
                    attributes.push((key, value.into_owned()));
                }
                open.push(XmlElement::new(name, attributes));
            }
            Event::End(_) => {
                // quick-xml has already checked that the end tag matches.
                let finished = open
                    .pop()
                    .ok_or_else(|| Error::bad("malformed XML: unexpected end tag"))?;
                match open.last_mut() {
                    Some(parent) => parent.children.push(XmlNode::Element(finished)),
                    None => root = Some(finished),
                }
            }
            Event::Text(text) => {
                let text = text.unescape().map_err(|e| Error::bad(format!("malformed XML: {e}")))?;
                push_text(&mut open, &text)?;
            }
            Event::CData(cdata) => {
                let bytes = cdata.into_inner();
                push_text(&mut open, utf8(&bytes)?)?;
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Empty(_) => {
                // Never produced: empty elements are expanded into Start + End.
                return Err(Error::bad("malformed XML"));
            }
            Event::Eof => break,
        }
    }
    if !open.is_empty() {
        return Err(Error::bad("malformed XML: unexpected end of document"));
    }
    root.ok_or_else(|| Error::bad("malformed XML: no root element"))
}

fn push_text(open: &mut [XmlElement], text: &str) -> Result<()> {
    check_xml_chars(text)?;
    match open.last_mut() {
        Some(element) => {
            if let Some(XmlNode::Text(previous)) = element.children.last_mut() {
                previous.push_str(text);
            } else {
                element.children.push(XmlNode::Text(text.to_string()));
            }
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(Error::bad("malformed XML: text outside the root element")),
    }
}

/// Refuses text with a character XML cannot carry, raw or as a reference (`&#1;`), as
/// libxml2 does: [`escape_text`] could not write it back.
fn check_xml_chars(text: &str) -> Result<()> {
    match text.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(Error::bad(format!(
            "malformed XML: U+{:04X} is not a character XML can carry",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|_| Error::bad("malformed XML: not UTF-8"))
}

/// Writes elements in diaspora*'s style: one element per line, two spaces of
/// indentation per level, no XML declaration.
pub(crate) struct XmlWriter {
    output: String,
    depth: usize,
}

impl XmlWriter {
    pub fn new() -> Self {
        XmlWriter {
            output: String::new(),
            depth: 0,
        }
    }

    /// Opens an element that will hold other elements.
    pub fn open(&mut self, name: &str) {
        self.indent();
        self.output.push('<');
        self.output.push_str(name);
        self.output.push_str(">\n");
        self.depth += 1;
    }

    /// Closes the element opened last.
    pub fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.output.push_str("</");
        self.output.push_str(name);
        self.output.push_str(">\n");
    }

    /// Writes `<name>text</name>`, the text escaped.
    pub fn text_element(&mut self, name: &str, text: &str) {
        self.indent();
        self.output.push('<');
        self.output.push_str(name);
        self.output.push('>');
        self.output.push_str(&escape_text(text));
        self.output.push_str("</");
        self.output.push_str(name);
        self.output.push_str(">\n");
    }

    /// Writes `<name>text</name>` when there is a value, nothing otherwise.
    pub fn optional_text_element(&mut self, name: &str, text: Option<&str>) {
        if let Some(text) = text.filter(|text| !text.is_empty()) {
            self.text_element(name, text);
        }
    }

    /// Writes `<name>true</name>` or `<name>false</name>` when there is a value.
    pub fn optional_bool_element(&mut self, name: &str, value: Option<bool>) {
        if let Some(value) = value {
            self.text_element(name, if value { "true" } else { "false" });
        }
    }

    /// The document written so far, without its final line break.
    pub fn finish(mut self) -> String {
        while self.output.ends_with('\n') {
            self.output.pop();
        }
        self.output
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.output.push_str("  ");
        }
    }
}

/// Escapes text for element content. Characters XML cannot carry at all become
/// U+FFFD (as diaspora* does); a carriage return is written as a reference so that
/// readers' line-end normalisation keeps it.
pub(crate) fn escape_text(text: &str) -> String {
    escape(text, false)
}

/// Escapes text for a double-quoted attribute value.
pub(crate) fn escape_attribute(text: &str) -> String {
    escape(text, true)
}

fn escape(text: &str, in_attribute: bool) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '\r' => escaped.push_str("&#13;"),
            '"' if in_attribute => escaped.push_str("&quot;"),
            '\'' if in_attribute => escaped.push_str("&#39;"),
            '\n' if in_attribute => escaped.push_str("&#10;"),
            '\t' if in_attribute => escaped.push_str("&#9;"),
            c if is_xml_char(c) => escaped.push(c),
            _ => escaped.push('\u{FFFD}'),
        }
    }
    escaped
}

/// Whether XML 1.0 can carry this character at all.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_tree_with_text_attributes_and_prefixes() {
        let root = parse_document(
            "<?xml version=\"1.0\"?>\n<me:env xmlns:me=\"urn:x\"><!-- c --><me:data type=\"a&amp;b\">x&lt;y<![CDATA[<z>]]></me:data><empty/></me:env>\n",
        )
        .unwrap();
        assert_eq!(root.name, "env");
        let data = root.child("data").unwrap();
        assert_eq!(data.attribute("type"), Some("a&b"));
        assert_eq!(data.text(), "x<y<z>");
        assert_eq!(root.child_text("empty"), None);
        assert!(root.child("empty").is_some());
    }

    #[test]
    fn refuses_doctype_and_entity_expansion() {
        let billion_laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]><lolz>&lol2;</lolz>";
        let err = parse_document(billion_laughs).unwrap_err();
        assert!(err.to_string().contains("DOCTYPE"), "{err}");
        assert!(parse_document("<a>&custom;</a>").is_err());
    }

    #[test]
    fn refuses_malformed_documents() {
        for input in [
            "",
            "   ",
            "text",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "<a/>trailing",
            "<a x=1/>",
            "<a x=\"1\" x=\"2\"/>",
            "</a>",
        ] {
            assert!(parse_document(input).is_err(), "accepted {input:?}");
        }
        for input in [
            "<a>x\u{0}y</a>",
            "<a>\u{1}</a>",
            "<a>&#1;</a>",
            "<a>&#xFFFE;</a>",
            "<a b=\"\u{1}\"/>",
            "<a><![CDATA[\u{1}]]></a>",
        ] {
            let err = parse_document(input).unwrap_err();
            assert!(
                err.to_string().contains("not a character XML can carry"),
                "{input:?}: {err}"
            );
        }
        assert!(parse_document("<a>\t\n\r&#9;&#xD7FF;\u{10FFFF}</a>").is_ok());
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(parse_document(&deep).is_err());
    }

    #[test]
    fn escaping_round_trips_through_the_reader() {
        let nasty = "a & b < c > d \" ' \r\n\t \u{1} \u{FFFE} é 😀";
        let mut writer = XmlWriter::new();
        writer.open("root");
        writer.text_element("value", nasty);
        writer.close("root");
        let xml = writer.finish();
        let root = parse_document(&xml).unwrap();
        assert_eq!(
            root.child_text("value").unwrap(),
            "a & b < c > d \" ' \r\n\t \u{FFFD} \u{FFFD} é 😀"
        );
        assert_eq!(escape_attribute("\"<&>'\n"), "&quot;&lt;&amp;&gt;&#39;&#10;");
    }
}
