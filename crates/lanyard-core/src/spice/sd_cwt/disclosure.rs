//! Salted Disclosed Claims (draft §5.1, Figure 12) and AEAD-encrypted disclosures (§12.1
//! with the optional -08 key-context element).
//!
//! ```text
//! salted-claim   = [ bstr .size 16, any, (int / text) ]   ; [salt, value, key]
//! salted-element = [ bstr .size 16, any ]                 ; [salt, value]
//! decoy          = [ bstr .size 16 ]                      ; [salt]
//! aead-encrypted = [ nonce: bstr, ciphertext: bstr, tag: bstr, ? key-context: uint / tstr / bstr ]
//! ```

use super::{DigestInput, SALT_LEN, SdCwtErrorKind, is_label, sd_error};
use crate::cbor::{self, Limits, MAJOR_BYTES, Value, write_head};
use crate::crypto::{AeadAlgorithm, CryptoProvider, Digest, DigestAlgorithm};
use crate::error::Error;

/// What a disclosure reveals.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum DisclosureKind {
    /// A redacted map entry: `key: value`.
    Claim {
        /// The claim key (an integer or text).
        key: Value,
        /// The claim value (may itself contain redactions).
        value: Value,
    },
    /// A redacted array element.
    Element {
        /// The element (may itself contain redactions).
        value: Value,
    },
    /// A decoy: only a salt.
    Decoy,
}

/// One Salted Disclosed Claim: its encoding (the content of the byte string carried in
/// `sd_claims`) and what it discloses.
#[derive(Clone, Debug, PartialEq)]
pub struct Disclosure {
    encoded: Vec<u8>,
    salt: [u8; SALT_LEN],
    kind: DisclosureKind,
}

fn malformed(detail: impl Into<String>) -> Error {
    sd_error(SdCwtErrorKind::DisclosureMalformed, detail)
}

impl Disclosure {
    /// Parses the content of one `sd_claims` byte string.
    pub fn parse(encoded: Vec<u8>, limits: &Limits) -> Result<Disclosure, Error> {
        let value = cbor::decode_with(&encoded, limits)?;
        let Value::Array(items) = value else {
            return Err(malformed(format!(
                "a disclosure is a {}, not an array",
                value.type_name()
            )));
        };
        let mut items = items.into_iter();
        let salt = match items.next() {
            Some(Value::Bytes(salt)) => <[u8; SALT_LEN]>::try_from(salt.as_slice()).map_err(|_| {
                sd_error(
                    SdCwtErrorKind::SaltLength,
                    format!("a salt of {} bytes, not {SALT_LEN}", salt.len()),
                )
            })?,
            Some(other) => return Err(malformed(format!("the salt is a {}, not bytes", other.type_name()))),
            None => return Err(malformed("an empty disclosure array")),
        };
        let kind = match (items.next(), items.next(), items.next()) {
            (None, _, _) => DisclosureKind::Decoy,
            (Some(value), None, _) => DisclosureKind::Element { value },
            (Some(value), Some(key), None) if is_label(&key) => DisclosureKind::Claim { key, value },
            (Some(_), Some(key), None) => {
                return Err(malformed(format!(
                    "a claim key must be an integer or 1-255 bytes of text, not {}",
                    cbor::to_diagnostic(&key)
                )));
            }
            (Some(_), Some(_), Some(_)) => return Err(malformed("a disclosure array of more than 3 elements")),
        };
        Ok(Disclosure { encoded, salt, kind })
    }

    /// A disclosure of `kind` with `salt`, deterministically encoded.
    pub fn new(salt: [u8; SALT_LEN], kind: DisclosureKind) -> Disclosure {
        let salt_value = Value::bytes(salt.to_vec());
        let array = match &kind {
            DisclosureKind::Claim { key, value } => vec![salt_value, value.clone(), key.clone()],
            DisclosureKind::Element { value } => vec![salt_value, value.clone()],
            DisclosureKind::Decoy => vec![salt_value],
        };
        Disclosure {
            encoded: Value::Array(array).to_vec(),
            salt,
            kind,
        }
    }

    /// The encoded disclosure array (the content of its `sd_claims` byte string).
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// The salt.
    pub fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }

    /// What the disclosure reveals.
    pub fn kind(&self) -> &DisclosureKind {
        &self.kind
    }

    /// Takes the disclosure apart.
    pub(crate) fn into_kind(self) -> DisclosureKind {
        self.kind
    }

    /// The disclosure as carried in `sd_claims`: a byte string.
    pub fn to_value(&self) -> Value {
        Value::Bytes(self.encoded.clone())
    }

    /// The Redacted Claim Hash of this disclosure.
    pub fn digest(
        &self,
        provider: &dyn CryptoProvider,
        alg: DigestAlgorithm,
        input: DigestInput,
    ) -> Result<Digest, Error> {
        digest_of(provider, alg, input, &self.encoded)
    }
}

/// The digest of a disclosure given by its encoding.
pub(crate) fn digest_of(
    provider: &dyn CryptoProvider,
    alg: DigestAlgorithm,
    input: DigestInput,
    encoded: &[u8],
) -> Result<Digest, Error> {
    match input {
        DigestInput::ContentOnly => provider.digest(alg, encoded),
        _ => {
            let mut head = Vec::with_capacity(9);
            write_head(&mut head, MAJOR_BYTES, encoded.len() as u64);
            let mut hasher = provider.hasher(alg)?;
            hasher.update(&head);
            hasher.update(encoded);
            Ok(hasher.finish())
        }
    }
}

/// One entry of `sd_aead_encrypted_claims`: a disclosure encrypted for a verifier that
/// holds the key (§12.1).
#[derive(Clone, Debug, PartialEq)]
pub struct EncryptedDisclosure {
    /// The nonce (`N_MIN` bytes of the AEAD: 12 for AES-GCM).
    pub nonce: Vec<u8>,
    /// The ciphertext of the disclosure's byte-string item.
    pub ciphertext: Vec<u8>,
    /// The authentication tag.
    pub tag: Vec<u8>,
    /// The optional key context that selects the key (-08): an unsigned integer, a text
    /// string, or a byte string such as a COSE Key Thumbprint.
    pub key_context: Option<Value>,
}

impl EncryptedDisclosure {
    /// Parses one `sd_aead_encrypted_claims` entry (3 or 4 elements).
    pub fn from_value(value: &Value) -> Result<EncryptedDisclosure, Error> {
        let aead = |detail: String| sd_error(SdCwtErrorKind::Aead, detail);
        let items = value
            .as_array()
            .filter(|items| items.len() == 3 || items.len() == 4)
            .ok_or_else(|| {
                aead(format!(
                    "an AEAD entry must be an array of 3 or 4 items: {}",
                    cbor::to_diagnostic(value)
                ))
            })?;
        let part = |i: usize, name: &str| {
            items[i]
                .as_bytes()
                .map(<[u8]>::to_vec)
                .ok_or_else(|| aead(format!("the AEAD {name} is not a byte string")))
        };
        let key_context = match items.get(3) {
            None => None,
            Some(v @ (Value::Integer(_) | Value::Text(_) | Value::Bytes(_))) if v.as_i64().is_none_or(|i| i >= 0) => {
                Some(v.clone())
            }
            Some(other) => return Err(aead(format!("an AEAD key context is a {}", other.type_name()))),
        };
        Ok(EncryptedDisclosure {
            nonce: part(0, "nonce")?,
            ciphertext: part(1, "ciphertext")?,
            tag: part(2, "tag")?,
            key_context,
        })
    }

    /// The entry as carried in the header.
    pub fn to_value(&self) -> Value {
        let mut items = vec![
            Value::bytes(self.nonce.clone()),
            Value::bytes(self.ciphertext.clone()),
            Value::bytes(self.tag.clone()),
        ];
        items.extend(self.key_context.clone());
        Value::Array(items)
    }

    /// Encrypts `disclosure` (its whole byte-string item, with an empty AAD) under `key`
    /// with a fresh `nonce` of the algorithm's nonce length.
    pub fn encrypt(
        provider: &dyn CryptoProvider,
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: Vec<u8>,
        disclosure: &Disclosure,
        key_context: Option<Value>,
    ) -> Result<EncryptedDisclosure, Error> {
        let plaintext = disclosure.to_value().to_vec();
        let mut sealed = provider.aead_seal(alg, key, &nonce, b"", &plaintext)?;
        let tag = sealed.split_off(sealed.len().saturating_sub(alg.tag_len()));
        Ok(EncryptedDisclosure {
            nonce,
            ciphertext: sealed,
            tag,
            key_context,
        })
    }

    /// Decrypts the entry with `key`: the plaintext must be exactly one byte string in
    /// preferred serialization, holding a disclosure.
    pub fn decrypt(
        &self,
        provider: &dyn CryptoProvider,
        alg: AeadAlgorithm,
        key: &[u8],
        limits: &Limits,
    ) -> Result<Disclosure, Error> {
        if self.nonce.len() != alg.nonce_len() || self.tag.len() != alg.tag_len() {
            return Err(sd_error(
                SdCwtErrorKind::Aead,
                format!(
                    "{alg:?} needs a {}-byte nonce and a {}-byte tag",
                    alg.nonce_len(),
                    alg.tag_len()
                ),
            ));
        }
        let mut sealed = Vec::with_capacity(self.ciphertext.len() + self.tag.len());
        sealed.extend_from_slice(&self.ciphertext);
        sealed.extend_from_slice(&self.tag);
        let plaintext = provider
            .aead_open(alg, key, &self.nonce, b"", &sealed)
            .map_err(|e| sd_error(SdCwtErrorKind::Aead, e.to_string()))?;
        match cbor::decode_with(&plaintext, limits)? {
            Value::Bytes(encoded) => Disclosure::parse(encoded, limits),
            other => Err(malformed(format!(
                "a decrypted disclosure is a {}, not a byte string",
                other.type_name()
            ))),
        }
    }
}
