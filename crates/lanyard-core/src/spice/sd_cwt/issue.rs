//! Issuing SD-CWTs (draft §7, §7.1, §10, §11).
//!
//! The input is a claims set in the draft's pre-issuance form: a map whose keys may be
//! wrapped in the To Be Redacted tag (`58(key): value`) or be decoy requests
//! (`62(n): null`), and whose arrays may hold `58(element)` and `62(n)`, at any depth.
//! Redaction runs depth first, children before parents, in the order entries appear
//! (as the draft's generator does), so a deterministic [`SaltSource`] reproduces the
//! draft's example tokens byte for byte.

use std::collections::HashSet;
use std::sync::Arc;

use super::verify::check_sd_cwt_times;
use super::{
    DigestInput, Disclosure, DisclosureKind, MAX_CLAIMS_DEPTH, NEVER_REDACTED, REDACTED_CLAIM_KEYS,
    REDACTED_ELEMENT_TAG, SALT_LEN, SD_CWT_TYP, SdCwtErrorKind, TO_BE_DECOY_TAG, TO_BE_REDACTED_TAG, header, is_label,
    sd_error,
};
use crate::cbor::{self, Value};
use crate::cose::{CoseSign1, header as cose_header};
use crate::crypto::{CryptoProvider, DigestAlgorithm, SigningKey};
use crate::cwt::{Confirmation, StandardClaims, label};
use crate::error::Error;

/// What a salt is requested for. Salts are requested in the order disclosures are made.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum SaltRequest<'a> {
    /// A redacted map entry, with its (already redacted) value.
    Claim {
        /// The claim key.
        key: &'a Value,
        /// The claim value as it will appear in the disclosure.
        value: &'a Value,
    },
    /// A redacted array element, as it will appear in the disclosure.
    Element {
        /// The element.
        value: &'a Value,
    },
    /// A decoy, with the number its request carried (`62(n)`).
    Decoy {
        /// The decoy's number.
        index: u64,
    },
}

/// Where an issuer's salts come from. Production issuers use [`RandomSalts`]; tests and
/// the working group's interop harness supply fixed salts.
pub trait SaltSource {
    /// A 16-byte salt for one disclosure.
    fn salt(&mut self, request: SaltRequest<'_>) -> Result<[u8; SALT_LEN], Error>;
}

/// Fresh random salts from the crypto provider, each unique within one issuer run
/// (§7.1: at least 128 bits of entropy; §10: every salt unique).
#[derive(Debug)]
pub struct RandomSalts {
    provider: Arc<dyn CryptoProvider>,
    issued: HashSet<[u8; SALT_LEN]>,
}

impl RandomSalts {
    /// Salts drawn from `provider`.
    pub fn new(provider: Arc<dyn CryptoProvider>) -> RandomSalts {
        RandomSalts {
            provider,
            issued: HashSet::new(),
        }
    }
}

impl SaltSource for RandomSalts {
    fn salt(&mut self, _request: SaltRequest<'_>) -> Result<[u8; SALT_LEN], Error> {
        loop {
            let mut salt = [0u8; SALT_LEN];
            self.provider.fill_random(&mut salt)?;
            if self.issued.insert(salt) {
                return Ok(salt);
            }
        }
    }
}

/// An issued SD-CWT: the signed token, with every disclosure in its `sd_claims`.
#[derive(Clone, Debug)]
pub struct IssuedSdCwt {
    token: CoseSign1,
    disclosures: Vec<Disclosure>,
}

impl IssuedSdCwt {
    /// The signed COSE_Sign1.
    pub fn token(&self) -> &CoseSign1 {
        &self.token
    }

    /// Every disclosure, decoys included, in the order they are in `sd_claims`.
    pub fn disclosures(&self) -> &[Disclosure] {
        &self.disclosures
    }

    /// The encoded SD-CWT, as the holder receives it.
    pub fn to_vec(&self) -> Vec<u8> {
        self.token.to_vec()
    }
}

/// Issues SD-CWTs with one signing key.
#[derive(Clone, Debug)]
pub struct SdCwtIssuer {
    provider: Arc<dyn CryptoProvider>,
    key: Arc<dyn SigningKey>,
    kid: Option<Vec<u8>>,
    sd_alg: DigestAlgorithm,
    digest_input: DigestInput,
}

impl SdCwtIssuer {
    /// An issuer signing with `key` (use a fully specified algorithm such as ESP256 or
    /// Ed25519, §7.1), SHA-256 digests over the full disclosure item, no `kid`.
    pub fn new(provider: Arc<dyn CryptoProvider>, key: Arc<dyn SigningKey>) -> SdCwtIssuer {
        SdCwtIssuer {
            provider,
            key,
            kid: None,
            sd_alg: DigestAlgorithm::Sha256,
            digest_input: DigestInput::FullItem,
        }
    }

    /// Names the key in the protected header (`kid`, label 4).
    pub fn with_kid(mut self, kid: impl Into<Vec<u8>>) -> SdCwtIssuer {
        self.kid = Some(kid.into());
        self
    }

    /// The digest algorithm (`sd_alg`).
    pub fn with_sd_alg(mut self, alg: DigestAlgorithm) -> SdCwtIssuer {
        self.sd_alg = alg;
        self
    }

    /// What digests are computed over (the default reproduces the draft's examples).
    pub fn with_digest_input(mut self, input: DigestInput) -> SdCwtIssuer {
        self.digest_input = input;
        self
    }

    /// Redacts, salts and signs `claims` (a pre-issuance claims map, see the module
    /// documentation). `iss` (text), `sub` (possibly redacted) and `cnf` (a COSE_Key) are
    /// required; claims that must never be redacted (`iss`, `aud`, `exp`, `nbf`, `iat`,
    /// `cti`, `cnf`, `cnonce`) cannot carry tag 58.
    pub fn issue(&self, claims: &Value, salts: &mut dyn SaltSource) -> Result<IssuedSdCwt, Error> {
        let entries = claims.as_map().ok_or_else(|| invalid("the claims set is not a map"))?;
        check_top_level(entries)?;
        let mut redactor = Redactor {
            issuer: self,
            salts,
            disclosures: Vec::new(),
            decoy_indices: HashSet::new(),
        };
        let payload = Value::Map(redactor.redact_map(entries, 1)?);
        let disclosures = redactor.disclosures;

        let mut protected = vec![(Value::int(cose_header::ALG), Value::int(self.key.algorithm().cose_id()))];
        if let Some(kid) = &self.kid {
            protected.push((Value::int(cose_header::KID), Value::bytes(kid.clone())));
        }
        protected.push((Value::int(cose_header::TYP), Value::int(SD_CWT_TYP)));
        protected.push((Value::int(header::SD_ALG), Value::int(self.sd_alg.cose_id())));
        let mut unprotected = Vec::new();
        if !disclosures.is_empty() {
            unprotected.push((
                Value::int(header::SD_CLAIMS),
                Value::Array(disclosures.iter().map(Disclosure::to_value).collect()),
            ));
        }
        let token = CoseSign1::sign(protected, unprotected, payload.to_vec(), self.key.as_ref())?;
        Ok(IssuedSdCwt { token, disclosures })
    }
}

fn invalid(detail: impl Into<String>) -> Error {
    sd_error(SdCwtErrorKind::InvalidPreissuance, detail)
}

/// The top-level rules: required claims of the right types, never-redacted claims not
/// marked, time claims in order.
fn check_top_level(entries: &[(Value, Value)]) -> Result<(), Error> {
    let plain: Vec<(Value, Value)> = entries.iter().filter(|(k, _)| is_label(k)).cloned().collect();
    for (key, _) in entries {
        if let Value::Tag(TO_BE_REDACTED_TAG, inner) = key
            && inner.as_i64().is_some_and(|k| NEVER_REDACTED.contains(&k))
        {
            return Err(invalid(format!(
                "claim {} must never be redacted",
                cbor::to_diagnostic(inner)
            )));
        }
    }
    let standard = StandardClaims::from_map(&plain)?;
    if standard.iss.is_none() {
        return Err(Error::MissingClaim("iss"));
    }
    let sub_present = entries.iter().any(|(k, _)| {
        k.as_i64() == Some(label::SUB)
            || matches!(k, Value::Tag(TO_BE_REDACTED_TAG, inner) if inner.as_i64() == Some(label::SUB))
    });
    if !sub_present {
        return Err(Error::MissingClaim("sub"));
    }
    let cnf = plain
        .iter()
        .find(|(k, _)| k.as_i64() == Some(label::CNF))
        .ok_or(Error::MissingClaim("cnf"))?;
    if Confirmation::from_value(&cnf.1)?.key().is_none() {
        return Err(sd_error(
            SdCwtErrorKind::ConfirmationKey,
            "Lanyard issues cnf as a COSE_Key (method 1)",
        ));
    }
    check_sd_cwt_times(&standard)
}

struct Redactor<'a> {
    issuer: &'a SdCwtIssuer,
    salts: &'a mut dyn SaltSource,
    disclosures: Vec<Disclosure>,
    decoy_indices: HashSet<u64>,
}

impl Redactor<'_> {
    fn disclose(&mut self, kind: DisclosureKind) -> Result<Value, Error> {
        let salt = match &kind {
            DisclosureKind::Claim { key, value } => self.salts.salt(SaltRequest::Claim { key, value })?,
            DisclosureKind::Element { value } => self.salts.salt(SaltRequest::Element { value })?,
            DisclosureKind::Decoy => unreachable_decoy()?,
        };
        self.push(Disclosure::new(salt, kind))
    }

    fn decoy(&mut self, index: &Value) -> Result<Value, Error> {
        let index = index.as_u64().filter(|n| *n > 0).ok_or_else(|| {
            invalid(format!(
                "a decoy request needs a positive integer, not {}",
                cbor::to_diagnostic(index)
            ))
        })?;
        if !self.decoy_indices.insert(index) {
            return Err(invalid(format!("decoy {index} is requested twice")));
        }
        let salt = self.salts.salt(SaltRequest::Decoy { index })?;
        self.push(Disclosure::new(salt, DisclosureKind::Decoy))
    }

    fn push(&mut self, disclosure: Disclosure) -> Result<Value, Error> {
        let digest = disclosure.digest(
            self.issuer.provider.as_ref(),
            self.issuer.sd_alg,
            self.issuer.digest_input,
        )?;
        self.disclosures.push(disclosure);
        Ok(Value::bytes(digest.as_bytes().to_vec()))
    }

    fn redact_map(&mut self, entries: &[(Value, Value)], level: usize) -> Result<Vec<(Value, Value)>, Error> {
        let mut keys_seen: Vec<&Value> = Vec::with_capacity(entries.len());
        let mut out = Vec::with_capacity(entries.len());
        let mut digests = Vec::new();
        for (key, value) in entries {
            let plain_key = match key {
                Value::Tag(TO_BE_REDACTED_TAG, inner) if is_label(inner) => Some(inner.as_ref()),
                Value::Tag(TO_BE_REDACTED_TAG, inner) => {
                    return Err(invalid(format!(
                        "tag 58 must wrap an integer or short text key, not {}",
                        cbor::to_diagnostic(inner)
                    )));
                }
                Value::Tag(TO_BE_DECOY_TAG, _) => None,
                k if is_label(k) => Some(k),
                other => {
                    return Err(invalid(format!("a claims map key is {}", cbor::to_diagnostic(other))));
                }
            };
            if let Some(k) = plain_key {
                if keys_seen.contains(&k) {
                    return Err(invalid(format!(
                        "key {} appears twice (with or without tag 58, §6.4)",
                        cbor::to_diagnostic(k)
                    )));
                }
                keys_seen.push(k);
            }
            match key {
                Value::Tag(TO_BE_REDACTED_TAG, inner) => {
                    let value = self.redact_value(value, level, false)?;
                    digests.push(self.disclose(DisclosureKind::Claim {
                        key: inner.as_ref().clone(),
                        value,
                    })?);
                }
                Value::Tag(_, index) => {
                    if *value != Value::Null {
                        return Err(invalid("a decoy map entry must have the value null (§11.2)"));
                    }
                    digests.push(self.decoy(index)?);
                }
                key => out.push((key.clone(), self.redact_value(value, level, false)?)),
            }
        }
        if !digests.is_empty() {
            out.push((Value::Simple(REDACTED_CLAIM_KEYS), Value::Array(digests)));
        }
        Ok(out)
    }

    /// Redacts inside a value at `level`; `element` is true for array elements, where
    /// tags 58 and 62 are allowed.
    fn redact_value(&mut self, value: &Value, level: usize, element: bool) -> Result<Value, Error> {
        if level > MAX_CLAIMS_DEPTH {
            return Err(sd_error(
                SdCwtErrorKind::TooDeep,
                format!("claims nested deeper than {MAX_CLAIMS_DEPTH} levels"),
            ));
        }
        match value {
            Value::Map(entries) => Ok(Value::Map(self.redact_map(entries, level + 1)?)),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.redact_value(item, level + 1, true)?);
                }
                Ok(Value::Array(out))
            }
            Value::Tag(TO_BE_REDACTED_TAG, inner) if element => {
                let value = self.redact_value(inner, level, false)?;
                let digest = self.disclose(DisclosureKind::Element { value })?;
                Ok(Value::Tag(REDACTED_ELEMENT_TAG, Box::new(digest)))
            }
            Value::Tag(TO_BE_DECOY_TAG, index) if element => {
                let digest = self.decoy(index)?;
                Ok(Value::Tag(REDACTED_ELEMENT_TAG, Box::new(digest)))
            }
            Value::Tag(tag @ (TO_BE_REDACTED_TAG | TO_BE_DECOY_TAG), _) => Err(invalid(format!(
                "tag {tag} marks map keys and array elements, not map values or tag contents"
            ))),
            Value::Tag(REDACTED_ELEMENT_TAG, _) | Value::Simple(REDACTED_CLAIM_KEYS) => Err(invalid(
                "tag 60 and simple(59) are produced by the issuer, not given to it",
            )),
            Value::Tag(tag, content) => Ok(Value::Tag(
                *tag,
                Box::new(self.redact_value(content, level + 1, false)?),
            )),
            other => Ok(other.clone()),
        }
    }
}

/// Decoys get their salt through [`Redactor::decoy`], never through `disclose`.
fn unreachable_decoy() -> Result<[u8; SALT_LEN], Error> {
    Err(invalid("internal: a decoy disclosure without its index"))
}
