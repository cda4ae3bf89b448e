//! A YAML document as a tree of nodes that know where they are written: byte offsets into the
//! text for every scalar, from `saphyr-parser`'s event spans. Edits that must land on exactly
//! the value the document means (not on a line that looks like it) find it here; the caller then
//! re-reads the edited text with serde and checks it means what was intended.
//!
//! Only the first document of a stream is read. Aliases are kept as such (never expanded), so a
//! hostile `&a [*a, *a …]` costs nothing here.

use super::error::Error;
use saphyr_parser::{Event, Parser, ScalarStyle};

/// How a scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Single,
    Double,
    /// `|` or `>`: the span covers the content lines only, not the indicator.
    Block,
}

#[derive(Debug, Clone)]
pub enum Node {
    Scalar {
        value: String,
        style: Style,
        /// Byte offsets into the text, quotes included.
        start: usize,
        end: usize,
        /// Anchored or tagged: an edit would not be a plain value change.
        decorated: bool,
    },
    Sequence(Vec<Node>),
    Mapping(Vec<(Node, Node)>),
    Alias,
}

impl Node {
    /// The value of a mapping's key written as a plain or quoted scalar; `None` for a key
    /// absent or for a node that is not a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Mapping(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Node::Scalar { value, .. } if value == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }
}

/// The first document of `text`, or the parser's error in one line.
pub fn parse(text: &str) -> Result<Node, Error> {
    crate::pki::yaml::bounded(text)?;
    // saphyr's markers count characters; edits need bytes.
    let bytes_at: Vec<usize> = text
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(text.len()))
        .collect();
    let byte = |ci: usize| bytes_at.get(ci).copied().unwrap_or(text.len());
    enum Open {
        Seq(Vec<Node>),
        Map(Vec<(Node, Node)>, Option<Node>),
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    let mut root = None;
    while let Some(ev) = parser.next_event() {
        let (ev, span) = ev.map_err(|e| Error::Yaml(format!("YAML error: {e}")))?;
        let node = match ev {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => continue,
            Event::DocumentEnd | Event::StreamEnd => break,
            Event::SequenceStart(..) => {
                stack.push(Open::Seq(Vec::new()));
                continue;
            }
            Event::MappingStart(..) => {
                stack.push(Open::Map(Vec::new(), None));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Open::Seq(items)) => Node::Sequence(items),
                Some(Open::Map(entries, _)) => Node::Mapping(entries),
                None => return Err(Error::Yaml("YAML error: unbalanced collection".into())),
            },
            Event::Alias(_) => Node::Alias,
            Event::Scalar(value, style, anchor, tag) => Node::Scalar {
                value: value.into_owned(),
                style: match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted => Style::Single,
                    ScalarStyle::DoubleQuoted => Style::Double,
                    ScalarStyle::Literal | ScalarStyle::Folded => Style::Block,
                },
                start: byte(span.start.index()),
                end: byte(span.end.index()),
                decorated: anchor != 0 || tag.is_some(),
            },
        };
        match stack.last_mut() {
            None => root = Some(node),
            Some(Open::Seq(items)) => items.push(node),
            Some(Open::Map(entries, key)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
        if root.is_some() && stack.is_empty() {
            break;
        }
    }
    root.ok_or_else(|| Error::Yaml("YAML error: no document".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_know_their_bytes_in_flow_and_block_style() {
        let text = "é: x\nusers:\n- user: {a: AAA=, b: 'BB'}\n  name: alice\n- name: \"bob\"\n";
        let doc = parse(text).unwrap();
        let Some(Node::Sequence(users)) = doc.get("users") else {
            panic!("{doc:?}")
        };
        let at = |n: &Node| match n {
            Node::Scalar { start, end, .. } => &text[*start..*end],
            _ => panic!("{n:?}"),
        };
        assert_eq!(at(users[0].get("user").unwrap().get("a").unwrap()), "AAA=");
        assert_eq!(at(users[0].get("user").unwrap().get("b").unwrap()), "'BB'");
        assert_eq!(users[0].get("name").unwrap().as_str(), Some("alice"));
        assert_eq!(at(users[1].get("name").unwrap()), "\"bob\"");
    }

    #[test]
    fn a_malformed_document_is_an_error() {
        assert!(parse("a: [\n").is_err());
    }
}
