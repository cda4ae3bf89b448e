//! YAML read within bounds. Every YAML file the tool reads (kubeconfigs, manifests, kubelet and
//! kube-proxy configs, inventories) comes from a node or an operator, and a hostile one must
//! cost no more than its size: 200 KB of `[` nests 100,000 levels deep and took the YAML parser
//! tens of seconds, and a few anchors that alias each other expand to billions of nodes.
//!
//! So before serde sees a text, [`bounded`] checks it in one linear pass: nesting (block
//! indentation levels, sequence dashes and flow brackets) at most [`MAX_DEPTH`] deep, and, when
//! the text has anchors, the document with every alias expanded at most [`MAX_EXPANDED`] nodes
//! (counted on `saphyr-parser`'s events, aliases never expanded). A text beyond either bound is
//! refused with one line, before any parse.

use super::error::Error;
use serde::de::DeserializeOwned;

/// Nesting levels a YAML text may have: kubeconfigs need 6, pod manifests about 12.
pub const MAX_DEPTH: usize = 64;

/// Nodes a document may have with its aliases expanded: more than a 1 MiB file can hold
/// without aliases.
pub const MAX_EXPANDED: u64 = 1_000_000;

/// `serde_yaml_ng::from_str`, after [`bounded`]; every error one line.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    bounded(text)?;
    serde_yaml_ng::from_str(text).map_err(|e| Error::Yaml(e.to_string()))
}

/// Whether `text` is within [`MAX_DEPTH`] and [`MAX_EXPANDED`]; linear in its length.
pub fn bounded(text: &str) -> Result<(), Error> {
    depth(text)?;
    if text.contains('&') && text.contains('*') {
        expansion(text)?;
    }
    Ok(())
}

/// Nesting as a conservative count: the block indentation levels open, the sequence dashes
/// that start the line, and every flow bracket open (counted even inside quotes, so no quoting
/// trick hides one). Whole-line comments in block context are skipped.
fn depth(text: &str) -> Result<(), Error> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow: usize = 0;
    let mut block: usize = 0;
    for (n, line) in text.lines().enumerate() {
        let body = line.trim_start_matches([' ', '\t']);
        if flow == 0 {
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            let indent = line.len() - body.len();
            while indents.last().is_some_and(|&i| i >= indent) {
                indents.pop();
            }
            indents.push(indent);
            let mut rest = body;
            let mut dashes = 0;
            while let Some(r) = rest.strip_prefix('-') {
                if !(r.is_empty() || r.starts_with([' ', '\t'])) {
                    break;
                }
                dashes += 1;
                rest = r.trim_start_matches([' ', '\t']);
            }
            block = indents.len() + dashes;
        }
        for b in body.bytes() {
            match b {
                b'[' | b'{' => flow += 1,
                b']' | b'}' => flow = flow.saturating_sub(1),
                _ => continue,
            }
            if block + flow > MAX_DEPTH {
                return Err(Error::YamlTooDeep {
                    max: MAX_DEPTH,
                    line: n + 1,
                });
            }
        }
        if block > MAX_DEPTH {
            return Err(Error::YamlTooDeep {
                max: MAX_DEPTH,
                line: n + 1,
            });
        }
    }
    Ok(())
}

/// The first document's node count with every alias expanded, from the parser's events.
fn expansion(text: &str) -> Result<(), Error> {
    use saphyr_parser::{Event, Parser};
    use std::collections::HashMap;
    let mut sizes: HashMap<usize, u64> = HashMap::new();
    // Open collections: (anchor id, nodes so far).
    let mut open: Vec<(usize, u64)> = vec![(0, 0)];
    let mut parser = Parser::new_from_str(text);
    while let Some(ev) = parser.next_event() {
        // A text the parser refuses is serde's to report.
        let Ok((ev, _)) = ev else { return Ok(()) };
        let add = match ev {
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                open.push((anchor, 1));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (anchor, n) = open.pop().unwrap_or((0, 0));
                if anchor != 0 {
                    sizes.insert(anchor, n);
                }
                n
            }
            Event::Scalar(_, _, anchor, _) => {
                if anchor != 0 {
                    sizes.insert(anchor, 1);
                }
                1
            }
            Event::Alias(id) => sizes.get(&id).copied().unwrap_or(1),
            Event::DocumentEnd => break,
            _ => continue,
        };
        if let Some(top) = open.last_mut() {
            top.1 = top.1.saturating_add(add);
            if top.1 > MAX_EXPANDED {
                return Err(Error::YamlAliasBomb { max: MAX_EXPANDED });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_flow_nesting_is_refused_in_linear_time() {
        let n = 100_000;
        let text = format!(
            "kind: Config\nclusters: {}{}\n",
            "[".repeat(n),
            "]".repeat(n)
        );
        let err = bounded(&text).unwrap_err().to_string();
        assert!(err.contains("64 levels") && err.contains("line 2"), "{err}");
        assert!(from_str::<serde_yaml_ng::Value>(&text).is_err());
        // Quotes do not hide brackets from the count.
        let quoted = format!("a: 'x\nb: {}\n", "{".repeat(70));
        assert!(bounded(&quoted).is_err());
    }

    #[test]
    fn deep_block_nesting_is_refused() {
        let mut text = String::new();
        for i in 0..100 {
            text.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
        }
        assert!(bounded(&text).unwrap_err().to_string().contains("line 65"));
        let dashes = format!("a:\n{}x\n", "- ".repeat(80));
        assert!(bounded(&dashes).is_err());
    }

    #[test]
    fn alias_bombs_are_refused_and_plain_anchors_pass() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = bounded(&text).unwrap_err().to_string();
        assert!(err.contains("alias"), "{err}");
        bounded("base: &b {x: 1}\nother: *b\n").unwrap();
    }

    #[test]
    fn real_files_pass() {
        for text in [
            include_str!("../../fixtures/kubeadm/etc/kubernetes/admin.conf"),
            include_str!("../../fixtures/kubeadm/etc/kubernetes/manifests/kube-apiserver.yaml"),
            "a: {b: [1, 2, {c: [3]}]}\n# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
        ] {
            bounded(text).unwrap();
        }
    }
}
