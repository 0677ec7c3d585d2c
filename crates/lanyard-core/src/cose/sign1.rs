//! COSE_Sign1 (RFC 9052 §4.2, §4.4): one signer, tagged form (tag 18).
//!
//! ```text
//! COSE_Sign1_Tagged = #6.18([ protected: bstr .cbor header_map / bstr .size 0,
//!                             unprotected: header_map, payload: bstr / nil, signature: bstr ])
//! Sig_structure = [ "Signature1", body_protected, external_aad, payload ]
//! ```

use super::{CoseErrorKind, cose_error, header};
use crate::alg::Algorithm;
use crate::cbor::{self, Limits, Value, write_head};
use crate::crypto::{SigningKey, VerifyingKey};
use crate::error::Error;

/// The CBOR tag of COSE_Sign1.
pub const SIGN1_TAG: u64 = 18;

/// A COSE_Sign1 message. Parsing it checks structure and headers only; [`CoseSign1::verify`]
/// checks the signature over the protected-header bytes as received.
#[derive(Clone, Debug, PartialEq)]
pub struct CoseSign1 {
    protected_bytes: Vec<u8>,
    protected: Vec<(Value, Value)>,
    unprotected: Vec<(Value, Value)>,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

fn malformed(detail: impl Into<String>) -> Error {
    cose_error(CoseErrorKind::Malformed, detail)
}

fn invalid_header(detail: impl Into<String>) -> Error {
    cose_error(CoseErrorKind::InvalidHeader, detail)
}

/// Checks that every label of a header map is an integer or a text string.
fn check_labels(map: &[(Value, Value)], bucket: &str) -> Result<(), Error> {
    for (label, _) in map {
        if !matches!(label, Value::Integer(_) | Value::Text(_)) {
            return Err(invalid_header(format!(
                "{bucket} header label is a {}, not an integer or text",
                label.type_name()
            )));
        }
    }
    Ok(())
}

fn header_map(value: Value, bucket: &str) -> Result<Vec<(Value, Value)>, Error> {
    match value {
        Value::Map(entries) => {
            check_labels(&entries, bucket)?;
            Ok(entries)
        }
        other => Err(invalid_header(format!(
            "{bucket} header is a {}, not a map",
            other.type_name()
        ))),
    }
}

fn find(map: &[(Value, Value)], label: i64) -> Option<&Value> {
    map.iter().find(|(k, _)| k.as_i64() == Some(label)).map(|(_, v)| v)
}

impl CoseSign1 {
    /// Parses a tagged COSE_Sign1 from a decoded item.
    pub fn from_value(value: Value) -> Result<CoseSign1, Error> {
        let items = match value {
            Value::Tag(SIGN1_TAG, content) => match *content {
                Value::Array(items) => items,
                other => {
                    return Err(malformed(format!(
                        "COSE_Sign1 is a {}, not an array",
                        other.type_name()
                    )));
                }
            },
            Value::Tag(tag, _) => {
                return Err(cose_error(
                    CoseErrorKind::WrongTag,
                    format!("tag {tag}, not {SIGN1_TAG} (COSE_Sign1)"),
                ));
            }
            other => {
                return Err(cose_error(
                    CoseErrorKind::WrongTag,
                    format!("an untagged {}, not a tagged COSE_Sign1", other.type_name()),
                ));
            }
        };
        let [protected, unprotected, payload, signature]: [Value; 4] = items
            .try_into()
            .map_err(|items: Vec<Value>| malformed(format!("COSE_Sign1 has {} elements, not 4", items.len())))?;
        let protected_bytes = match protected {
            Value::Bytes(b) => b,
            other => {
                return Err(malformed(format!(
                    "protected header is a {}, not a bstr",
                    other.type_name()
                )));
            }
        };
        // An empty protected header is a zero-length bstr (RFC 9052 §3); `a0` is tolerated.
        let protected = if protected_bytes.is_empty() {
            Vec::new()
        } else {
            header_map(cbor::decode(&protected_bytes)?, "protected")?
        };
        let unprotected = header_map(unprotected, "unprotected")?;
        for (label, _) in &unprotected {
            if protected.iter().any(|(k, _)| k == label) {
                return Err(invalid_header(
                    "a label is in both the protected and the unprotected header",
                ));
            }
        }
        let payload = match payload {
            Value::Bytes(b) => b,
            Value::Null => {
                return Err(cose_error(
                    CoseErrorKind::DetachedPayload,
                    "the payload is detached (nil)",
                ));
            }
            other => return Err(malformed(format!("payload is a {}, not a bstr", other.type_name()))),
        };
        let signature = match signature {
            Value::Bytes(b) => b,
            other => return Err(malformed(format!("signature is a {}, not a bstr", other.type_name()))),
        };
        Ok(CoseSign1 {
            protected_bytes,
            protected,
            unprotected,
            payload,
            signature,
        })
    }

    /// Decodes a tagged COSE_Sign1 from bytes with the strict decoder.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<CoseSign1, Error> {
        CoseSign1::from_value(cbor::decode_with(bytes, limits)?)
    }

    /// Signs `payload` with `key`. The protected header gets `alg` (the key's COSE
    /// identifier) when it has none, and must agree with the key when it has one.
    pub fn sign(
        mut protected: Vec<(Value, Value)>,
        unprotected: Vec<(Value, Value)>,
        payload: Vec<u8>,
        key: &dyn SigningKey,
    ) -> Result<CoseSign1, Error> {
        check_labels(&protected, "protected")?;
        check_labels(&unprotected, "unprotected")?;
        let alg = key.algorithm();
        match find(&protected, header::ALG) {
            None => protected.insert(0, (Value::int(header::ALG), Value::int(alg.cose_id()))),
            Some(v) if v.as_i64() == Some(alg.cose_id()) => {}
            Some(v) => {
                return Err(Error::AlgorithmMismatch {
                    expected: alg.to_string(),
                    found: cbor::to_diagnostic(v),
                });
            }
        }
        if find(&unprotected, header::ALG).is_some() {
            return Err(invalid_header("alg belongs in the protected header"));
        }
        let protected_bytes = if protected.is_empty() {
            Vec::new()
        } else {
            Value::Map(protected.clone()).to_vec()
        };
        let mut message = CoseSign1 {
            protected_bytes,
            protected,
            unprotected,
            payload,
            signature: Vec::new(),
        };
        message.signature = key.sign(&message.sig_structure(b""))?;
        Ok(message)
    }

    /// The `alg` of the protected header; it must be there (Lanyard does not accept an
    /// unprotected `alg`) and name an algorithm Lanyard implements.
    pub fn algorithm(&self) -> Result<Algorithm, Error> {
        if find(&self.unprotected, header::ALG).is_some() {
            return Err(invalid_header("alg is in the unprotected header"));
        }
        match find(&self.protected, header::ALG) {
            Some(Value::Integer(id)) => {
                let id = id.to_i64().ok_or_else(|| invalid_header("alg is out of range"))?;
                Algorithm::from_cose_id(id)
            }
            Some(Value::Text(name)) => Err(Error::AlgorithmNotAllowed {
                alg: name.chars().take(32).collect(),
                reason: "text algorithm names are not supported in COSE",
            }),
            Some(other) => Err(invalid_header(format!("alg is a {}", other.type_name()))),
            None => Err(invalid_header("the protected header has no alg")),
        }
    }

    /// Checks the signature with `key` (over the protected header as received, with an
    /// empty external AAD). The header's `alg` must be the one the key is bound to.
    pub fn verify(&self, key: &dyn VerifyingKey) -> Result<(), Error> {
        let alg = self.algorithm()?;
        if alg != key.algorithm() {
            return Err(Error::AlgorithmMismatch {
                expected: key.algorithm().to_string(),
                found: alg.to_string(),
            });
        }
        key.verify(&self.sig_structure(b""), &self.signature)
    }

    /// Fails unless every label listed in `crit` is in `understood` (RFC 9052 §3.1).
    pub fn check_critical(&self, understood: &[i64]) -> Result<(), Error> {
        let Some(crit) = find(&self.protected, header::CRIT) else {
            return Ok(());
        };
        let labels = match crit.as_array() {
            Some(labels) if !labels.is_empty() => labels,
            _ => return Err(invalid_header("crit must be a non-empty array")),
        };
        for label in labels {
            if !label.as_i64().is_some_and(|l| understood.contains(&l)) {
                return Err(cose_error(
                    CoseErrorKind::UnknownCritical,
                    format!("crit lists {}", cbor::to_diagnostic(label)),
                ));
            }
        }
        Ok(())
    }

    /// The Sig_structure for `Signature1` (RFC 9052 §4.4), over the protected-header
    /// bytes as received.
    pub fn sig_structure(&self, external_aad: &[u8]) -> Vec<u8> {
        const CONTEXT: &[u8] = b"Signature1";
        let mut out = Vec::with_capacity(
            24 + CONTEXT.len() + self.protected_bytes.len() + external_aad.len() + self.payload.len(),
        );
        write_head(&mut out, 4, 4);
        write_head(&mut out, 3, CONTEXT.len() as u64);
        out.extend_from_slice(CONTEXT);
        for part in [&self.protected_bytes[..], external_aad, &self.payload] {
            write_head(&mut out, 2, part.len() as u64);
            out.extend_from_slice(part);
        }
        out
    }

    /// The protected header bytes, exactly as received (or as signed).
    pub fn protected_bytes(&self) -> &[u8] {
        &self.protected_bytes
    }

    /// The decoded protected header.
    pub fn protected(&self) -> &[(Value, Value)] {
        &self.protected
    }

    /// The protected header parameter `label`, if present.
    pub fn protected_value(&self, label: i64) -> Option<&Value> {
        find(&self.protected, label)
    }

    /// The unprotected header.
    pub fn unprotected(&self) -> &[(Value, Value)] {
        &self.unprotected
    }

    /// The unprotected header parameter `label`, if present.
    pub fn unprotected_value(&self, label: i64) -> Option<&Value> {
        find(&self.unprotected, label)
    }

    /// Replaces the unprotected header (it is not covered by the signature). Labels must be
    /// integers or text and must not repeat a protected label.
    pub fn set_unprotected(&mut self, unprotected: Vec<(Value, Value)>) -> Result<(), Error> {
        check_labels(&unprotected, "unprotected")?;
        if unprotected
            .iter()
            .any(|(l, _)| self.protected.iter().any(|(k, _)| k == l))
        {
            return Err(invalid_header(
                "a label is in both the protected and the unprotected header",
            ));
        }
        self.unprotected = unprotected;
        Ok(())
    }

    /// The `kid` header parameter (protected first, then unprotected), if it is a bstr.
    pub fn kid(&self) -> Option<&[u8]> {
        self.protected_value(header::KID)
            .or_else(|| self.unprotected_value(header::KID))
            .and_then(Value::as_bytes)
    }

    /// The payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The message as a tagged CBOR item (the unprotected header re-encoded
    /// deterministically; every other part byte-for-byte).
    pub fn to_value(&self) -> Value {
        Value::Tag(
            SIGN1_TAG,
            Box::new(Value::Array(vec![
                Value::Bytes(self.protected_bytes.clone()),
                Value::Map(self.unprotected.clone()),
                Value::Bytes(self.payload.clone()),
                Value::Bytes(self.signature.clone()),
            ])),
        )
    }

    /// The encoded, tagged message.
    pub fn to_vec(&self) -> Vec<u8> {
        self.to_value().to_vec()
    }
}
