//! JWS compact serialization (RFC 7515 §7.1), strict.

use serde::Serialize;
use serde_json::{Map, Value};

use super::base64url;
use super::json::{self, Members};
use crate::alg::Algorithm;
use crate::crypto::{SigningKey, VerifyingKey};
use crate::error::Error;

/// The largest token accepted, checked before any decoding (16 KiB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A decoded JOSE header.
#[derive(Clone, Debug)]
pub struct JwsHeader {
    /// `alg` as written (checked against an allow-list by [`JwsHeader::algorithm`]).
    pub alg: String,
    /// `typ`, if any.
    pub typ: Option<String>,
    /// `kid`, if any.
    pub kid: Option<String>,
    /// Every member, for display.
    pub members: Map<String, Value>,
}

impl JwsHeader {
    /// `alg` parsed against [`Algorithm`] (so `none` and HMAC are refused here).
    pub fn algorithm(&self) -> Result<Algorithm, Error> {
        Algorithm::parse(&self.alg)
    }
}

/// A parsed but unverified compact JWS. It keeps the original signing input so the
/// signature is checked over exactly the bytes that were sent.
#[derive(Debug)]
pub struct CompactJws<'a> {
    token: &'a str,
    signing_input_len: usize,
    header: JwsHeader,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> CompactJws<'a> {
    /// Splits and decodes a compact JWS: size limit first, then exactly three parts,
    /// strict base64url, a strict-JSON header with a string `alg`, and no `crit`.
    pub fn parse(token: &'a str) -> Result<CompactJws<'a>, Error> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Error::TooLarge {
                limit: MAX_TOKEN_BYTES,
                actual: token.len(),
            });
        }
        let mut parts = token.splitn(4, '.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(Error::malformed("a compact JWS has exactly three dot-separated parts"));
        };
        if h.is_empty() || p.is_empty() {
            return Err(Error::malformed("empty JWS header or payload"));
        }
        let header_map = json::parse_object(&base64url::decode(h, "JWS header")?, "header")?;
        let m = Members(&header_map);
        let alg = m
            .str("alg")?
            .ok_or_else(|| Error::malformed("JWS header has no alg"))?
            .to_owned();
        let typ = m.str("typ")?.map(str::to_owned);
        let kid = m.str("kid")?.map(str::to_owned);
        if let Some(crit) = header_map.get("crit") {
            let names = match crit {
                Value::Array(items) => items.iter().map(|v| v.as_str().unwrap_or("?").to_owned()).collect(),
                _ => vec![crit.to_string()],
            };
            return Err(Error::UnknownCritical(names));
        }
        let payload = base64url::decode(p, "JWS payload")?;
        let signature = base64url::decode(s, "JWS signature")?;
        Ok(CompactJws {
            token,
            signing_input_len: h.len() + 1 + p.len(),
            header: JwsHeader {
                alg,
                typ,
                kid,
                members: header_map,
            },
            payload,
            signature,
        })
    }

    /// The token as received.
    pub fn as_str(&self) -> &'a str {
        self.token
    }

    /// The decoded header.
    pub fn header(&self) -> &JwsHeader {
        &self.header
    }

    /// The decoded payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The payload parsed as a strict JSON object (a JWT claims set).
    pub fn claims(&self) -> Result<Map<String, Value>, Error> {
        json::parse_object(&self.payload, "payload")
    }

    /// The bytes the signature covers: `BASE64URL(header) || '.' || BASE64URL(payload)`.
    pub fn signing_input(&self) -> &'a [u8] {
        &self.token.as_bytes()[..self.signing_input_len]
    }

    /// Verifies the signature with `key`, whose algorithm must equal the header's `alg`.
    pub fn verify_signature(&self, key: &dyn VerifyingKey) -> Result<(), Error> {
        if self.header.alg != key.algorithm().as_str() {
            return Err(Error::AlgorithmMismatch {
                expected: key.algorithm().to_string(),
                found: self.header.alg.clone(),
            });
        }
        key.verify(self.signing_input(), &self.signature)
    }
}

/// Signs `claims` as a compact JWS with header `{alg, kid?, typ?}`.
pub fn sign_compact(
    typ: Option<&str>,
    kid: Option<&str>,
    claims: &impl Serialize,
    key: &dyn SigningKey,
) -> Result<String, Error> {
    #[derive(Serialize)]
    struct Header<'a> {
        alg: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        kid: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        typ: Option<&'a str>,
    }
    let header = Header {
        alg: key.algorithm().as_str(),
        kid,
        typ,
    };
    sign_with_header(&header, claims, key)
}

/// Signs `claims` as a compact JWS under `header`, which must carry the key's `alg` (for
/// headers with more members than [`sign_compact`] writes, such as a DPoP proof's `jwk`).
pub(crate) fn sign_with_header(
    header: &impl Serialize,
    claims: &impl Serialize,
    key: &dyn SigningKey,
) -> Result<String, Error> {
    let header = serde_json::to_vec(header).map_err(|e| Error::malformed(e.to_string()))?;
    let payload = serde_json::to_vec(claims).map_err(|e| Error::malformed(e.to_string()))?;
    let mut out = base64url::encode(&header);
    out.push('.');
    out.push_str(&base64url::encode(&payload));
    let signature = key.sign(out.as_bytes())?;
    out.push('.');
    out.push_str(&base64url::encode(&signature));
    Ok(out)
}

/// A token decoded WITHOUT any verification, for display (`lanyard token inspect`).
#[derive(Clone, Debug)]
pub struct DecodedToken {
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
}

/// Decodes a compact JWS without verifying anything but its structure.
pub fn decode_unverified(token: &str) -> Result<DecodedToken, Error> {
    let jws = CompactJws::parse(token)?;
    Ok(DecodedToken {
        claims: jws.claims()?,
        header: jws.header.members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure() {
        assert_eq!(CompactJws::parse("a.b").unwrap_err().kind(), "malformed");
        assert_eq!(CompactJws::parse("a.b.c.d").unwrap_err().kind(), "malformed");
        let big = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(CompactJws::parse(&big).unwrap_err().kind(), "too_large");
        // {"alg":"ES256","crit":["exp"]}
        let h = base64url::encode(br#"{"alg":"ES256","crit":["exp"]}"#);
        let e = CompactJws::parse(&format!("{h}.e30.")).unwrap_err();
        assert_eq!(e, Error::UnknownCritical(vec!["exp".into()]));
        // padding is not base64url-without-padding
        let h = base64url::encode(br#"{"alg":"ES256"}"#);
        assert_eq!(
            CompactJws::parse(&format!("{h}=.e30.")).unwrap_err().kind(),
            "malformed"
        );
    }
}
