//! Verifying an SD-KBT and restoring the claims it discloses (draft §9), and the parts the
//! holder's validation (§7.2) shares: the header checks, the digest table and the restore
//! walk.
//!
//! [`SdCwtVerifier::verify`] runs, in this order (every step must pass):
//! 1. size limit; strict CBOR decode of the SD-KBT (tag 18);
//! 2. SD-KBT headers: `typ` 294, `alg` on the holder allow-list, `kcwt` present, no
//!    `CWT_Claims`, CWT-legal values only;
//! 3. the SD-CWT in `kcwt` (tag 18): `typ` 293 (or a `+sd-cwt` type), no pre-06 code
//!    points, `sd_alg` allowed, `sd_claims`/`sd_aead_encrypted_claims` non-empty arrays,
//!    CWT-legal header values;
//! 4. the issuer key (by `kid`, or the only fitting trusted key), `alg` on the issuer
//!    allow-list, the issuer signature over the protected bytes as received;
//! 5. the payload: a claims map with only legal keys and values; `iss` equals the trusted
//!    issuer's; `cnf` present; the SD-CWT time rules (§9 step 3) and its validity at `now`;
//! 6. the SD-KBT signature under the `cnf` key;
//! 7. the SD-KBT claims: `aud` present, `iss`/`sub` absent, `iat` or `cti`, every
//!    cross-token time rule (§9 step 6), validity at `now` and a maximum age, `cnonce`;
//! 8. the audience of the SD-KBT and of the SD-CWT (when present);
//! 9. disclosures: shape, salt length, no duplicates; AEAD entries decrypted with the
//!    verifier's keys; the restore walk (each digest used at most once, each disclosure
//!    at the position its digest had, no key conflicts, never-redacted claims never
//!    restored, nesting limit); any disclosure left unused rejects the presentation.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::disclosure::digest_of;
use super::{DigestInput, PathSegment};
use super::{
    Disclosure, DisclosureKind, EncryptedDisclosure, KBT_MEDIA_TYPE, KBT_TYP, MAX_CLAIMS_DEPTH, NEVER_REDACTED,
    REDACTED_CLAIM_KEYS, REDACTED_ELEMENT_TAG, SD_CWT_MEDIA_TYPE, SD_CWT_TYP, SdCwtErrorKind, TO_BE_DECOY_TAG,
    TO_BE_REDACTED_TAG, check_header, check_safe_key, check_safe_value, header, is_label, sd_error,
};
use crate::alg::{AlgSet, Algorithm};
use crate::cbor::{self, Limits, Value};
use crate::cose::{CoseKey, CoseSign1, header as cose_header};
use crate::crypto::{AeadAlgorithm, CryptoProvider, Digest, DigestAlgorithm, VerifyingKey};
use crate::cwt::{Confirmation, StandardClaims, label};
use crate::error::Error;
use crate::time::UnixTime;

/// A trusted issuer key.
#[derive(Clone, Debug)]
pub struct IssuerKey {
    /// The verifying key (bound to one algorithm).
    pub key: Arc<dyn VerifyingKey>,
    /// The `kid` the SD-CWT's protected header names it by. A key without one is used
    /// for any SD-CWT of its algorithm when it is the only such key without a `kid`.
    pub kid: Option<Vec<u8>>,
    /// The `iss` an SD-CWT signed by this key must carry, if checked.
    pub issuer: Option<String>,
}

impl IssuerKey {
    /// A trusted key without `kid` or issuer name.
    pub fn new(key: Arc<dyn VerifyingKey>) -> IssuerKey {
        IssuerKey {
            key,
            kid: None,
            issuer: None,
        }
    }

    /// The same key, found by `kid`.
    pub fn with_kid(mut self, kid: impl Into<Vec<u8>>) -> IssuerKey {
        self.kid = Some(kid.into());
        self
    }

    /// The same key, valid only for SD-CWTs whose `iss` is `issuer`.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> IssuerKey {
        self.issuer = Some(issuer.into());
        self
    }
}

/// A symmetric key for encrypted disclosures. `Debug` shows no key bytes.
#[derive(Clone)]
pub struct AeadKey {
    /// The AEAD algorithm.
    pub alg: AeadAlgorithm,
    /// The key context it is selected by, when entries carry one.
    pub context: Option<Value>,
    key: Vec<u8>,
}

impl AeadKey {
    /// A key for `alg`; `context` matches the optional fourth element of AEAD entries.
    pub fn new(alg: AeadAlgorithm, key: Vec<u8>, context: Option<Value>) -> AeadKey {
        AeadKey { alg, context, key }
    }
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AeadKey")
            .field("alg", &self.alg)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// What a verifier (and a holder validating its SD-CWT) accepts.
#[derive(Clone, Debug)]
pub struct SdCwtPolicy {
    /// Algorithms the issuer may sign with.
    pub issuer_algorithms: AlgSet,
    /// Algorithms the holder may sign the SD-KBT with.
    pub holder_algorithms: AlgSet,
    /// Digest algorithms accepted as `sd_alg`.
    pub sd_algs: Vec<DigestAlgorithm>,
    /// What disclosure digests are computed over.
    pub digest_input: DigestInput,
    /// Allowed clock skew, in seconds.
    pub leeway: u64,
    /// The largest SD-KBT (or SD-CWT, for the holder), in bytes.
    pub max_size: usize,
    /// The deepest claims nesting (§6.5 levels).
    pub max_depth: usize,
    /// How old an SD-KBT's `iat` may be, in seconds.
    pub kbt_max_age: u64,
}

impl Default for SdCwtPolicy {
    /// Every implemented signature and digest algorithm, the full-item digest, 60 s of
    /// leeway, 64 KiB, 16 levels, SD-KBTs at most 5 minutes old.
    fn default() -> SdCwtPolicy {
        SdCwtPolicy {
            issuer_algorithms: AlgSet::every(),
            holder_algorithms: AlgSet::every(),
            sd_algs: DigestAlgorithm::ALL.to_vec(),
            digest_input: DigestInput::FullItem,
            leeway: 60,
            max_size: 64 * 1024,
            max_depth: MAX_CLAIMS_DEPTH,
            kbt_max_age: 300,
        }
    }
}

impl SdCwtPolicy {
    /// The SD-CWT's `alg`, if the policy allows issuers to sign with it.
    pub(crate) fn issuer_algorithm(&self, sd_cwt: &CoseSign1) -> Result<Algorithm, Error> {
        let alg = sd_cwt.algorithm()?;
        if !self.issuer_algorithms.contains(alg) {
            return Err(Error::AlgorithmNotAllowed {
                alg: alg.to_string(),
                reason: "not allowed for SD-CWT issuers by the policy",
            });
        }
        Ok(alg)
    }

    /// The CBOR limits for one decode: the size limit, and the claims depth plus room
    /// for the COSE framing (the exact §6.5 depth is checked by the restore walk).
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_len: self.max_size,
            max_depth: self.max_depth + 8,
        }
    }
}

/// What this verifier expects of one presentation.
#[derive(Clone, Copy, Debug)]
pub struct PresentationContext<'a> {
    /// The verifier's audience: the SD-KBT `aud` must equal it (and the SD-CWT's, if any).
    pub audience: &'a str,
    /// The nonce this verifier issued, when it requires one: the SD-KBT `cnonce` must
    /// equal it.
    pub nonce: Option<&'a [u8]>,
}

/// A verified presentation: the Validated Disclosed Claims Set and what was checked.
#[derive(Clone, Debug)]
pub struct VerifiedPresentation {
    /// The claims the issuer signed and the holder disclosed, redactions removed: a plain
    /// CWT claims map (arrays may be shorter than issued).
    pub claims: Value,
    /// The registered claims of `claims`.
    pub standard: StandardClaims,
    /// The holder's key (from `cnf`), which signed the SD-KBT.
    pub holder_key: CoseKey,
    /// The registered claims of the SD-KBT.
    pub kbt: StandardClaims,
    /// The `kid` of the issuer key, if the SD-CWT named one.
    pub issuer_kid: Option<Vec<u8>>,
    /// The digest algorithm (`sd_alg`).
    pub sd_alg: DigestAlgorithm,
    /// How many redacted claims were disclosed.
    pub disclosed: usize,
    /// How many decoy disclosures were presented.
    pub decoys: usize,
    /// How many redacted claims and decoys stayed undisclosed.
    pub undisclosed: usize,
}

/// Verifies SD-KBT presentations (§9).
#[derive(Clone, Debug)]
pub struct SdCwtVerifier {
    provider: Arc<dyn CryptoProvider>,
    issuers: Vec<IssuerKey>,
    aead_keys: Vec<AeadKey>,
    policy: SdCwtPolicy,
}

impl SdCwtVerifier {
    /// A verifier trusting no issuer yet.
    pub fn new(provider: Arc<dyn CryptoProvider>, policy: SdCwtPolicy) -> SdCwtVerifier {
        SdCwtVerifier {
            provider,
            issuers: Vec::new(),
            aead_keys: Vec::new(),
            policy,
        }
    }

    /// Trusts `key` to sign SD-CWTs.
    pub fn with_issuer(mut self, key: IssuerKey) -> SdCwtVerifier {
        self.issuers.push(key);
        self
    }

    /// Decrypts encrypted disclosures with `key`.
    pub fn with_aead_key(mut self, key: AeadKey) -> SdCwtVerifier {
        self.aead_keys.push(key);
        self
    }

    /// The policy.
    pub fn policy(&self) -> &SdCwtPolicy {
        &self.policy
    }

    /// Verifies one SD-KBT for `context` at `now` and returns the disclosed claims.
    pub fn verify(
        &self,
        kbt_bytes: &[u8],
        context: &PresentationContext<'_>,
        now: UnixTime,
    ) -> Result<VerifiedPresentation, Error> {
        let policy = &self.policy;
        if kbt_bytes.len() > policy.max_size {
            return Err(Error::TooLarge {
                limit: policy.max_size,
                actual: kbt_bytes.len(),
            });
        }
        let limits = policy.limits();
        let kbt = CoseSign1::decode(kbt_bytes, &limits)?;

        // The SD-KBT headers (§8.1, §6.3).
        check_typ(kbt.protected_value(cose_header::TYP), KBT_TYP, KBT_MEDIA_TYPE, None)?;
        kbt.check_critical(&[])?;
        let kbt_alg = kbt.algorithm()?;
        if !policy.holder_algorithms.contains(kbt_alg) {
            return Err(Error::AlgorithmNotAllowed {
                alg: kbt_alg.to_string(),
                reason: "not allowed for SD-KBTs by the policy",
            });
        }
        if kbt.protected_value(cose_header::CWT_CLAIMS).is_some() {
            return Err(sd_error(
                SdCwtErrorKind::InvalidHeader,
                "an SD-KBT must not carry CWT_Claims",
            ));
        }
        check_header(kbt.protected(), &[cose_header::KCWT], policy.max_depth)?;
        check_header(kbt.unprotected(), &[], policy.max_depth)?;
        let kcwt = kbt
            .protected_value(cose_header::KCWT)
            .ok_or_else(|| sd_error(SdCwtErrorKind::InvalidHeader, "the SD-KBT has no kcwt"))?;
        let sd_cwt = CoseSign1::from_value(kcwt.clone())?;

        // The SD-CWT: headers, issuer signature, payload.
        let (sd_alg, aead_alg) = check_sd_cwt_headers(&sd_cwt, policy)?;
        let issuer = self.issuer_key(&sd_cwt)?;
        sd_cwt.verify(issuer.key.as_ref())?;
        let (payload, header_claims) = decode_claims(&sd_cwt, &limits)?;
        let top = StandardClaims::from_map(&payload)?;
        if let Some(expected) = &issuer.issuer
            && top.iss.as_deref() != Some(expected)
        {
            return Err(sd_error(
                SdCwtErrorKind::IssuerMismatch,
                format!("iss is {:?}, the key belongs to {expected:?}", top.iss),
            ));
        }
        check_sd_cwt_times(&top)?;
        top.check_validity(now, policy.leeway)?;
        let holder_key = confirmation_key(&payload)?;

        // The SD-KBT signature under cnf, then its claims.
        let kbt_key = holder_key.verifying_key(self.provider.as_ref(), kbt_alg)?;
        kbt.verify(kbt_key.as_ref()).map_err(|e| match e {
            Error::BadSignature => sd_error(
                SdCwtErrorKind::KbtBadSignature,
                "the SD-KBT is not signed by the cnf key",
            ),
            other => other,
        })?;
        let kbt_payload = match cbor::decode_with(kbt.payload(), &limits)? {
            Value::Map(entries) => entries,
            other => {
                return Err(Error::malformed(format!(
                    "the SD-KBT payload is a {}",
                    other.type_name()
                )));
            }
        };
        for (k, v) in &kbt_payload {
            check_safe_key(k)?;
            check_safe_value(v, 1, policy.max_depth)?;
        }
        let kbt_claims = StandardClaims::from_map(&kbt_payload)?;
        check_kbt_claims(&kbt_claims, &top, now, policy)?;
        match (context.nonce, kbt_claims.cnonce.as_deref()) {
            (Some(_), None) => return Err(Error::MissingClaim("cnonce")),
            (Some(expected), Some(found)) if expected != found => {
                return Err(sd_error(
                    SdCwtErrorKind::NonceMismatch,
                    "cnonce is not the verifier's nonce",
                ));
            }
            _ => {}
        }
        for aud in [kbt_claims.aud.as_deref(), top.aud.as_deref()].into_iter().flatten() {
            if aud != context.audience {
                return Err(Error::WrongAudience {
                    expected: context.audience.to_owned(),
                    found: vec![aud.to_owned()],
                });
            }
        }

        // Disclosures and the restore walk.
        let mut disclosures = presented_disclosures(&sd_cwt, &limits)?;
        disclosures.extend(self.decrypt_disclosures(&sd_cwt, aead_alg, &limits)?);
        let table = DigestTable::new(self.provider.as_ref(), sd_alg, policy.digest_input, disclosures)?;
        let mut restorer = Restorer::new(table, sd_alg.output_len(), policy.max_depth);
        let claims = restorer.restore_claims(payload, header_claims)?;
        if let Some(unused) = restorer.table.first_unused() {
            return Err(sd_error(
                SdCwtErrorKind::DisclosureUnmatched,
                format!("disclosure {unused} matches no digest in the SD-CWT"),
            ));
        }
        let standard = StandardClaims::from_map(claims.as_map().unwrap_or_default())?;
        Ok(VerifiedPresentation {
            claims,
            standard,
            holder_key,
            kbt: kbt_claims,
            issuer_kid: sd_cwt.kid().map(<[u8]>::to_vec),
            sd_alg,
            disclosed: restorer.disclosed,
            decoys: restorer.decoys,
            undisclosed: restorer.undisclosed,
        })
    }

    fn issuer_key(&self, sd_cwt: &CoseSign1) -> Result<&IssuerKey, Error> {
        let alg = self.policy.issuer_algorithm(sd_cwt)?;
        let kid = sd_cwt.kid();
        // A key with a kid is found by it; a key without one matches when it is the only
        // trusted key for the algorithm (the only one without a kid, if the token has one).
        let only = |without_kid: bool| {
            let mut keys = self
                .issuers
                .iter()
                .filter(|k| k.key.algorithm() == alg && (!without_kid || k.kid.is_none()));
            match (keys.next(), keys.next()) {
                (Some(key), None) => Some(key),
                _ => None,
            }
        };
        let found = match kid {
            Some(kid) => self
                .issuers
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .or_else(|| only(true)),
            None => only(false),
        };
        let unknown = |reason| Error::UnknownKey {
            trust_domain: "SD-CWT issuers".into(),
            kid: kid.map(|k| String::from_utf8_lossy(k).into_owned()),
            reason,
        };
        let key = found.ok_or_else(|| {
            unknown(if kid.is_some() {
                "no trusted issuer key has this kid"
            } else {
                "no kid, and not exactly one trusted key for the algorithm"
            })
        })?;
        if key.key.algorithm() != alg {
            return Err(Error::AlgorithmMismatch {
                expected: key.key.algorithm().to_string(),
                found: alg.to_string(),
            });
        }
        Ok(key)
    }

    /// The disclosures in `sd_aead_encrypted_claims` this verifier can decrypt. An entry
    /// whose key context names one of our keys must decrypt; others are skipped.
    fn decrypt_disclosures(
        &self,
        sd_cwt: &CoseSign1,
        alg: AeadAlgorithm,
        limits: &Limits,
    ) -> Result<Vec<Disclosure>, Error> {
        let Some(entries) = sd_cwt.unprotected_value(header::SD_AEAD_ENCRYPTED_CLAIMS) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in entries.as_array().unwrap_or_default() {
            let encrypted = EncryptedDisclosure::from_value(entry)?;
            let keys = self.aead_keys.iter().filter(|k| k.alg == alg);
            match &encrypted.key_context {
                Some(context) => {
                    if let Some(key) = keys.clone().find(|k| k.context.as_ref() == Some(context)) {
                        out.push(encrypted.decrypt(self.provider.as_ref(), alg, &key.key, limits)?);
                    }
                }
                None => {
                    if let Some(disclosure) = keys
                        .filter_map(|k| encrypted.decrypt(self.provider.as_ref(), alg, &k.key, limits).ok())
                        .next()
                    {
                        out.push(disclosure);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Checks `typ` (RFC 9596): the content format, the media type, or (for SD-CWTs) a type
/// with the `+sd-cwt` suffix.
pub(crate) fn check_typ(
    value: Option<&Value>,
    number: u64,
    media_type: &'static str,
    suffix: Option<&str>,
) -> Result<(), Error> {
    let ok = match value {
        Some(Value::Integer(i)) => i.to_u64() == Some(number),
        Some(Value::Text(t)) => t == media_type || suffix.is_some_and(|s| t.ends_with(s) && t.len() > s.len()),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    if let Some(Value::Text(t)) = value
        && t == "application/sd+cwt"
    {
        return Err(sd_error(
            SdCwtErrorKind::LegacyCodePoint,
            "typ application/sd+cwt is from draft -03; -06 uses 293",
        ));
    }
    Err(Error::WrongType {
        expected: media_type,
        found: value.map(cbor::to_diagnostic),
    })
}

/// The SD-CWT header checks shared by holder and verifier; returns `sd_alg` and `sd_aead`.
pub(crate) fn check_sd_cwt_headers(
    token: &CoseSign1,
    policy: &SdCwtPolicy,
) -> Result<(DigestAlgorithm, AeadAlgorithm), Error> {
    check_typ(
        token.protected_value(cose_header::TYP),
        SD_CWT_TYP,
        SD_CWT_MEDIA_TYPE,
        Some("+sd-cwt"),
    )?;
    if token.protected_value(header::LEGACY_SD_ALG).is_some() {
        return Err(sd_error(
            SdCwtErrorKind::LegacyCodePoint,
            "header 18 carried sd_alg before draft -06; it is 170 now",
        ));
    }
    token.check_critical(&[header::SD_ALG, header::SD_AEAD, cose_header::CWT_CLAIMS])?;
    check_header(token.protected(), &[cose_header::CWT_CLAIMS], policy.max_depth)?;
    check_header(token.unprotected(), &[], policy.max_depth)?;
    let sd_alg = match token.protected_value(header::SD_ALG) {
        None => DigestAlgorithm::Sha256,
        Some(v) => {
            let id = v
                .as_i64()
                .ok_or_else(|| sd_error(SdCwtErrorKind::UnknownSdAlg, "sd_alg is not an integer"))?;
            DigestAlgorithm::from_cose_id(id)
                .filter(|alg| policy.sd_algs.contains(alg))
                .ok_or_else(|| sd_error(SdCwtErrorKind::UnknownSdAlg, format!("sd_alg {id} is not supported")))?
        }
    };
    if token.unprotected_value(header::SD_ALG).is_some() || token.unprotected_value(header::SD_AEAD).is_some() {
        return Err(sd_error(
            SdCwtErrorKind::InvalidHeader,
            "sd_alg and sd_aead must be protected",
        ));
    }
    let aead_alg = match token.protected_value(header::SD_AEAD) {
        None => AeadAlgorithm::Aes128Gcm,
        Some(v) => {
            let id = v
                .as_u64()
                .filter(|id| *id <= 0xffff)
                .ok_or_else(|| sd_error(SdCwtErrorKind::Aead, "sd_aead is not a uint .size 2"))?;
            if matches!(id, 3..=14 | 18 | 19 | 21 | 22 | 24 | 25 | 27 | 28) {
                return Err(sd_error(
                    SdCwtErrorKind::Aead,
                    format!("AEAD {id} is forbidden (§16.7)"),
                ));
            }
            AeadAlgorithm::from_iana_id(id)
                .ok_or_else(|| sd_error(SdCwtErrorKind::Aead, format!("AEAD {id} is not implemented")))?
        }
    };
    for label in [header::SD_CLAIMS, header::SD_AEAD_ENCRYPTED_CLAIMS] {
        if token.protected_value(label).is_some() {
            return Err(sd_error(
                SdCwtErrorKind::InvalidHeader,
                format!("header {label} must be unprotected"),
            ));
        }
        match token.unprotected_value(label) {
            None => {}
            Some(Value::Array(items)) if !items.is_empty() => {}
            Some(_) => {
                return Err(sd_error(
                    SdCwtErrorKind::InvalidHeader,
                    format!("header {label} must be a non-empty array (§9 step 2)"),
                ));
            }
        }
    }
    Ok((sd_alg, aead_alg))
}

/// The disclosures of `sd_claims`.
pub(crate) fn presented_disclosures(token: &CoseSign1, limits: &Limits) -> Result<Vec<Disclosure>, Error> {
    let Some(list) = token.unprotected_value(header::SD_CLAIMS) else {
        return Ok(Vec::new());
    };
    list.as_array()
        .unwrap_or_default()
        .iter()
        .map(|item| match item {
            Value::Bytes(encoded) => Disclosure::parse(encoded.clone(), limits),
            other => Err(sd_error(
                SdCwtErrorKind::InvalidHeader,
                format!("an sd_claims entry is a {}, not a byte string", other.type_name()),
            )),
        })
        .collect()
}

/// The entries of a claims map.
pub(crate) type ClaimsMap = Vec<(Value, Value)>;

/// The payload claims map and the protected `CWT_Claims` map (if any).
pub(crate) fn decode_claims(token: &CoseSign1, limits: &Limits) -> Result<(ClaimsMap, Option<ClaimsMap>), Error> {
    let payload = match cbor::decode_with(token.payload(), limits)? {
        Value::Map(entries) => entries,
        other => {
            return Err(Error::malformed(format!(
                "the SD-CWT payload is a {}, not a claims map",
                other.type_name()
            )));
        }
    };
    let header_claims = match token.protected_value(cose_header::CWT_CLAIMS) {
        None => None,
        Some(Value::Map(entries)) => Some(entries.clone()),
        Some(_) => return Err(sd_error(SdCwtErrorKind::InvalidHeader, "CWT_Claims is not a map")),
    };
    Ok((payload, header_claims))
}

/// The `cnf` key of a payload (top-level, never redacted).
pub(crate) fn confirmation_key(payload: &[(Value, Value)]) -> Result<CoseKey, Error> {
    let cnf = payload
        .iter()
        .find(|(k, _)| k.as_i64() == Some(label::CNF))
        .map(|(_, v)| v)
        .ok_or(Error::MissingClaim("cnf"))?;
    match Confirmation::from_value(cnf)? {
        Confirmation::Key(key) => Ok(key),
        _ => Err(sd_error(
            SdCwtErrorKind::ConfirmationKey,
            "only a COSE_Key cnf can be verified without a key lookup",
        )),
    }
}

fn rule(ok: bool, what: &str) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(sd_error(SdCwtErrorKind::TimeInconsistent, what.to_owned()))
    }
}

fn both<T: Copy>(a: Option<T>, b: Option<T>, check: impl Fn(T, T) -> bool) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => check(a, b),
        _ => true,
    }
}

/// §9 step 3: the SD-CWT's own time claims are ordered.
pub(crate) fn check_sd_cwt_times(cwt: &StandardClaims) -> Result<(), Error> {
    rule(both(cwt.nbf, cwt.iat, |n, i| n <= i), "SD-CWT nbf is after its iat")?;
    rule(both(cwt.nbf, cwt.exp, |n, e| n < e), "SD-CWT nbf is not before its exp")?;
    rule(both(cwt.iat, cwt.exp, |i, e| i < e), "SD-CWT iat is not before its exp")
}

/// §9 step 6 and Table 3: the SD-KBT claims, its time rules against the SD-CWT, and its
/// validity at `now`.
fn check_kbt_claims(
    kbt: &StandardClaims,
    cwt: &StandardClaims,
    now: UnixTime,
    policy: &SdCwtPolicy,
) -> Result<(), Error> {
    if kbt.aud.is_none() {
        return Err(Error::MissingClaim("aud"));
    }
    if kbt.iss.is_some() {
        return Err(Error::ForbiddenClaim("iss"));
    }
    if kbt.sub.is_some() {
        return Err(Error::ForbiddenClaim("sub"));
    }
    if kbt.iat.is_none() {
        if kbt.cti.is_none() {
            return Err(Error::MissingClaim("iat"));
        }
        rule(
            kbt.exp.is_none() && kbt.nbf.is_none(),
            "an SD-KBT without iat must not have exp or nbf",
        )?;
    }
    rule(both(kbt.nbf, kbt.iat, |n, i| n <= i), "SD-KBT nbf is after its iat")?;
    rule(both(kbt.iat, kbt.exp, |i, e| i < e), "SD-KBT iat is not before its exp")?;
    rule(
        both(kbt.exp, cwt.exp, |k, c| k <= c),
        "the SD-KBT expires after the SD-CWT",
    )?;
    rule(
        both(kbt.nbf, cwt.nbf, |k, c| k >= c),
        "the SD-KBT nbf is before the SD-CWT nbf",
    )?;
    rule(
        both(kbt.iat, cwt.iat, |k, c| k >= c),
        "the SD-KBT was issued before the SD-CWT",
    )?;
    rule(
        both(kbt.nbf, cwt.exp, |k, c| k < c),
        "the SD-KBT nbf is not before the SD-CWT exp",
    )?;
    rule(
        both(kbt.iat, cwt.exp, |k, c| k < c),
        "the SD-KBT was issued after the SD-CWT expired",
    )?;
    rule(
        both(kbt.iat, cwt.nbf, |k, c| k >= c),
        "the SD-KBT was issued before the SD-CWT nbf",
    )?;
    kbt.check_validity(now, policy.leeway)?;
    if let Some(iat) = kbt.iat {
        let oldest = iat
            .0
            .saturating_add(i64::try_from(policy.kbt_max_age.saturating_add(policy.leeway)).unwrap_or(i64::MAX));
        if i64::try_from(now.as_secs()).unwrap_or(i64::MAX) > oldest {
            return Err(Error::Expired {
                exp: iat.to_unix().plus(policy.kbt_max_age).as_secs(),
                now: now.as_secs(),
            });
        }
    }
    Ok(())
}

/// The disclosures of one SD-CWT by digest. Small tables (the usual presentation) are
/// searched linearly, which is cheaper than hashing every digest in the payload; larger
/// ones get an index, so a presentation full of disclosures costs linear time.
pub(crate) struct DigestTable {
    entries: Vec<TableEntry>,
    digests: Vec<Digest>,
    index: Option<HashMap<Digest, usize>>,
}

pub(crate) struct TableEntry {
    pub(crate) kind: Option<DisclosureKind>,
    pub(crate) used: bool,
    /// The disclosure whose value held this one's digest, if nested.
    pub(crate) parent: Option<usize>,
}

/// Above this many disclosures, lookups go through a hash index.
const LINEAR_LOOKUP_MAX: usize = 16;

impl DigestTable {
    pub(crate) fn new(
        provider: &dyn CryptoProvider,
        alg: DigestAlgorithm,
        input: DigestInput,
        disclosures: Vec<Disclosure>,
    ) -> Result<DigestTable, Error> {
        let mut table = DigestTable {
            entries: Vec::with_capacity(disclosures.len()),
            digests: Vec::with_capacity(disclosures.len()),
            index: (disclosures.len() > LINEAR_LOOKUP_MAX).then(|| HashMap::with_capacity(disclosures.len())),
        };
        for (i, disclosure) in disclosures.into_iter().enumerate() {
            let digest = digest_of(provider, alg, input, disclosure.encoded())?;
            let repeated = match &mut table.index {
                Some(index) => index.insert(digest, i).is_some(),
                None => table.digests.contains(&digest),
            };
            if repeated {
                return Err(sd_error(
                    SdCwtErrorKind::DuplicateDisclosure,
                    format!("disclosure {i} repeats an earlier one"),
                ));
            }
            table.digests.push(digest);
            table.entries.push(TableEntry {
                kind: Some(disclosure.into_kind()),
                used: false,
                parent: None,
            });
        }
        Ok(table)
    }

    fn find(&self, digest: &[u8]) -> Option<usize> {
        match &self.index {
            Some(index) => Digest::from_slice(digest).and_then(|d| index.get(&d).copied()),
            None => self.digests.iter().position(|d| d.as_bytes() == digest),
        }
    }

    pub(crate) fn first_unused(&self) -> Option<usize> {
        self.entries.iter().position(|e| !e.used)
    }

    pub(crate) fn entries(&self) -> &[TableEntry] {
        &self.entries
    }
}

/// The restore walk (§9 steps 7 and 9): a claims map with its redactions replaced by
/// the disclosed claims, undisclosed digests and decoys removed.
pub(crate) struct Restorer {
    pub(crate) table: DigestTable,
    digest_len: usize,
    max_depth: usize,
    /// The disclosure whose value is being restored (for nested disclosures).
    current: Option<usize>,
    /// Where each disclosure landed in the restored claims, when recorded (holder only).
    pub(crate) paths: Option<Vec<Vec<PathSegment>>>,
    /// The path of the value being restored, while recording.
    stack: Vec<PathSegment>,
    pub(crate) disclosed: usize,
    pub(crate) decoys: usize,
    pub(crate) undisclosed: usize,
}

impl Restorer {
    pub(crate) fn new(table: DigestTable, digest_len: usize, max_depth: usize) -> Restorer {
        Restorer {
            table,
            digest_len,
            max_depth,
            current: None,
            paths: None,
            stack: Vec::new(),
            disclosed: 0,
            decoys: 0,
            undisclosed: 0,
        }
    }

    /// Records where each disclosure lands (for the holder's selection by path).
    pub(crate) fn recording_paths(mut self) -> Restorer {
        self.paths = Some(vec![Vec::new(); self.table.entries.len()]);
        self
    }

    fn enter(&mut self, segment: impl FnOnce() -> PathSegment) {
        if self.paths.is_some() {
            self.stack.push(segment());
        }
    }

    fn leave(&mut self) {
        if self.paths.is_some() {
            self.stack.pop();
        }
    }

    fn record(&mut self, i: usize) {
        if let Some(paths) = &mut self.paths {
            paths[i] = self.stack.clone();
        }
    }

    /// Restores the payload and the protected `CWT_Claims` (whose keys must agree with
    /// the payload's) into one claims map.
    pub(crate) fn restore_claims(
        &mut self,
        payload: Vec<(Value, Value)>,
        header_claims: Option<Vec<(Value, Value)>>,
    ) -> Result<Value, Error> {
        let mut claims = self.restore_map(payload, 1, true)?;
        if let Some(header_claims) = header_claims {
            for (key, value) in self.restore_map(header_claims, 1, true)? {
                match claims.iter().find(|(k, _)| *k == key) {
                    Some((_, v)) if *v == value => {}
                    Some(_) => {
                        return Err(sd_error(
                            SdCwtErrorKind::ClaimConflict,
                            format!(
                                "claim {} differs between the payload and CWT_Claims",
                                cbor::to_diagnostic(&key)
                            ),
                        ));
                    }
                    None => claims.push((key, value)),
                }
            }
        }
        Ok(Value::Map(claims))
    }

    /// Looks a digest up; `Some` marks the disclosure used. A disclosure's digest found a
    /// second time (in another place) is an error: each disclosure matches exactly one.
    fn lookup(&mut self, digest: &Value) -> Result<Option<usize>, Error> {
        let bytes = match digest {
            Value::Bytes(b) if b.len() == self.digest_len => b,
            other => {
                return Err(sd_error(
                    SdCwtErrorKind::InvalidDigest,
                    format!(
                        "a redacted claim hash must be {} bytes, found {}",
                        self.digest_len,
                        cbor::to_diagnostic(other)
                    ),
                ));
            }
        };
        match self.table.find(bytes) {
            Some(i) => {
                let entry = &mut self.table.entries[i];
                if entry.used {
                    return Err(sd_error(
                        SdCwtErrorKind::DigestReused,
                        format!("the digest of disclosure {i} appears twice"),
                    ));
                }
                entry.used = true;
                entry.parent = self.current;
                Ok(Some(i))
            }
            None => {
                self.undisclosed += 1;
                Ok(None)
            }
        }
    }

    fn too_deep(&self, level: usize) -> Result<(), Error> {
        if level > self.max_depth {
            return Err(sd_error(
                SdCwtErrorKind::TooDeep,
                format!("claims nested deeper than {} levels", self.max_depth),
            ));
        }
        Ok(())
    }

    /// Restores a value that sits at `level`.
    fn restore_value(&mut self, value: Value, level: usize) -> Result<Value, Error> {
        self.too_deep(level)?;
        match value {
            Value::Map(entries) => Ok(Value::Map(self.restore_map(entries, level + 1, false)?)),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let position = out.len();
                    match item {
                        Value::Tag(REDACTED_ELEMENT_TAG, digest) => match self.lookup(&digest)? {
                            None => {}
                            Some(i) => match self.take(i)? {
                                DisclosureKind::Element { value } => {
                                    self.enter(|| PathSegment::Index(position));
                                    self.record(i);
                                    let restored = self.restore_disclosed(i, value, level + 1);
                                    self.leave();
                                    out.push(restored?);
                                }
                                DisclosureKind::Decoy => self.decoys += 1,
                                DisclosureKind::Claim { .. } => {
                                    return Err(sd_error(
                                        SdCwtErrorKind::DisclosurePosition,
                                        "a claim disclosure matches a redacted array element",
                                    ));
                                }
                            },
                        },
                        other => {
                            self.enter(|| PathSegment::Index(position));
                            let restored = self.restore_value(other, level + 1);
                            self.leave();
                            out.push(restored?);
                        }
                    }
                }
                Ok(Value::Array(out))
            }
            Value::Tag(tag @ (TO_BE_REDACTED_TAG | TO_BE_DECOY_TAG), _) => Err(sd_error(
                SdCwtErrorKind::ForbiddenTag,
                format!("tag {tag} in an issued SD-CWT"),
            )),
            Value::Tag(REDACTED_ELEMENT_TAG, _) => {
                Err(sd_error(SdCwtErrorKind::RedactionMisplaced, "tag 60 outside an array"))
            }
            Value::Tag(tag, content) => Ok(Value::Tag(tag, Box::new(self.restore_value(*content, level + 1)?))),
            Value::Simple(REDACTED_CLAIM_KEYS) => {
                Err(sd_error(SdCwtErrorKind::RedactionMisplaced, "simple(59) as a value"))
            }
            other => Ok(other),
        }
    }

    fn take(&mut self, i: usize) -> Result<DisclosureKind, Error> {
        self.table.entries[i]
            .kind
            .take()
            .ok_or_else(|| sd_error(SdCwtErrorKind::DigestReused, "a disclosure is used twice"))
    }

    fn restore_disclosed(&mut self, i: usize, value: Value, level: usize) -> Result<Value, Error> {
        self.disclosed += 1;
        let outer = self.current.replace(i);
        let restored = self.restore_value(value, level);
        self.current = outer;
        restored
    }

    /// Restores the entries of a map whose values sit at `level`.
    fn restore_map(
        &mut self,
        entries: Vec<(Value, Value)>,
        level: usize,
        top: bool,
    ) -> Result<Vec<(Value, Value)>, Error> {
        let mut out = Vec::with_capacity(entries.len());
        let mut digests = None;
        for (key, value) in entries {
            match key {
                Value::Simple(REDACTED_CLAIM_KEYS) => match value {
                    Value::Array(list) => digests = Some(list),
                    other => {
                        return Err(sd_error(
                            SdCwtErrorKind::RedactionMisplaced,
                            format!("simple(59) holds a {}, not an array of digests", other.type_name()),
                        ));
                    }
                },
                key if is_label(&key) => {
                    self.enter(|| PathSegment::Key(key.clone()));
                    let value = self.restore_value(value, level);
                    self.leave();
                    out.push((key, value?));
                }
                Value::Tag(..) => {
                    return Err(sd_error(
                        SdCwtErrorKind::ForbiddenTag,
                        "a tagged map key in an issued SD-CWT",
                    ));
                }
                other => {
                    return Err(sd_error(
                        SdCwtErrorKind::InvalidMapKey,
                        format!("a claims map key is {}", cbor::to_diagnostic(&other)),
                    ));
                }
            }
        }
        for digest in digests.into_iter().flatten() {
            let Some(i) = self.lookup(&digest)? else { continue };
            match self.take(i)? {
                DisclosureKind::Claim { key, value } => {
                    if top && key.as_i64().is_some_and(|k| NEVER_REDACTED.contains(&k)) {
                        return Err(sd_error(
                            SdCwtErrorKind::NeverRedacted,
                            format!("claim {} must never be redacted", cbor::to_diagnostic(&key)),
                        ));
                    }
                    if out.iter().any(|(k, _)| *k == key) {
                        return Err(sd_error(
                            SdCwtErrorKind::ClaimConflict,
                            format!("disclosed claim {} is already in its map", cbor::to_diagnostic(&key)),
                        ));
                    }
                    self.enter(|| PathSegment::Key(key.clone()));
                    self.record(i);
                    let value = self.restore_disclosed(i, value, level);
                    self.leave();
                    out.push((key, value?));
                }
                DisclosureKind::Decoy => self.decoys += 1,
                DisclosureKind::Element { .. } => {
                    return Err(sd_error(
                        SdCwtErrorKind::DisclosurePosition,
                        "an array-element disclosure matches a redacted map key",
                    ));
                }
            }
        }
        Ok(out)
    }
}
