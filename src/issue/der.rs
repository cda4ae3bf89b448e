//! A minimal DER writer: just what a TBSCertificate needs. Reading stays with x509-parser; the
//! pieces we copy from an existing certificate (subject, SPKI, extensions) are copied as bytes.

use super::error::Error;
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A non-negative INTEGER from big-endian magnitude bytes.
pub fn uint(magnitude: &[u8]) -> Vec<u8> {
    let start = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len().saturating_sub(1));
    let m = &magnitude[start..];
    let mut content = Vec::with_capacity(m.len() + 1);
    if m.first().is_some_and(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(m);
    if content.is_empty() {
        content.push(0);
    }
    tlv(0x02, &content)
}

pub fn bit_string(bytes: &[u8]) -> Vec<u8> {
    tlv(0x03, &[&[0u8][..], bytes].concat())
}

/// An X.509 `Extension`: its OID (content bytes), `critical` only when true (DER omits the
/// default), and its value wrapped in an OCTET STRING.
pub fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let oid = tlv(0x06, oid);
    let value = octet_string(value);
    if critical {
        seq(&[&oid, &boolean(true), &value])
    } else {
        seq(&[&oid, &value])
    }
}

pub fn octet_string(bytes: &[u8]) -> Vec<u8> {
    tlv(0x04, bytes)
}

pub fn boolean(value: bool) -> Vec<u8> {
    tlv(0x01, &[if value { 0xff } else { 0 }])
}

/// `[n] EXPLICIT`
pub fn explicit(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xa0 | n, content)
}

/// RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
pub fn time(unix: i64) -> Result<Vec<u8>, Error> {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).map_err(|e| Error::Der(e.to_string()))?;
    let (y, mo, d, h, mi, s) = (
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    );
    Ok(if (1950..2050).contains(&y) {
        tlv(
            0x17,
            format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100).as_bytes(),
        )
    } else {
        tlv(
            0x18,
            format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z").as_bytes(),
        )
    })
}

/// Reads one definite-length TLV from the front of `input`: its tag, its whole encoding and
/// its content, and what follows it. Only what DER allows (no indefinite lengths, minimal
/// lengths are not insisted on: the bytes are copied, never re-encoded).
pub fn read_tlv(input: &[u8]) -> Result<Tlv<'_>, Error> {
    let short = || Error::Der("truncated DER".into());
    let tag = *input.first().ok_or_else(short)?;
    if tag & 0x1f == 0x1f {
        return Err(Error::Der("unsupported DER: a multi-byte tag".into()));
    }
    let first = *input.get(1).ok_or_else(short)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err(Error::Der(
                "unsupported DER: an indefinite or oversized length".into(),
            ));
        }
        let bytes = input.get(2..2 + n).ok_or_else(short)?;
        (
            bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize),
            2 + n,
        )
    };
    let end = header.checked_add(len).ok_or_else(short)?;
    let whole = input.get(..end).ok_or_else(short)?;
    Ok(Tlv {
        tag,
        whole,
        content: &whole[header..],
        rest: &input[end..],
    })
}

/// One TLV read by [`read_tlv`].
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    /// Tag, length and content, as found.
    pub whole: &'a [u8],
    pub content: &'a [u8],
    /// The bytes after it.
    pub rest: &'a [u8],
}

/// Every TLV of `content`, in order (the elements of a SEQUENCE or SET).
pub fn read_all(mut content: &[u8]) -> Result<Vec<Tlv<'_>>, Error> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let t = read_tlv(content)?;
        content = t.rest;
        out.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_integers() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        assert_eq!(&tlv(0x04, &[0; 200])[..3], &[0x04, 0x81, 200]);
        assert_eq!(&tlv(0x04, &[0; 300])[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(uint(&[0x80]), vec![0x02, 2, 0, 0x80]);
        assert_eq!(uint(&[0, 0, 5]), vec![0x02, 1, 5]);
        assert_eq!(uint(&[]), vec![0x02, 1, 0]);
    }

    #[test]
    fn reads_back_what_it_writes() {
        let long = octet_string(&[7; 300]);
        let inner = seq(&[&uint(&[5]), &long]);
        let input = [inner.as_slice(), &[1, 2]].concat();
        let t = read_tlv(&input).unwrap();
        assert_eq!(
            (t.tag, t.whole, t.rest),
            (0x30, inner.as_slice(), &[1u8, 2][..])
        );
        let parts = read_all(t.content).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].content, &[7; 300][..]);
        assert!(read_tlv(&[0x30, 0x05, 1]).is_err());
        assert!(read_tlv(&[0x30, 0x80]).is_err());
    }

    #[test]
    fn times() {
        // 2034-12-31T00:00:00Z and 2100-01-01T00:00:00Z
        assert_eq!(time(2051136000).unwrap()[2..], *b"341231000000Z");
        assert_eq!(time(4102444800).unwrap()[2..], *b"21000101000000Z");
    }
}
