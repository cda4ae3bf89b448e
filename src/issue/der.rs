//! A minimal DER writer: just what a TBSCertificate needs. Reading stays with x509-parser; the
//! pieces we copy from an existing certificate (subject, SPKI, extensions) are copied as bytes.

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
pub fn time(unix: i64) -> Result<Vec<u8>, String> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).map_err(|e| e.to_string())?;
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
    fn times() {
        // 2034-12-31T00:00:00Z and 2100-01-01T00:00:00Z
        assert_eq!(time(2051136000).unwrap()[2..], *b"341231000000Z");
        assert_eq!(time(4102444800).unwrap()[2..], *b"21000101000000Z");
    }
}
