//! Shared certificate plumbing: strict DER parsing, SAN extraction, SPKI inspection,
//! serial numbers and time conversion. Nothing here is public API.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_core::{Jwk, SpiffeId, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::error::Error;

/// NotBefore is backdated by this much, as SPIRE does (`NotBeforeCushion`), so that peers
/// whose clocks run slightly behind still accept a fresh certificate.
pub(crate) const NOT_BEFORE_CUSHION: u64 = 10;

/// Parses one DER certificate; trailing bytes are an error.
pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, Error> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| Error::malformed("certificate", e))?;
    if !rest.is_empty() {
        return Err(Error::malformed("certificate", "trailing bytes after the certificate"));
    }
    Ok(cert)
}

/// The certificate's SAN entries, or none. A repeated SAN extension is malformed.
fn general_names<'a>(cert: &'a X509Certificate<'_>) -> Result<&'a [GeneralName<'a>], Error> {
    Ok(cert
        .subject_alternative_name()
        .map_err(|e| Error::malformed("certificate", format!("subjectAltName: {e}")))?
        .map(|ext| ext.value.general_names.as_slice())
        .unwrap_or(&[]))
}

/// Every URI SAN of `cert`.
pub(crate) fn uri_sans<'a>(cert: &'a X509Certificate<'_>) -> Result<Vec<&'a str>, Error> {
    Ok(general_names(cert)?
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(*u),
            _ => None,
        })
        .collect())
}

/// Every DNS SAN of `cert`.
pub(crate) fn dns_sans<'a>(cert: &'a X509Certificate<'_>) -> Result<Vec<&'a str>, Error> {
    Ok(general_names(cert)?
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(*d),
            _ => None,
        })
        .collect())
}

/// Parses `uri` as a SPIFFE ID, keeping a bounded copy of it in the error.
pub(crate) fn parse_spiffe_uri(uri: &str) -> Result<SpiffeId, Error> {
    SpiffeId::parse(uri).map_err(|source| Error::NotSpiffeId {
        uri: source.input.clone(),
        source,
    })
}

/// The SPIFFE ID of an X.509-SVID leaf: exactly one URI SAN, a valid SPIFFE ID with a path
/// (X509-SVID.md §2, §3.1).
pub(crate) fn leaf_spiffe_id(cert: &X509Certificate<'_>) -> Result<SpiffeId, Error> {
    let uris = uri_sans(cert)?;
    let uri = match uris.as_slice() {
        [] => return Err(Error::NoUriSan),
        [one] => *one,
        many => return Err(Error::MultipleUriSans { count: many.len() }),
    };
    let id = parse_spiffe_uri(uri)?;
    if id.is_trust_domain_id() {
        return Err(Error::LeafWithoutPath { id });
    }
    Ok(id)
}

/// A signed ASN.1 time as a [`UnixTime`] (times before 1970 become 0).
pub(crate) fn unix(secs: i64) -> UnixTime {
    UnixTime(u64::try_from(secs).unwrap_or(0))
}

/// `(notBefore, notAfter)` of `cert`.
pub(crate) fn validity(cert: &X509Certificate<'_>) -> (UnixTime, UnixTime) {
    let v = cert.validity();
    (unix(v.not_before.timestamp()), unix(v.not_after.timestamp()))
}

/// A [`UnixTime`] as the `time` crate's date, for rcgen.
pub(crate) fn to_datetime(t: UnixTime) -> Result<time::OffsetDateTime, Error> {
    let secs = i64::try_from(t.as_secs()).map_err(|_| Error::InvalidValidity(format!("time {t} is out of range")))?;
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| Error::InvalidValidity(format!("time {t} is out of the range of X.509 dates")))
}

/// 16 random bytes as a positive serial number of fixed length (RFC 5280 §4.1.2.2 allows 20).
pub(crate) fn random_serial(crypto: &dyn lanyard_core::CryptoProvider) -> Result<Vec<u8>, Error> {
    let mut serial = [0u8; 16];
    crypto.fill_random(&mut serial)?;
    // Clear the sign bit (serials are positive) and set the next one so that the DER
    // encoding always has 16 content bytes.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    Ok(serial.to_vec())
}

/// The kind of a subject public key, as far as issuance cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// RSA (at least 2048 bits).
    Rsa,
    /// ECDSA on P-256, P-384 or P-521.
    Ec(&'static str),
    /// Ed25519.
    Ed25519,
}

/// Parses a SubjectPublicKeyInfo and checks that it is a key type webpki verifies
/// (RSA ≥ 2048 bits, P-256/P-384/P-521, Ed25519).
pub(crate) fn inspect_spki(spki_der: &[u8]) -> Result<(SubjectPublicKeyInfo<'_>, KeyKind), Error> {
    let (rest, spki) = SubjectPublicKeyInfo::from_der(spki_der).map_err(|e| Error::malformed("public key", e))?;
    if !rest.is_empty() {
        return Err(Error::malformed(
            "public key",
            "trailing bytes after the SubjectPublicKeyInfo",
        ));
    }
    let kind = key_kind(&spki)?;
    Ok((spki, kind))
}

pub(crate) fn key_kind(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeyKind, Error> {
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_PKCS1_RSAENCRYPTION {
        let bits = spki.parsed().map_err(|e| Error::malformed("public key", e))?.key_size();
        if bits < 2048 {
            return Err(Error::InvalidKey(format!(
                "RSA keys must be at least 2048 bits, got {bits}"
            )));
        }
        Ok(KeyKind::Rsa)
    } else if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .ok_or_else(|| Error::InvalidKey("EC public key without a named curve".into()))?;
        let name = if curve == OID_EC_P256 {
            "P-256"
        } else if curve == OID_NIST_EC_P384 {
            "P-384"
        } else if curve == OID_NIST_EC_P521 {
            "P-521"
        } else {
            return Err(Error::InvalidKey(format!("unsupported EC curve {curve}")));
        };
        Ok(KeyKind::Ec(name))
    } else if *alg == OID_SIG_ED25519 {
        Ok(KeyKind::Ed25519)
    } else {
        Err(Error::InvalidKey(format!("unsupported public key algorithm {alg}")))
    }
}

/// The public JWK (RFC 7517/7518/8037) of a SubjectPublicKeyInfo: `kty`, `crv`, `x`/`y` or
/// `n`/`e`; no `alg`, `kid` or `use`.
pub(crate) fn jwk_from_spki(spki_der: &[u8]) -> Result<Jwk, Error> {
    let (spki, kind) = inspect_spki(spki_der)?;
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let mut jwk = Jwk::default();
    match kind {
        KeyKind::Rsa => {
            let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
                return Err(Error::malformed("public key", "bad RSA public key"));
            };
            let strip = |b: &[u8]| -> Vec<u8> {
                let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
                b[start..].to_vec()
            };
            jwk.kty = "RSA".into();
            jwk.n = Some(b64(&strip(rsa.modulus)));
            jwk.e = Some(b64(&strip(rsa.exponent)));
        }
        KeyKind::Ec(curve) => {
            let point = spki.subject_public_key.data.as_ref();
            let len = match curve {
                "P-256" => 32,
                "P-384" => 48,
                _ => 66,
            };
            if point.len() != 1 + 2 * len || point[0] != 4 {
                return Err(Error::InvalidKey(format!(
                    "{curve} public key is not an uncompressed point"
                )));
            }
            jwk.kty = "EC".into();
            jwk.crv = Some(curve.into());
            jwk.x = Some(b64(&point[1..=len]));
            jwk.y = Some(b64(&point[1 + len..]));
        }
        KeyKind::Ed25519 => {
            let key = spki.subject_public_key.data.as_ref();
            if key.len() != 32 {
                return Err(Error::InvalidKey("Ed25519 public keys are 32 bytes".into()));
            }
            jwk.kty = "OKP".into();
            jwk.crv = Some("Ed25519".into());
            jwk.x = Some(b64(key));
        }
    }
    Ok(jwk)
}

/// PEM blocks with tag `tag` in `text`, as DER; anything else in the text is an error.
pub(crate) fn pem_blocks(text: &str, tag: &str, what: &'static str) -> Result<Vec<Vec<u8>>, Error> {
    let blocks = pem::parse_many(text).map_err(|e| Error::malformed("PEM", e))?;
    if blocks.is_empty() {
        return Err(Error::malformed("PEM", format!("no {tag} block in the {what}")));
    }
    blocks
        .into_iter()
        .map(|b| {
            if b.tag() == tag {
                Ok(b.into_contents())
            } else {
                Err(Error::malformed(
                    "PEM",
                    format!("expected {tag} blocks in the {what}, found {}", b.tag()),
                ))
            }
        })
        .collect()
}

/// One PEM block with LF line endings.
pub(crate) fn to_pem(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// DER certificates as concatenated `CERTIFICATE` PEM blocks.
pub(crate) fn certs_to_pem<C: AsRef<[u8]>>(certs: &[C]) -> String {
    certs.iter().map(|c| to_pem("CERTIFICATE", c.as_ref())).collect()
}
