//! PEM blocks (RFC 7468 "textual encodings"): the DER inside one block, and whether RFC 1421
//! headers mark it encrypted.
//!
//! Nearly every block on a node is a bare base64 body between its BEGIN and END lines. Those are
//! decoded here in one pass over the bytes; the `pem` crate collects a block's body char by char
//! into a new string first, which made PEM a tenth of a fleet inspect. A block with headers
//! (`Proc-Type: 4,ENCRYPTED`) or anything unusual goes to the `pem` crate, whose answer and
//! error messages are the reference.

use base64::Engine;

/// One decoded block.
#[derive(Debug, PartialEq, Eq)]
pub struct Block {
    pub label: String,
    pub contents: Vec<u8>,
    /// `Proc-Type: 4,ENCRYPTED` (legacy OpenSSL encryption) among the headers.
    pub encrypted: bool,
}

/// Decodes the first block of `text` (which starts at or before its BEGIN line).
pub fn parse(text: &str) -> Result<Block, pem::PemError> {
    if let Some(block) = bare(text) {
        return Ok(block);
    }
    let parsed = pem::parse(text)?;
    Ok(Block {
        label: parsed.tag().to_string(),
        encrypted: parsed
            .headers()
            .get("Proc-Type")
            .is_some_and(|v| v.contains("ENCRYPTED")),
        contents: parsed.into_contents(),
    })
}

/// The block when it is a BEGIN line, base64 lines and its END line, and nothing else
/// precedes it but whitespace; `None` for anything the full parser should decide.
fn bare(text: &str) -> Option<Block> {
    let rest = text.trim_start().strip_prefix("-----BEGIN ")?;
    let label_end = rest.find("-----")?;
    let label = &rest[..label_end];
    if label.is_empty()
        || !label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ')
    {
        return None;
    }
    let body_and_end = rest[label_end + 5..].strip_prefix(['\n', '\r'])?;
    let end = body_and_end.find("-----END ")?;
    let (body, tail) = body_and_end.split_at(end);
    let tail = tail["-----END ".len()..].strip_prefix(label)?;
    tail.strip_prefix("-----")?;
    // Line by line, straight into the output: PEM writers wrap at 64 (or 76) characters,
    // whole base64 quanta, so each line decodes alone; padding may only end the last.
    let mut contents = Vec::with_capacity(body.len() / 4 * 3);
    let mut padded = false;
    for line in body.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if padded || line.len() % 4 != 0 {
            return None;
        }
        padded = line.ends_with('=');
        base64::engine::general_purpose::STANDARD
            .decode_vec(line, &mut contents)
            .ok()?;
    }
    Some(Block {
        label: label.to_string(),
        contents,
        encrypted: false,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // reads the committed fixtures
    use super::*;

    fn reference(text: &str) -> Option<Block> {
        let p = pem::parse(text).ok()?;
        Some(Block {
            label: p.tag().to_string(),
            encrypted: p
                .headers()
                .get("Proc-Type")
                .is_some_and(|v| v.contains("ENCRYPTED")),
            contents: p.into_contents(),
        })
    }

    /// Every PEM block of the fixture trees, as is and rewritten, decodes as the pem crate
    /// decodes it; the fast path takes the plain ones.
    #[test]
    fn blocks_decode_as_the_pem_crate_decodes_them() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut fast = 0;
        for entry in walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_map(Result::ok)
        {
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            let Some(start) = text.find("-----BEGIN ") else {
                continue;
            };
            let block = &text[start..];
            let variants = [
                block.to_string(),
                block.replace('\n', "\r\n"),
                block.replacen(
                    "-----\n",
                    "-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n",
                    1,
                ),
                block.replacen("A", "*", 1),
                block.replacen("-----END", "==\n-----END", 1),
                block.replacen("-----END ", "-----END X", 1),
            ];
            for v in &variants {
                assert_eq!(
                    parse(v).ok(),
                    reference(v),
                    "{}: {v:.80}",
                    entry.path().display()
                );
            }
            fast += usize::from(bare(block).is_some());
        }
        assert!(fast > 50, "only {fast} fixture blocks took the fast path");
    }

    #[test]
    fn headers_and_junk_go_to_the_pem_crate() {
        assert!(
            bare("-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\n\nQUJD\n-----END X-----\n").is_none()
        );
        assert!(bare("-----BEGIN x-----\nQUJD\n-----END x-----\n").is_none());
        assert!(bare("-----BEGIN X-----\nQUJ\n-----END X-----\n").is_none());
        assert!(bare("-----BEGIN X-----\nQUJD\n-----END Y-----\n").is_none());
        let b = bare("-----BEGIN X-----\nQUJD\n-----END X-----\n").unwrap();
        assert_eq!(
            (b.label.as_str(), b.contents.as_slice()),
            ("X", &b"ABC"[..])
        );
    }
}
