//! JSON Web Keys (RFC 7517) for EC (RFC 7518 §6.2), OKP (RFC 8037 §2) and RSA
//! (RFC 7518 §6.3) keys, public and private, and JWK thumbprints (RFC 7638).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{base64url, json};
use crate::alg::{AlgSet, Algorithm};
use crate::crypto::CryptoProvider;
use crate::error::Error;

/// A JSON Web Key. Members Lanyard does not use are dropped on parse.
///
/// `Debug` never prints private members.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `EC`, `OKP` or `RSA`.
    pub kty: String,
    /// Curve for EC (`P-256`, `P-384`, `P-521`) and OKP (`Ed25519`) keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate or OKP public key (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Private scalar (EC), seed (OKP) or private exponent (RSA). Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
    /// RSA first prime factor. Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<String>,
    /// RSA second prime factor. Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// RSA first factor CRT exponent. Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp: Option<String>,
    /// RSA second factor CRT exponent. Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dq: Option<String>,
    /// RSA first CRT coefficient. Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qi: Option<String>,
    /// Key ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The algorithm this key is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Public key use; SPIFFE bundles use `x509-svid`, `jwt-svid`, `wit-svid`.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// X.509 certificate chain (standard base64 DER, RFC 7517 §4.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5c: Option<Vec<String>>,
}

impl Jwk {
    /// Parses one JWK from JSON, rejecting duplicate members.
    pub fn from_json(bytes: &[u8]) -> Result<Jwk, Error> {
        let map = json::parse_object(bytes, "JWK")?;
        Jwk::from_value(&Value::Object(map))
    }

    pub(crate) fn from_value(value: &Value) -> Result<Jwk, Error> {
        Jwk::deserialize(value).map_err(|e| Error::InvalidKey(format!("malformed JWK: {e}")))
    }

    /// Serializes to compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether this is a key of the type and curve `alg` needs (`kty`, and `crv` exactly as
    /// `alg` names it: none for RSA). A declared `alg` is checked separately.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.kty == alg.key_type() && self.crv.as_deref() == alg.curve()
    }

    /// Whether the JWK carries any private key material: `d`, or any of the RSA private
    /// members `p`, `q`, `dp`, `dq`, `qi` (publishing `p` or `q` alone gives the key away).
    pub fn is_private(&self) -> bool {
        [&self.d, &self.p, &self.q, &self.dp, &self.dq, &self.qi]
            .iter()
            .any(|m| m.is_some())
    }

    /// A copy without any private members.
    pub fn to_public(&self) -> Jwk {
        Jwk {
            d: None,
            p: None,
            q: None,
            dp: None,
            dq: None,
            qi: None,
            ..self.clone()
        }
    }

    /// The `alg` member, parsed against the allow-list (absent is `Ok(None)`).
    pub fn algorithm(&self) -> Result<Option<Algorithm>, Error> {
        self.alg.as_deref().map(Algorithm::parse).transpose()
    }

    /// The algorithms this key could verify: its `alg` if set (when it fits the key type),
    /// otherwise every polymorphic JOSE algorithm ([`Algorithm::ALL`]) its type and curve
    /// allow (a key is only used with a fully specified algorithm when it says so).
    pub fn usable_algorithms(&self) -> Result<AlgSet, Error> {
        let fits = |a: Algorithm| a.key_type() == self.kty && a.curve() == self.crv.as_deref();
        let candidates = AlgSet::of(&Algorithm::ALL.into_iter().filter(|a| fits(*a)).collect::<Vec<_>>());
        match self.algorithm()? {
            Some(alg) if fits(alg) => Ok(AlgSet::of(&[alg])),
            Some(alg) => Err(Error::InvalidKey(format!(
                "alg {alg} does not fit a {} key{}",
                self.kty,
                self.crv.as_deref().map(|c| format!(" on {c}")).unwrap_or_default()
            ))),
            None if candidates == AlgSet::EMPTY => Err(Error::InvalidKey(format!(
                "unsupported key type {:?} / curve {:?}",
                self.kty, self.crv
            ))),
            None => Ok(candidates),
        }
    }

    /// The JSON that RFC 7638 §3 hashes: the required members in lexicographic order.
    pub fn thumbprint_input(&self) -> Result<String, Error> {
        let kty = Some(self.kty.as_str());
        let (crv, x, y, n, e) = (
            self.crv.as_deref(),
            self.x.as_deref(),
            self.y.as_deref(),
            self.n.as_deref(),
            self.e.as_deref(),
        );
        let members: &[(&str, Option<&str>)] = match self.kty.as_str() {
            "EC" => &[("crv", crv), ("kty", kty), ("x", x), ("y", y)],
            "OKP" => &[("crv", crv), ("kty", kty), ("x", x)],
            "RSA" => &[("e", e), ("kty", kty), ("n", n)],
            other => return Err(Error::InvalidKey(format!("no thumbprint for key type {other:?}"))),
        };
        let mut out = Vec::with_capacity(32 + members.iter().map(|(_, v)| v.map_or(0, str::len)).sum::<usize>());
        out.push(b'{');
        for (i, (name, value)) in members.iter().enumerate() {
            let value = value.ok_or_else(|| Error::InvalidKey(format!("{} key without {name}", self.kty)))?;
            if i > 0 {
                out.push(b',');
            }
            write_json_string(&mut out, name);
            out.push(b':');
            write_json_string(&mut out, value);
        }
        out.push(b'}');
        String::from_utf8(out).map_err(|_| Error::InvalidKey("the thumbprint input is not UTF-8".into()))
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url-encoded.
    pub fn thumbprint(&self, provider: &dyn CryptoProvider) -> Result<String, Error> {
        Ok(base64url::encode(&provider.sha256(self.thumbprint_input()?.as_bytes())))
    }

    /// Decodes a base64url key member (e.g. `x`), naming it in the error.
    pub fn member_bytes(&self, name: &'static str) -> Result<Vec<u8>, Error> {
        let value = match name {
            "x" => &self.x,
            "y" => &self.y,
            "n" => &self.n,
            "e" => &self.e,
            "d" => &self.d,
            "p" => &self.p,
            "q" => &self.q,
            "dp" => &self.dp,
            "dq" => &self.dq,
            "qi" => &self.qi,
            _ => &None,
        };
        let value = value
            .as_deref()
            .ok_or_else(|| Error::InvalidKey(format!("{} key without {name}", self.kty)))?;
        base64url::decode(value, name).map_err(|_| Error::InvalidKey(format!("{name} is not valid base64url")))
    }
}

/// Appends `s` as a JSON string (quoted and escaped).
fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(out, s);
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Jwk");
        d.field("kty", &self.kty);
        for (name, v) in [
            ("crv", &self.crv),
            ("kid", &self.kid),
            ("alg", &self.alg),
            ("use", &self.key_use),
        ] {
            if let Some(v) = v {
                d.field(name, v);
            }
        }
        for (name, v) in [("x", &self.x), ("y", &self.y), ("n", &self.n), ("e", &self.e)] {
            if let Some(v) = v {
                d.field(name, v);
            }
        }
        if self.is_private() {
            d.field("private", &"<redacted>");
        }
        d.finish_non_exhaustive()
    }
}

/// A JWK Set (RFC 7517 §5).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// Parses a JWK Set, rejecting duplicate members; `keys` is required.
    pub fn from_json(bytes: &[u8]) -> Result<JwkSet, Error> {
        let map = json::parse_object(bytes, "JWK Set")?;
        let keys = match map.get("keys") {
            Some(Value::Array(keys)) => keys,
            Some(_) => return Err(Error::InvalidKey("keys must be an array".into())),
            None => return Err(Error::InvalidKey("JWK Set without keys".into())),
        };
        let keys = keys.iter().map(Jwk::from_value).collect::<Result<_, _>>()?;
        Ok(JwkSet { keys })
    }

    /// Serializes to pretty JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The key with `kid`, if any.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_input() {
        // RFC 7638 §3.1 example key (RSA); the expected input is the documented member order.
        let jwk = Jwk {
            kty: "RSA".into(),
            n: Some("0vx7".into()),
            e: Some("AQAB".into()),
            alg: Some("RS256".into()),
            kid: Some("2011-04-29".into()),
            ..Jwk::default()
        };
        assert_eq!(
            jwk.thumbprint_input().unwrap(),
            r#"{"e":"AQAB","kty":"RSA","n":"0vx7"}"#
        );
    }

    #[test]
    fn debug_redacts_private_members() {
        let jwk = Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            x: Some("pub".into()),
            d: Some("SECRET".into()),
            ..Jwk::default()
        };
        let s = format!("{jwk:?}");
        assert!(!s.contains("SECRET"), "{s}");
        assert!(s.contains("redacted"));
        assert!(jwk.to_public().d.is_none());
        // RSA private members without `d` still make the key private (found by fuzzing).
        let only_p = Jwk {
            kty: "RSA".into(),
            n: Some("n".into()),
            e: Some("AQAB".into()),
            p: Some("secret-prime".into()),
            ..Jwk::default()
        };
        assert!(only_p.is_private());
        assert!(!format!("{only_p:?}").contains("secret-prime"));
        assert!(!only_p.to_public().is_private());
    }

    #[test]
    fn usable_algorithms() {
        let ec = Jwk {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            ..Jwk::default()
        };
        assert_eq!(ec.usable_algorithms().unwrap(), AlgSet::of(&[Algorithm::ES256]));
        let rsa = Jwk {
            kty: "RSA".into(),
            ..Jwk::default()
        };
        assert_eq!(rsa.usable_algorithms().unwrap().iter().count(), 6);
        let wrong = Jwk {
            alg: Some("ES384".into()),
            ..ec
        };
        assert_eq!(wrong.usable_algorithms().unwrap_err().kind(), "invalid_key");
        let hmac = Jwk {
            kty: "oct".into(),
            ..Jwk::default()
        };
        assert!(hmac.usable_algorithms().is_err());
    }
}
