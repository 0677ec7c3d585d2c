//! SD-CWT: Selective Disclosure CBOR Web Tokens with key binding
//! (draft-ietf-spice-sd-cwt).
//!
//! **Version.** The wire format follows the newest text reachable when this was written:
//! the editor's copy at commit 10965be (2026-04-24), which is the -08 preview, plus the
//! -08 deltas known from implementations (the optional fourth, key-context element of an
//! AEAD entry). The draft's test vectors (`examples/`, identical at -07 and -08 except the
//! AEAD example) are the conformance data in `testdata/vectors/sd_cwt/`. -09
//! (2026-10-30) could not be read; re-check against it.
//!
//! **Roles.** An issuer turns a claims set with "to be redacted" and "to be decoy" tags
//! (58, 62) into a signed SD-CWT and its disclosures ([`SdCwtIssuer`]). The holder
//! validates what it received, picks disclosures and wraps the SD-CWT in an SD-KBT signed
//! with its `cnf` key ([`HolderSdCwt`]). A verifier checks the SD-KBT and restores exactly
//! the disclosed claims ([`SdCwtVerifier`]). Time and randomness are parameters.
//!
//! **The digest input.** The draft's prose (§3.2, Figure 8) hashes the encoded disclosure
//! array, but every signed example hashes the complete CBOR byte-string item (`58 21 ‖
//! 83 50 …`), and so do esdicawt and the other -08 implementations. Lanyard hashes the
//! whole item by default ([`DigestInput::FullItem`]) and can hash the array alone
//! ([`DigestInput::ContentOnly`]) to interoperate with the `sd-cwt` crate.
//!
//! **Strictness.** Every token is decoded with the strict CBOR decoder (no indefinite
//! lengths, no duplicate keys, preferred serialization only) and checked against the
//! draft's CDDL: map keys, the places simple(59) and tag 60 may appear, tags 58/62 never
//! in an issued token, salts of 16 bytes, digests of the `sd_alg` length, nesting of at
//! most 16 levels (§6.5). Each failure has its own [`SdCwtErrorKind`].

mod disclosure;
mod issue;
mod kbt;
mod verify;

pub use disclosure::{Disclosure, DisclosureKind, EncryptedDisclosure};
pub use issue::{IssuedSdCwt, RandomSalts, SaltRequest, SaltSource, SdCwtIssuer};
pub use kbt::{HolderSdCwt, KbtParams};
pub use verify::{AeadKey, IssuerKey, PresentationContext, SdCwtPolicy, SdCwtVerifier, VerifiedPresentation};

use crate::cbor::Value;
use crate::error::Error;

/// SD-CWT COSE header parameters (draft §17.1; IANA early assignments).
pub mod header {
    /// `sd_claims` (unprotected): the disclosures, `[ +bstr ]`.
    pub const SD_CLAIMS: i64 = 17;
    /// `sd_alg` (protected): the digest algorithm; absent means SHA-256.
    pub const SD_ALG: i64 = 170;
    /// `sd_aead_encrypted_claims` (unprotected): AEAD-encrypted disclosures.
    pub const SD_AEAD_ENCRYPTED_CLAIMS: i64 = 171;
    /// `sd_aead` (protected): the AEAD algorithm (IANA AEAD registry); absent means
    /// AEAD_AES_128_GCM.
    pub const SD_AEAD: i64 = 172;
    /// The label `sd_alg` had up to draft -05; a token using it is pre-06.
    pub const LEGACY_SD_ALG: i64 = 18;
}

/// The simple value that keys a map's array of redacted-claim digests (§5.1, §17.2).
pub const REDACTED_CLAIM_KEYS: u8 = 59;
/// The tag of a to-be-redacted map key or array element, before issuance (§11.1).
pub const TO_BE_REDACTED_TAG: u64 = 58;
/// The tag of a redacted array element, around its digest (§5.1).
pub const REDACTED_ELEMENT_TAG: u64 = 60;
/// The tag that requests a decoy digest, before issuance (§11.2).
pub const TO_BE_DECOY_TAG: u64 = 62;
/// The `typ` of an SD-CWT: CoAP Content-Format 293 (`application/sd-cwt`).
pub const SD_CWT_TYP: u64 = 293;
/// The media type of an SD-CWT.
pub const SD_CWT_MEDIA_TYPE: &str = "application/sd-cwt";
/// The `typ` of an SD-KBT: CoAP Content-Format 294 (`application/kb+cwt`).
pub const KBT_TYP: u64 = 294;
/// The media type of an SD-KBT.
pub const KBT_MEDIA_TYPE: &str = "application/kb+cwt";
/// The `vct` claim (verifiable credential type, §13).
pub const VCT_CLAIM: i64 = 11;
/// The length of every salt (§5.1: `bstr .size 16`).
pub const SALT_LEN: usize = 16;
/// The deepest claims nesting accepted by default (§6.5).
pub const MAX_CLAIMS_DEPTH: usize = 16;

/// One step of the path from the claims map to a disclosed claim or element.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum PathSegment {
    /// A map key.
    Key(Value),
    /// A position in an array (in the claims as the holder sees them).
    Index(usize),
}

/// A path such as `build.commit`, `503.region` or `selectors[1]`: keys joined by `.`
/// (integers as numbers, text quoted when it could be mistaken), indices in brackets.
pub fn path_to_string(path: &[PathSegment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            PathSegment::Index(i) => out.push_str(&format!("[{i}]")),
            PathSegment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                match key {
                    Value::Text(t)
                        if !t.is_empty()
                            && !t.contains(['.', '[', ']', '"'])
                            && !t.starts_with(|c: char| c.is_ascii_digit() || c == '-') =>
                    {
                        out.push_str(t)
                    }
                    other => out.push_str(&crate::cbor::to_diagnostic(other)),
                }
            }
        }
    }
    out
}

/// What a disclosure's digest is computed over.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DigestInput {
    /// The complete CBOR byte-string item (head and content), as in every signed example
    /// of the draft and the -08 implementations.
    #[default]
    FullItem,
    /// Only the encoded disclosure array (the bytes inside the byte string), as the
    /// draft's §3.2 prose and the `sd-cwt` crate do.
    ContentOnly,
}

/// Why an SD-CWT or SD-KBT was refused (beyond the generic kinds such as `bad_signature`,
/// `expired` or `wrong_audience`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SdCwtErrorKind {
    /// A disclosure is not `[salt, value, key]`, `[salt, value]` or `[salt]` with an
    /// integer or text key.
    DisclosureMalformed,
    /// A salt is not 16 bytes.
    SaltLength,
    /// A disclosure matches no digest in the token (§9 step 7).
    DisclosureUnmatched,
    /// The same disclosure is presented twice.
    DuplicateDisclosure,
    /// One digest appears in more than one place, so a disclosure would match twice.
    DigestReused,
    /// A claim disclosure sits where an array element was redacted, or the reverse.
    DisclosurePosition,
    /// A disclosed claim key is already present in its map (§9 step 7).
    ClaimConflict,
    /// A disclosure would restore a claim that must never be redacted (Table 2).
    NeverRedacted,
    /// `sd_alg` names a digest algorithm that is not implemented or not allowed.
    UnknownSdAlg,
    /// simple(59) or tag 60 in a place the CDDL does not allow, or not holding digests.
    RedactionMisplaced,
    /// A digest of the wrong length for `sd_alg`.
    InvalidDigest,
    /// Tag 58 or 62 in an issued token, or a tagged map key.
    ForbiddenTag,
    /// A map key that is not an integer, a 1–255-byte text or (in claims) simple(59).
    InvalidMapKey,
    /// A header parameter breaks the profile: empty or ill-typed `sd_claims`, no `kcwt`,
    /// `CWT_Claims` in an SD-KBT, a non-integer `sd_alg`.
    InvalidHeader,
    /// A code point from before draft -06 (`sd_alg` in header 18, `typ` `application/sd+cwt`).
    LegacyCodePoint,
    /// Claims nested deeper than the limit (§6.5).
    TooDeep,
    /// The time claims of the SD-CWT and SD-KBT contradict each other (§9 steps 3, 6).
    TimeInconsistent,
    /// The SD-KBT signature does not verify under the SD-CWT's `cnf` key.
    KbtBadSignature,
    /// The SD-KBT `cnonce` is missing or not the verifier's nonce.
    NonceMismatch,
    /// The SD-CWT's `iss` is not the issuer its key belongs to (§16.5).
    IssuerMismatch,
    /// A Redacted Claim Hash without a disclosure, seen by the holder (§7.2).
    MissingDisclosure,
    /// The `cnf` key is not usable: another confirmation method, or not the holder's key.
    ConfirmationKey,
    /// An encrypted disclosure uses a forbidden or unimplemented AEAD, or fails to decrypt.
    Aead,
    /// A pre-issuance claims set breaks a rule of §6.3, §6.4 or §11.
    InvalidPreissuance,
}

impl SdCwtErrorKind {
    /// The stable error code ([`crate::Error::kind`]).
    pub fn as_str(self) -> &'static str {
        match self {
            SdCwtErrorKind::DisclosureMalformed => "sd_disclosure_malformed",
            SdCwtErrorKind::SaltLength => "sd_salt_length",
            SdCwtErrorKind::DisclosureUnmatched => "sd_disclosure_unmatched",
            SdCwtErrorKind::DuplicateDisclosure => "sd_duplicate_disclosure",
            SdCwtErrorKind::DigestReused => "sd_digest_reused",
            SdCwtErrorKind::DisclosurePosition => "sd_disclosure_position",
            SdCwtErrorKind::ClaimConflict => "sd_claim_conflict",
            SdCwtErrorKind::NeverRedacted => "sd_never_redacted",
            SdCwtErrorKind::UnknownSdAlg => "sd_unknown_sd_alg",
            SdCwtErrorKind::RedactionMisplaced => "sd_redaction_misplaced",
            SdCwtErrorKind::InvalidDigest => "sd_invalid_digest",
            SdCwtErrorKind::ForbiddenTag => "sd_forbidden_tag",
            SdCwtErrorKind::InvalidMapKey => "sd_invalid_map_key",
            SdCwtErrorKind::InvalidHeader => "sd_invalid_header",
            SdCwtErrorKind::LegacyCodePoint => "sd_legacy_code_point",
            SdCwtErrorKind::TooDeep => "sd_too_deep",
            SdCwtErrorKind::TimeInconsistent => "sd_time_inconsistent",
            SdCwtErrorKind::KbtBadSignature => "kbt_bad_signature",
            SdCwtErrorKind::NonceMismatch => "sd_nonce_mismatch",
            SdCwtErrorKind::IssuerMismatch => "sd_issuer_mismatch",
            SdCwtErrorKind::MissingDisclosure => "sd_missing_disclosure",
            SdCwtErrorKind::ConfirmationKey => "sd_confirmation_key",
            SdCwtErrorKind::Aead => "sd_aead",
            SdCwtErrorKind::InvalidPreissuance => "sd_invalid_preissuance",
        }
    }
}

pub(crate) fn sd_error(kind: SdCwtErrorKind, detail: impl Into<String>) -> Error {
    Error::SdCwt {
        kind,
        detail: detail.into(),
    }
}

/// Claims that a disclosure must never restore (Table 2, "Never Redacted").
pub(crate) const NEVER_REDACTED: [i64; 8] = [1, 3, 4, 5, 6, 7, 8, 39];

/// Whether `key` is a CWT label: an integer, or text of 1 to 255 bytes (§6.3).
pub(crate) fn is_label(key: &Value) -> bool {
    match key {
        Value::Integer(_) => true,
        Value::Text(t) => (1..=255).contains(&t.len()),
        _ => false,
    }
}

/// Checks a header parameter value or a KBT claim: CWT-legal values only (`safe_value`,
/// Figure 14): integer or short-text map keys at any depth, no tag 58, 60 or 62, no
/// simple(59).
pub(crate) fn check_safe_value(value: &Value, depth: usize, max_depth: usize) -> Result<(), Error> {
    if depth > max_depth {
        return Err(sd_error(
            SdCwtErrorKind::TooDeep,
            "a header or KBT claim is nested too deeply",
        ));
    }
    match value {
        Value::Map(entries) => {
            for (k, v) in entries {
                check_safe_key(k)?;
                check_safe_value(v, depth + 1, max_depth)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|v| check_safe_value(v, depth + 1, max_depth)),
        Value::Tag(tag, content) => {
            check_tag_allowed(*tag)?;
            check_safe_value(content, depth + 1, max_depth)
        }
        Value::Simple(REDACTED_CLAIM_KEYS) => Err(sd_error(
            SdCwtErrorKind::RedactionMisplaced,
            "simple(59) outside an SD-CWT claims map",
        )),
        _ => Ok(()),
    }
}

pub(crate) fn check_safe_key(key: &Value) -> Result<(), Error> {
    match key {
        k if is_label(k) => Ok(()),
        Value::Simple(REDACTED_CLAIM_KEYS) => Err(sd_error(
            SdCwtErrorKind::RedactionMisplaced,
            "simple(59) keys a map outside an SD-CWT claims map",
        )),
        Value::Tag(..) => Err(sd_error(SdCwtErrorKind::ForbiddenTag, "a tagged map key")),
        other => Err(sd_error(
            SdCwtErrorKind::InvalidMapKey,
            format!("a map key is a {}", other.type_name()),
        )),
    }
}

fn check_tag_allowed(tag: u64) -> Result<(), Error> {
    match tag {
        TO_BE_REDACTED_TAG | TO_BE_DECOY_TAG => Err(sd_error(
            SdCwtErrorKind::ForbiddenTag,
            format!("tag {tag} is only for claims sent to an issuer"),
        )),
        REDACTED_ELEMENT_TAG => Err(sd_error(
            SdCwtErrorKind::RedactionMisplaced,
            "tag 60 outside an array of an SD-CWT claims map",
        )),
        _ => Ok(()),
    }
}

/// Every header parameter except those listed in `claims_maps` must hold safe values.
pub(crate) fn check_header(entries: &[(Value, Value)], skip: &[i64], max_depth: usize) -> Result<(), Error> {
    for (label, value) in entries {
        check_safe_key(label)?;
        if label.as_i64().is_some_and(|l| skip.contains(&l)) {
            continue;
        }
        check_safe_value(value, 1, max_depth)?;
    }
    Ok(())
}
