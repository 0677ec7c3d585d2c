//! The confirmation claim `cnf` (RFC 8747 §3): how a CWT names the key its presenter must
//! prove possession of.

use crate::cbor::Value;
use crate::cose::CoseKey;
use crate::error::Error;

/// Confirmation method labels (IANA "CWT Confirmation Methods").
mod method {
    pub(super) const COSE_KEY: i64 = 1;
    pub(super) const ENCRYPTED_COSE_KEY: i64 = 2;
    pub(super) const KID: i64 = 3;
}

/// A `cnf` claim: exactly one confirmation method.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum Confirmation {
    /// The public key itself (`COSE_Key`, method 1), the only method a verifier can use
    /// without further lookup, and the one Lanyard issues.
    Key(CoseKey),
    /// A key identifier (method 3), to be resolved out of band.
    Kid(Vec<u8>),
    /// An encrypted key (method 2), kept undecoded.
    EncryptedKey(Value),
}

impl Confirmation {
    /// Parses a `cnf` claim value.
    pub fn from_value(value: &Value) -> Result<Confirmation, Error> {
        let entries = value.as_map().ok_or_else(|| Error::invalid_claim("cnf", "not a map"))?;
        let [(method, content)] = entries else {
            return Err(Error::invalid_claim("cnf", "must hold exactly one confirmation method"));
        };
        match method.as_i64() {
            Some(method::COSE_KEY) => Ok(Confirmation::Key(
                CoseKey::from_value(content).map_err(|e| Error::invalid_claim("cnf", e.to_string()))?,
            )),
            Some(method::KID) => content
                .as_bytes()
                .map(|kid| Confirmation::Kid(kid.to_vec()))
                .ok_or_else(|| Error::invalid_claim("cnf", "kid must be a byte string")),
            Some(method::ENCRYPTED_COSE_KEY) => Ok(Confirmation::EncryptedKey(content.clone())),
            _ => Err(Error::invalid_claim(
                "cnf",
                format!("unsupported confirmation method {}", crate::cbor::to_diagnostic(method)),
            )),
        }
    }

    /// The claim value.
    pub fn to_value(&self) -> Value {
        let (method, content) = match self {
            Confirmation::Key(key) => (method::COSE_KEY, key.to_value()),
            Confirmation::Kid(kid) => (method::KID, Value::bytes(kid.clone())),
            Confirmation::EncryptedKey(v) => (method::ENCRYPTED_COSE_KEY, v.clone()),
        };
        Value::map([(Value::int(method), content)])
    }

    /// The confirmation key, when the claim carries it.
    pub fn key(&self) -> Option<&CoseKey> {
        match self {
            Confirmation::Key(key) => Some(key),
            _ => None,
        }
    }
}
