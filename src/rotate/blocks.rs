//! Where each certificate of a PEM text is written: the byte span of every `CERTIFICATE` block
//! (its line ending included), so a stage can put one first or take one out and leave every
//! other byte as it was.

use crate::pki::cert::CertInfo;

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// One `CERTIFICATE` block: `text[start..end]`, and the certificate when it parses.
#[derive(Debug, Clone)]
pub struct Block {
    pub start: usize,
    pub end: usize,
    pub cert: Option<CertInfo>,
}

/// The certificate blocks of `text`, in order; a BEGIN without an END ends the list.
pub fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(b) = text[from..].find(BEGIN) {
        let start = from + b;
        let Some(e) = text[start..].find(END) else {
            break;
        };
        let mut end = start + e + END.len();
        if text[end..].starts_with("\r\n") {
            end += 2;
        } else if text[end..].starts_with('\n') {
            end += 1;
        }
        let cert = pem::parse(&text[start..end])
            .ok()
            .and_then(|p| CertInfo::from_der(p.contents()).ok());
        out.push(Block { start, end, cert });
        from = end;
    }
    out
}

/// The line ending a text uses (CRLF when it has one).
pub fn line_ending(text: &str) -> &'static str {
    if text.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    }
}

/// A CA's PEM in the line ending `nl`.
pub fn pem_in(ca: &CertInfo, nl: &str) -> String {
    let pem = super::pem_of(ca);
    if nl == "\n" {
        pem
    } else {
        pem.replace('\n', nl)
    }
}

/// `text` without the blocks holding `ca`.
pub fn without(text: &str, ca: &CertInfo) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for b in blocks(text) {
        if b.cert.as_ref().is_some_and(|c| c.der == ca.der) {
            out.push_str(&text[at..b.start]);
            at = b.end;
        }
    }
    out.push_str(&text[at..]);
    out
}

/// `text` with `ca` first: its block put before the first certificate block (taken out from
/// where it was, if it was there), every other byte kept.
pub fn first(text: &str, ca: &CertInfo) -> String {
    let rest = without(text, ca);
    let pem = pem_in(ca, line_ending(text));
    match blocks(&rest).first() {
        Some(b) => format!("{}{pem}{}", &rest[..b.start], &rest[b.start..]),
        None => {
            let mut out = rest;
            if !out.is_empty() && !out.ends_with('\n') {
                out.push_str(line_ending(text));
            }
            out.push_str(&pem);
            out
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read fixtures with std::fs
mod tests {
    use super::*;

    fn ca(rel: &str) -> (String, CertInfo) {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/kubeadm/etc/kubernetes/pki")
                .join(rel),
        )
        .unwrap();
        let cert = blocks(&text).remove(0).cert.unwrap();
        (text, cert)
    }

    #[test]
    fn blocks_move_and_go_with_every_other_byte_kept() {
        let (a, ca_a) = ca("ca.crt");
        let (b, ca_b) = ca("front-proxy-ca.crt");
        // A comment before, CRLF line endings, no newline at the end.
        let text = format!("# trust\r\n{}{}", a, b.trim_end()).replace('\n', "\r\n");
        let text = text.replace("\r\r\n", "\r\n");
        let spans = blocks(&text);
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[1].end, text.len());
        let moved = first(&text, &ca_b);
        assert!(moved.starts_with("# trust\r\n-----BEGIN CERTIFICATE-----"));
        let order: Vec<Vec<u8>> = blocks(&moved)
            .into_iter()
            .map(|b| b.cert.unwrap().der)
            .collect();
        assert_eq!(order, [ca_b.der.clone(), ca_a.der.clone()]);
        assert!(!moved.replace("\r\n", "").contains('\n'), "CRLF kept");
        let gone = without(&text, &ca_a);
        assert_eq!(blocks(&gone).len(), 1);
        assert!(gone.starts_with("# trust\r\n") && gone.ends_with("-----END CERTIFICATE-----"));
        assert_eq!(without(&gone, &ca_a), gone, "nothing to take out");
    }
}
