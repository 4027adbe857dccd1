//! Just enough PEM and DER to load keys from configuration: unwrap a PEM block into DER bytes, and
//! read a `SubjectPublicKeyInfo` (RFC 5280 §4.1) to get the algorithm, the named curve and the key
//! bits that `ring` wants. Runs at config load only; never on the request path. It does not
//! validate the key itself: `ring` does that when the key is used or built.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// A PEM block: its label (`PRIVATE KEY`, `RSA PRIVATE KEY`, `PUBLIC KEY`…) and DER contents.
#[derive(Debug)]
pub(crate) struct Pem {
    pub(crate) label: String,
    pub(crate) der: Vec<u8>,
}

/// Why PEM or DER could not be read. Carries no key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PemDerError {
    /// No `-----BEGIN …-----` / `-----END …-----` pair, and not bare base64 either.
    NoPemBlock,
    /// The body of the PEM block is not valid base64.
    BadBase64,
    /// The DER structure is not the expected SubjectPublicKeyInfo.
    BadDer,
}

const BEGIN: &str = "-----BEGIN ";
const END: &str = "-----END ";
const DASHES: &str = "-----";

/// Decodes the first PEM block in `text`. Text without any PEM armour is treated as bare base64
/// DER with label `""` (Otoroshi accepts bare base64 SPKI public keys in its algorithm settings).
pub(crate) fn decode_pem(text: &str) -> Result<Pem, PemDerError> {
    let Some(begin_at) = text.find(BEGIN) else {
        let der = decode_b64_lines(text)?;
        if der.is_empty() {
            return Err(PemDerError::NoPemBlock);
        }
        return Ok(Pem {
            label: String::new(),
            der,
        });
    };
    let after_begin = &text[begin_at + BEGIN.len()..];
    let label_end = after_begin.find(DASHES).ok_or(PemDerError::NoPemBlock)?;
    let label = &after_begin[..label_end];
    let body_and_rest = &after_begin[label_end + DASHES.len()..];
    let end_marker = format!("{END}{label}{DASHES}");
    let body_end = body_and_rest
        .find(&end_marker)
        .ok_or(PemDerError::NoPemBlock)?;
    let der = decode_b64_lines(&body_and_rest[..body_end])?;
    Ok(Pem {
        label: label.to_owned(),
        der,
    })
}

fn decode_b64_lines(body: &str) -> Result<Vec<u8>, PemDerError> {
    let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| PemDerError::BadBase64)
}

/// DER tag numbers used here.
const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

/// OID 1.2.840.113549.1.1.1 (rsaEncryption), content bytes.
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// OID 1.2.840.10045.2.1 (id-ecPublicKey).
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// OID 1.2.840.10045.3.1.7 (prime256v1 / P-256).
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// OID 1.3.132.0.34 (secp384r1 / P-384).
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

/// A cursor over DER bytes that reads one TLV at a time.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Der { rest: bytes }
    }

    /// Reads one element with the given tag and returns its contents.
    fn read(&mut self, tag: u8) -> Result<&'a [u8], PemDerError> {
        let (&t, rest) = self.rest.split_first().ok_or(PemDerError::BadDer)?;
        if t != tag {
            return Err(PemDerError::BadDer);
        }
        let (&first_len, mut rest) = rest.split_first().ok_or(PemDerError::BadDer)?;
        let len = if first_len < 0x80 {
            usize::from(first_len)
        } else {
            let n = usize::from(first_len & 0x7f);
            // Definite lengths only, at most 4 length bytes (keys are far below 4 GiB).
            if n == 0 || n > 4 || rest.len() < n {
                return Err(PemDerError::BadDer);
            }
            let mut len = 0usize;
            for &b in &rest[..n] {
                len = (len << 8) | usize::from(b);
            }
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return Err(PemDerError::BadDer);
        }
        let (contents, after) = rest.split_at(len);
        self.rest = after;
        Ok(contents)
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

/// The public key found in a SubjectPublicKeyInfo.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SpkiKey<'a> {
    /// `RSAPublicKey` DER (what `ring` verifies with).
    Rsa(&'a [u8]),
    /// An EC point (uncompressed `04||x||y` for keys `ring` accepts) on P-256.
    P256(&'a [u8]),
    /// An EC point on P-384.
    P384(&'a [u8]),
    /// Some other algorithm or curve: unsupported.
    Other,
}

/// Reads a DER SubjectPublicKeyInfo and returns its key bits, tagged by algorithm and curve.
pub(crate) fn parse_spki(der: &[u8]) -> Result<SpkiKey<'_>, PemDerError> {
    let mut outer = Der::new(der);
    let spki = outer.read(TAG_SEQUENCE)?;
    if !outer.is_empty() {
        return Err(PemDerError::BadDer);
    }
    let mut spki = Der::new(spki);
    let alg_id = spki.read(TAG_SEQUENCE)?;
    let bits = spki.read(TAG_BIT_STRING)?;
    if !spki.is_empty() {
        return Err(PemDerError::BadDer);
    }
    // The first byte of a BIT STRING counts unused bits; a key is always whole bytes.
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err(PemDerError::BadDer),
    };
    let mut alg_id = Der::new(alg_id);
    let oid = alg_id.read(TAG_OID)?;
    if oid == OID_RSA {
        if alg_id.peek_tag() == Some(TAG_NULL) {
            alg_id.read(TAG_NULL)?;
        }
        // Sanity: RSAPublicKey is SEQUENCE { INTEGER n, INTEGER e }.
        let mut rsa = Der::new(key);
        let mut ints = Der::new(rsa.read(TAG_SEQUENCE)?);
        ints.read(TAG_INTEGER)?;
        ints.read(TAG_INTEGER)?;
        if !ints.is_empty() || !rsa.is_empty() {
            return Err(PemDerError::BadDer);
        }
        return Ok(SpkiKey::Rsa(key));
    }
    if oid == OID_EC {
        let curve = alg_id.read(TAG_OID)?;
        return Ok(if curve == OID_P256 {
            SpkiKey::P256(key)
        } else if curve == OID_P384 {
            SpkiKey::P384(key)
        } else {
            SpkiKey::Other
        });
    }
    Ok(SpkiKey::Other)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const EC256_PUB: &str = include_str!("../../tests/keys/ec256.pub.pem");
    const EC384_PUB: &str = include_str!("../../tests/keys/ec384.pub.pem");
    const RSA_PUB: &str = include_str!("../../tests/keys/rsa2048.pub.pem");

    #[test]
    fn reads_spki_of_each_kind() {
        let pem = decode_pem(EC256_PUB).unwrap();
        assert_eq!(pem.label, "PUBLIC KEY");
        match parse_spki(&pem.der).unwrap() {
            SpkiKey::P256(point) => assert_eq!((point.len(), point[0]), (65, 4)),
            other => panic!("{other:?}"),
        }
        let pem = decode_pem(EC384_PUB).unwrap();
        assert!(matches!(parse_spki(&pem.der).unwrap(), SpkiKey::P384(p) if p.len() == 97));
        let pem = decode_pem(RSA_PUB).unwrap();
        assert!(matches!(parse_spki(&pem.der).unwrap(), SpkiKey::Rsa(k) if k.len() > 256));
    }

    #[test]
    fn bare_base64_is_accepted() {
        let pem = decode_pem(EC256_PUB).unwrap();
        let bare = STANDARD.encode(&pem.der);
        assert_eq!(decode_pem(&bare).unwrap().der, pem.der);
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(
            decode_pem("-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----").unwrap_err(),
            PemDerError::BadBase64
        );
        assert_eq!(
            decode_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n").unwrap_err(),
            PemDerError::NoPemBlock
        );
        assert_eq!(decode_pem("").unwrap_err(), PemDerError::NoPemBlock);
        assert_eq!(parse_spki(&[0x30, 0x05, 0x30]), Err(PemDerError::BadDer));
        assert_eq!(parse_spki(&[]), Err(PemDerError::BadDer));
        // Truncated copies of a real SPKI never panic and never succeed.
        let der = decode_pem(RSA_PUB).unwrap().der;
        for cut in 0..der.len() {
            assert!(parse_spki(&der[..cut]).is_err());
        }
    }
}
