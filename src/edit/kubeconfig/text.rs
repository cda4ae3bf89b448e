//! Where a kubeconfig's values are written: the text read as lines (indentation, list entries,
//! keys and their scalar values with the byte spans and quoting style of each), and the
//! replacement of one value in place. [`super`] checks what the document means; this module
//! knows only where things stand in the text.

use super::Error;
use super::*;

/// One line: where its text starts in the file, and its text without the line ending.
struct Line<'a> {
    start: usize,
    body: &'a str,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for seg in text.split_inclusive('\n') {
        let body = seg.strip_suffix('\n').unwrap_or(seg);
        let body = body.strip_suffix('\r').unwrap_or(body);
        out.push(Line { start, body });
        start += seg.len();
    }
    out
}

fn indent(body: &str) -> usize {
    body.len() - body.trim_start_matches(' ').len()
}

/// Blank, or only a comment.
fn empty(body: &str) -> bool {
    let t = body.trim();
    t.is_empty() || t.starts_with('#')
}

/// A sequence entry marker at `col`: `-` then a space or the end.
fn is_dash(body: &str, col: usize) -> bool {
    let rest = &body[col..];
    rest == "-" || rest.starts_with("- ") || rest.starts_with("-\t")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Double,
    Single,
}

/// Where a scalar value is written: byte offsets into the file.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    style: Style,
}

/// A mapping key at `col` of `body`: the key and the column after its colon, or `None` when
/// the line holds no simple key there.
fn key_at(body: &str, col: usize) -> Option<(String, usize)> {
    let rest = &body[col..];
    let (key, after) = if let Some(q) = rest.strip_prefix('"') {
        let end = closing_double(q)?;
        (unescape_double(&q[..end]), col + 1 + end + 1)
    } else if let Some(q) = rest.strip_prefix('\'') {
        let end = closing_single(q)?;
        (q[..end].replace("''", "'"), col + 1 + end + 1)
    } else {
        if rest.starts_with(['#', '-', '?', '{', '[']) {
            return None;
        }
        let colon = rest
            .match_indices(':')
            .map(|(i, _)| i)
            .find(|&i| rest[i + 1..].is_empty() || rest[i + 1..].starts_with([' ', '\t']))?;
        (rest[..colon].trim_end().to_string(), col + colon)
    };
    let after_ws = after + body[after..].len() - body[after..].trim_start().len();
    body[after_ws..]
        .starts_with(':')
        .then(|| (key, after_ws + 1))
}

fn closing_double(q: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in q.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

fn closing_single(q: &str) -> Option<usize> {
    let b = q.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

fn unescape_double(s: &str) -> String {
    serde_yaml_ng::from_str::<String>(&format!("\"{s}\"")).unwrap_or_else(|_| s.to_string())
}

/// The scalar value after a key's colon (the key at column `key_col` of line `line`, its colon
/// ending before `col`), or why it cannot be edited in place. `Ok(None)`: no value on the line
/// (a nested block follows, or null).
fn value_at(
    ls: &[Line],
    line: usize,
    key_col: usize,
    col: usize,
    key: &str,
) -> Result<Option<Span>, Error> {
    let body = ls[line].body;
    let start = col + body[col..].len() - body[col..].trim_start().len();
    let rest = &body[start..];
    let abs = |i: usize| ls[line].start + start + i;
    let unsupported = |what: &str| {
        Err(Error::Kubeconfig(format!(
            "expected `{key}:` as a one-line scalar (as kubectl writes it), found {what} on line {}: edit it by hand",
            line + 1
        )))
    };
    let span = match rest.chars().next() {
        None | Some('#') => return Ok(None),
        Some('"') => match closing_double(&rest[1..]) {
            Some(end) => Span {
                start: abs(0),
                end: abs(end + 2),
                style: Style::Double,
            },
            None => return unsupported("a quoted value continued on the next lines"),
        },
        Some('\'') => match closing_single(&rest[1..]) {
            Some(end) => Span {
                start: abs(0),
                end: abs(end + 2),
                style: Style::Single,
            },
            None => return unsupported("a quoted value continued on the next lines"),
        },
        Some('|' | '>') => return unsupported("a block scalar"),
        Some('{' | '[') => return unsupported("a flow-style value"),
        Some('&' | '*' | '!') => return unsupported("an anchor, alias or tag"),
        Some(_) => {
            let end = [" #", "\t#"]
                .iter()
                .filter_map(|m| rest.find(m))
                .min()
                .unwrap_or(rest.len());
            Span {
                start: abs(0),
                end: abs(rest[..end].trim_end().len()),
                style: Style::Plain,
            }
        }
    };
    // A plain scalar may continue on lines indented past its key; quoted ones closed above.
    if let Some(next) = ls[line + 1..].iter().find(|l| !empty(l.body)) {
        if span.style == Style::Plain && indent(next.body) > key_col {
            return unsupported("a value continued on the next lines");
        }
    }
    Ok(Some(span))
}

/// A cluster entry as written: its name (if written as a simple scalar) and where the values
/// of its `cluster:` mapping are.
struct Item {
    name: Option<String>,
    values: Vec<(String, Span)>,
}

/// The entries of the top-level block-style `clusters:` list, in order.
fn cluster_items(text: &str) -> Result<Vec<Item>, Error> {
    let ls = lines(text);
    let flow = |found: &str| {
        Error::Kubeconfig(format!("expected the `clusters:` list in block style (as kubectl writes it), found {found}: edit it by hand"))
    };
    let head = ls
        .iter()
        .position(|l| {
            indent(l.body) == 0 && key_at(l.body, 0).is_some_and(|(k, _)| k == "clusters")
        })
        .ok_or_else(|| flow("no `clusters:` line at the top level (flow style or JSON?)"))?;
    let (_, after) = key_at(ls[head].body, 0).expect("found above");
    if !empty(&ls[head].body[after..]) {
        return Err(flow(&format!("`{}`", ls[head].body.trim())));
    }
    // The block: until the next top-level key or document marker.
    let mut end = head + 1;
    while end < ls.len() {
        let b = ls[end].body;
        if !empty(b)
            && indent(b) == 0
            && (!is_dash(b, 0) || b.starts_with("---") || b.starts_with("..."))
        {
            break;
        }
        end += 1;
    }
    let body: Vec<usize> = (head + 1..end).filter(|&i| !empty(ls[i].body)).collect();
    let Some(&first) = body.first() else {
        return Ok(Vec::new());
    };
    let seq = indent(ls[first].body);
    let mut starts = Vec::new();
    for &i in &body {
        let ind = indent(ls[i].body);
        if ind < seq || (ind == seq && !is_dash(ls[i].body, seq)) {
            return Err(flow(&format!(
                "line {} out of the list's indentation",
                i + 1
            )));
        }
        if ind == seq {
            starts.push(i);
        }
    }
    let mut items = Vec::new();
    for (n, &a) in starts.iter().enumerate() {
        let b = starts.get(n + 1).copied().unwrap_or(end);
        items.push(item(&ls, a, b, seq)?);
    }
    Ok(items)
}

/// One list entry, lines `a..b`, its dash at column `seq`.
fn item(ls: &[Line], a: usize, b: usize, seq: usize) -> Result<Item, Error> {
    let dash_body = ls[a].body;
    let after_dash = seq + 1;
    let inline =
        after_dash + dash_body[after_dash..].len() - dash_body[after_dash..].trim_start().len();
    // Key lines of the entry's mapping: (line, column).
    let (m, mut keys) = if empty(&dash_body[inline.min(dash_body.len())..]) {
        match (a + 1..b).find(|&i| !empty(ls[i].body)) {
            Some(i) => (indent(ls[i].body), vec![]),
            None => {
                return Ok(Item {
                    name: None,
                    values: vec![],
                })
            }
        }
    } else {
        (inline, vec![(a, inline)])
    };
    for (i, l) in ls.iter().enumerate().take(b).skip(a + 1) {
        if !empty(l.body) && indent(l.body) == m && !is_dash(l.body, m) {
            keys.push((i, m));
        }
    }
    let mut out = Item {
        name: None,
        values: vec![],
    };
    for (k, &(line, col)) in keys.iter().enumerate() {
        let Some((key, after)) = key_at(ls[line].body, col) else {
            continue;
        };
        let next_key = keys.get(k + 1).map_or(b, |&(l, _)| l);
        match key.as_str() {
            "name" => {
                if let Ok(Some(span)) = value_at(ls, line, col, after, "name") {
                    out.name = Some(scalar_text(ls, line, span));
                }
            }
            "cluster" => {
                if !empty(&ls[line].body[after..]) {
                    return Err(Error::Kubeconfig(format!(
                        "expected `cluster:` as a block mapping (as kubectl writes it), found `{}` on line {}: edit it by hand",
                        ls[line].body.trim(),
                        line + 1
                    )));
                }
                let content: Vec<usize> = (line + 1..next_key)
                    .filter(|&i| !empty(ls[i].body))
                    .collect();
                let Some(&first) = content.first() else {
                    continue;
                };
                let c = indent(ls[first].body);
                for &i in &content {
                    let body = ls[i].body;
                    if indent(body) != c || is_dash(body, c) {
                        continue;
                    }
                    let Some((ck, cafter)) = key_at(body, c) else {
                        continue;
                    };
                    if matches!(
                        ck.as_str(),
                        "server" | "certificate-authority-data" | "certificate-authority"
                    ) {
                        if let Some(span) = value_at(ls, i, c, cafter, &ck)? {
                            out.values.push((ck, span));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The text of a scalar as written (quotes removed), for matching names.
fn scalar_text(ls: &[Line], line: usize, span: Span) -> String {
    let off = ls[line].start;
    let raw = &ls[line].body[span.start - off..span.end - off];
    match span.style {
        Style::Plain => raw.to_string(),
        Style::Double => unescape_double(&raw[1..raw.len() - 1]),
        Style::Single => raw[1..raw.len() - 1].replace("''", "'"),
    }
}

/// `value` written in `style`, or double-quoted when a plain scalar would read differently.
fn token(value: &str, style: Style) -> String {
    let double = || {
        let mut s = String::from("\"");
        for c in value.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c if c.is_control() => s.push_str(&format!("\\u{:04X}", c as u32)),
                c => s.push(c),
            }
        }
        s.push('"');
        s
    };
    match style {
        Style::Double => double(),
        Style::Single if !value.chars().any(char::is_control) => {
            format!("'{}'", value.replace('\'', "''"))
        }
        Style::Single => double(),
        Style::Plain => {
            let reads_back = serde_yaml_ng::from_str::<Value>(&format!("k: {value}"))
                .ok()
                .and_then(|v| v.get("k").cloned())
                == Some(Value::String(value.to_string()));
            if reads_back && !value.contains(" #") && !value.starts_with(' ') {
                value.to_string()
            } else {
                double()
            }
        }
    }
}

/// Replaces `key` of the clusters `chosen` (indices into `all`, the document's clusters) by
/// `value` in the text, then proves the result means the original with only that changed.
pub(super) fn replace(
    text: &str,
    doc: &Value,
    all: &[Cluster],
    chosen: &[usize],
    key: &str,
    value: &str,
) -> Result<String, Error> {
    let items = cluster_items(text)?;
    if items.len() != all.len() {
        return Err(Error::Kubeconfig(format!(
            "expected the `clusters:` list in block style (as kubectl writes it), found {} entries written where the YAML has {}: edit it by hand",
            items.len(),
            all.len()
        )));
    }
    let mut spans = Vec::new();
    for &i in chosen {
        if items[i].name.as_deref().is_some_and(|n| n != all[i].name) {
            return Err(Error::Kubeconfig(format!(
                "expected cluster `{}` as entry {} of the `clusters:` list, found `{}` written there: edit it by hand",
                all[i].name,
                i + 1,
                items[i].name.as_deref().unwrap_or_default()
            )));
        }
        let mut found = items[i].values.iter().filter(|(k, _)| k == key);
        match (found.next(), found.next()) {
            (Some((_, span)), None) => spans.push(*span),
            _ => {
                return Err(Error::Kubeconfig(format!(
                    "expected one `{key}:` line in cluster `{}`, found none written in block style: edit it by hand",
                    all[i].name
                )))
            }
        }
    }
    spans.sort_by_key(|s| s.start);
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for s in &spans {
        out.push_str(&text[at..s.start]);
        out.push_str(&token(value, s.style));
        at = s.end;
    }
    out.push_str(&text[at..]);

    // The edit must mean exactly the original with `key` of the chosen clusters changed.
    let mut expected = doc.clone();
    if let Some(Value::Sequence(items)) = expected.get_mut("clusters") {
        for &i in chosen {
            if let Some(Value::Mapping(c)) = items[i].get_mut("cluster") {
                c.insert(Value::String(key.into()), Value::String(value.into()));
            }
        }
    }
    let got: Value = serde_yaml_ng::from_str(&out).map_err(|e| {
        Error::Kubeconfig(format!(
            "expected the edited kubeconfig to read back, found {}: kubeconfig left as it was",
            one_line(&e.to_string())
        ))
    })?;
    if got != expected {
        return Err(Error::Kubeconfig(format!(
            "expected the edit to change only `{key}:`, found it would change more: kubeconfig left as it was, edit it by hand"
        )));
    }
    Ok(out)
}
