//! A strict reader for the block-style YAML subset that kubectl, kubeadm and the installers
//! write kubeconfigs in: indented mappings, `- ` sequences and one-line scalars.
//!
//! A fleet inspect reads thousands of kubeconfigs whose base64 `*-data` lines are most of their
//! bytes; a full YAML parser walks those byte by byte through its scanner and event queue, and
//! that was a quarter of inspect's CPU. This reader splits lines and slices scalars instead.
//!
//! It is a fast path, not a second YAML implementation: it accepts only documents whose meaning
//! is unambiguous without the rest of YAML, and returns `None` for anything else — flow
//! collections other than `{}`/`[]`, anchors, aliases, tags, block scalars, multi-line plain
//! scalars, escapes in quoted scalars, comments after values, tabs in indentation, CR line ends,
//! document markers, duplicate keys, null values, deep nesting. The caller then uses the full
//! parser, so the result is never different, only faster (a differential test holds that).

/// A node of the subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node<'a> {
    /// A one-line scalar's text (quotes removed).
    Scalar(&'a str),
    Map(Vec<(&'a str, Node<'a>)>),
    Seq(Vec<Node<'a>>),
}

impl<'a> Node<'a> {
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Deeper than this, the subset gives up (kubeconfigs nest four levels).
const MAX_DEPTH: usize = 16;

/// Keys in one mapping beyond which the subset gives up: a kubeconfig's mappings hold a
/// handful, and the duplicate-key check compares each key with those before it.
const MAX_KEYS: usize = 64;

#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

/// Parses `text` if it lies entirely in the subset; `None` otherwise.
pub fn parse(text: &str) -> Option<Node<'_>> {
    if text.starts_with('\u{feff}') || text.contains('\r') {
        return None;
    }
    let mut lines = Vec::new();
    for raw in text.split('\n') {
        let body = raw.trim_start_matches(' ');
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if body.starts_with('\t')
            || body.starts_with("---")
            || body.starts_with("...")
            || body.starts_with('%')
        {
            return None;
        }
        lines.push(Line {
            indent: raw.len() - body.len(),
            text: body.trim_end_matches([' ', '\t']),
        });
    }
    let first = lines.first()?;
    if first.indent != 0 {
        return None;
    }
    let mut reader = Reader { lines, pos: 0 };
    let node = reader.block(0, 0)?;
    (reader.pos == reader.lines.len() && matches!(node, Node::Map(_))).then_some(node)
}

struct Reader<'a> {
    lines: Vec<Line<'a>>,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.pos).copied()
    }

    /// The block starting at the current line, which is at `indent`.
    fn block(&mut self, indent: usize, depth: usize) -> Option<Node<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let line = self.peek()?;
        if line.indent != indent {
            return None;
        }
        if is_item(line.text) {
            self.sequence(indent, depth)
        } else {
            self.mapping(indent, depth)
        }
    }

    fn sequence(&mut self, indent: usize, depth: usize) -> Option<Node<'a>> {
        let mut items = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent < indent || (line.indent == indent && !is_item(line.text)) {
                break;
            }
            if line.indent > indent {
                return None;
            }
            // `- rest`: the item's content starts where `rest` does, on this very line.
            let rest = line.text[1..].trim_start_matches(' ');
            let content = indent + (line.text.len() - rest.len());
            if rest.starts_with('-') || rest.starts_with('#') {
                return None;
            }
            if key_value(rest).is_some() {
                self.lines[self.pos] = Line {
                    indent: content,
                    text: rest,
                };
                items.push(self.mapping(content, depth + 1)?);
            } else {
                items.push(scalar(rest)?);
                self.pos += 1;
                if self.peek().is_some_and(|l| l.indent > indent) {
                    return None; // a multi-line plain scalar
                }
            }
        }
        Some(Node::Seq(items))
    }

    fn mapping(&mut self, indent: usize, depth: usize) -> Option<Node<'a>> {
        let mut entries: Vec<(&'a str, Node<'a>)> = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent || is_item(line.text) {
                return None;
            }
            let (key, value) = key_value(line.text)?;
            if entries.len() >= MAX_KEYS || entries.iter().any(|(k, _)| *k == key) {
                return None;
            }
            self.pos += 1;
            let node = if value.is_empty() {
                match self.peek() {
                    Some(next) if next.indent > indent => self.block(next.indent, depth + 1)?,
                    // `key:` then `- item` at the key's own indentation.
                    Some(next) if next.indent == indent && is_item(next.text) => {
                        self.sequence(indent, depth + 1)?
                    }
                    _ => return None, // a null value
                }
            } else {
                if self.peek().is_some_and(|l| l.indent > indent) {
                    return None; // a multi-line plain scalar, or a nested block after a value
                }
                scalar(value)?
            };
            entries.push((key, node));
        }
        Some(Node::Map(entries))
    }
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// `key: value` or `key:`, with a plain key of the characters kubeconfigs use.
fn key_value(text: &str) -> Option<(&str, &str)> {
    let colon = text.find(':')?;
    let key = &text[..colon];
    let after = &text[colon + 1..];
    let plain_key = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !key.starts_with(['-', '.']);
    if !plain_key {
        return None;
    }
    if after.is_empty() {
        return Some((key, ""));
    }
    after
        .strip_prefix(' ')
        .map(|v| (key, v.trim_start_matches(' ')))
}

/// A one-line scalar, or `{}` / `[]`; `None` for anything whose reading needs the rest of YAML.
fn scalar(value: &str) -> Option<Node<'_>> {
    match value {
        "{}" => return Some(Node::Map(Vec::new())),
        "[]" => return Some(Node::Seq(Vec::new())),
        _ => {}
    }
    if let Some(inner) = value.strip_prefix('"') {
        let inner = inner.strip_suffix('"')?;
        return (!inner.contains(['"', '\\'])).then_some(Node::Scalar(inner));
    }
    if let Some(inner) = value.strip_prefix('\'') {
        let inner = inner.strip_suffix('\'')?;
        return (!inner.contains('\'')).then_some(Node::Scalar(inner));
    }
    let first = value.chars().next()?;
    let indicator = "-?:,[]{}#&*!|>'\"%@`".contains(first);
    let resolves_to_non_string = matches!(
        value,
        "~" | "null" | "Null" | "NULL" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
    ) || value
        .starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '.');
    if indicator
        || resolves_to_non_string
        || value.contains(": ")
        || value.contains(" #")
        || value.ends_with(':')
        || value.contains('\t')
    {
        return None;
    }
    Some(Node::Scalar(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_kubectl_writes() {
        let text = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: TFMw\n    server: https://10.0.0.1:6443\n  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: admin\n  name: admin@kubernetes\ncurrent-context: admin@kubernetes\nkind: Config\npreferences: {}\nusers:\n- name: admin\n  user:\n    client-certificate-data: QUJD\n";
        let doc = parse(text).expect("in the subset");
        let clusters = match doc.get("clusters") {
            Some(Node::Seq(items)) => items,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            clusters[0].get("cluster").and_then(|c| c.get("server")),
            Some(&Node::Scalar("https://10.0.0.1:6443"))
        );
        assert_eq!(clusters[0].get("name"), Some(&Node::Scalar("kubernetes")));
        assert_eq!(doc.get("preferences"), Some(&Node::Map(Vec::new())));
        let users = doc.get("users").unwrap();
        assert!(matches!(users, Node::Seq(u) if u[0].get("name") == Some(&Node::Scalar("admin"))));
    }

    #[test]
    fn indented_sequences_and_quotes_are_in_the_subset() {
        let text = "users:\n  -   name: \"a b\"\n      user:\n        token: 'x'\n";
        let doc = parse(text).unwrap();
        let Some(Node::Seq(users)) = doc.get("users") else {
            panic!()
        };
        assert_eq!(users[0].get("name"), Some(&Node::Scalar("a b")));
        assert_eq!(
            users[0].get("user").and_then(|u| u.get("token")),
            Some(&Node::Scalar("x"))
        );
    }

    #[test]
    fn anything_outside_the_subset_is_left_to_the_full_parser() {
        for text in [
            "users:\n- user: {client-certificate-data: QUJD}\n  name: alice\n",
            "a: &x b\nc: *x\n",
            "a: !!str b\n",
            "a: |\n  b\n",
            "a: b\n  c\n",
            "a: b # comment\n",
            "a: \"b\\n\"\n",
            "a: b\na: c\n",
            "a:\n",
            "a: ~\n",
            "a: 10\n",
            "a: true\n",
            "\ta: b\n",
            "a:\n\t- b\n",
            "---\na: b\n",
            "a: b\r\n",
            "- a\n",
            "a:\n- - b\n",
            "a: [b]\n",
            "? a\n: b\n",
            "a:\n  - b\n   c: d\n",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_mapping_of_many_keys_is_left_to_the_full_parser() {
        // The duplicate-key check is quadratic in a mapping's size: a fuzzed 256 KiB mapping
        // of one-line keys must not be read here.
        let text: String = (0..20_000).map(|i| format!("k{i}: v\n")).collect();
        assert_eq!(parse(&text), None);
        let small: String = (0..MAX_KEYS).map(|i| format!("k{i}: v\n")).collect();
        assert!(parse(&small).is_some());
    }

    #[test]
    fn deep_nesting_gives_up_without_recursing_far() {
        let mut text = String::new();
        for depth in 0..1_000 {
            text.push_str(&" ".repeat(depth * 2));
            text.push_str("a:\n");
        }
        assert_eq!(parse(&text), None);
    }
}
