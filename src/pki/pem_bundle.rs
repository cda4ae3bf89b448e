//! PEM files as the DER values rustls takes: the CERTIFICATE blocks of a bundle (trust anchors
//! or a client chain) and the private key of a client identity. Pure: bytes in, values out.

use super::error::Error;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Every CERTIFICATE block of a PEM bundle, as trust anchors or a client chain.
pub fn certs_from_pem(pem_bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let blocks = pem::parse_many(pem_bytes).map_err(|e| Error::Pem(format!("not PEM ({e})")))?;
    let certs: Vec<_> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| CertificateDer::from(b.into_contents()))
        .collect();
    if certs.is_empty() {
        return Err(Error::Pem(
            "expected PEM certificates, found no CERTIFICATE block".into(),
        ));
    }
    Ok(certs)
}

/// The first unencrypted private key of a PEM file (PKCS#1, SEC1 or PKCS#8), for a client
/// identity. The key bytes go to rustls and nowhere else.
pub fn key_from_pem(pem_bytes: &[u8]) -> Result<PrivateKeyDer<'static>, Error> {
    let block = pem::parse_many(pem_bytes)
        .map_err(|e| Error::Pem(format!("not PEM ({e})")))?
        .into_iter()
        .find(|b| b.tag().ends_with("PRIVATE KEY"))
        .ok_or_else(|| Error::Pem("expected a PEM private key, found none".into()))?;
    let encrypted = block
        .headers()
        .get("Proc-Type")
        .is_some_and(|v| v.contains("ENCRYPTED"));
    Ok(match block.tag() {
        "RSA PRIVATE KEY" if !encrypted => PrivateKeyDer::Pkcs1(block.into_contents().into()),
        "EC PRIVATE KEY" if !encrypted => PrivateKeyDer::Sec1(block.into_contents().into()),
        "PRIVATE KEY" => PrivateKeyDer::Pkcs8(block.into_contents().into()),
        other => {
            return Err(Error::Pem(format!(
                "expected an unencrypted private key, found an encrypted `{other}`"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(tag: &str, contents: &[u8]) -> String {
        pem::encode(&pem::Pem::new(tag, contents.to_vec()))
    }

    #[test]
    fn certificates_are_every_certificate_block_and_only_those() {
        let bundle = block("CERTIFICATE", b"one")
            + &block("PRIVATE KEY", b"k")
            + &block("CERTIFICATE", b"two");
        let certs = certs_from_pem(bundle.as_bytes()).expect("two certificates");
        let ders: Vec<&[u8]> = certs.iter().map(|c| c.as_ref()).collect();
        assert_eq!(ders, [&b"one"[..], &b"two"[..]]);
        let err = certs_from_pem(block("PRIVATE KEY", b"k").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("found no CERTIFICATE block"), "{err}");
    }

    #[test]
    fn keys_are_typed_by_label_and_encrypted_ones_refused() {
        let key = |text: String| key_from_pem(text.as_bytes());
        assert!(matches!(
            key(block("RSA PRIVATE KEY", b"k")),
            Ok(PrivateKeyDer::Pkcs1(_))
        ));
        assert!(matches!(
            key(block("EC PRIVATE KEY", b"k")),
            Ok(PrivateKeyDer::Sec1(_))
        ));
        assert!(matches!(
            key(block("PRIVATE KEY", b"k")),
            Ok(PrivateKeyDer::Pkcs8(_))
        ));
        let err = key(block("ENCRYPTED PRIVATE KEY", b"k"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("found an encrypted `ENCRYPTED PRIVATE KEY`"),
            "{err}"
        );
        let err = key(block("CERTIFICATE", b"c")).unwrap_err().to_string();
        assert!(err.contains("found none"), "{err}");
    }
}
