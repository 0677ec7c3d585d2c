//! COSE (RFC 9052 structures, RFC 9053 algorithms, RFC 9864 fully specified identifiers):
//! COSE_Sign1 signing and verification, and COSE_Key / COSE_KeySet with JWK conversion and
//! RFC 9679 thumbprints.
//!
//! Signatures come from the [`crate::CryptoProvider`]'s keys; verification always runs over
//! the protected-header bytes exactly as received. Every structure is decoded with the
//! strict CBOR decoder of [`crate::cbor`].

mod key;
mod sign1;

pub use key::{CoseKey, CoseKeySet, Curve, KeyMaterial, KeyType};
pub use sign1::{CoseSign1, SIGN1_TAG};

/// COSE header parameter labels (RFC 9052 §3.1, RFC 9528 §3.5.3, RFC 9597 §2, RFC 9596 §2).
pub mod header {
    /// `alg`: the algorithm (RFC 9052).
    pub const ALG: i64 = 1;
    /// `crit`: header parameters that must be understood (RFC 9052).
    pub const CRIT: i64 = 2;
    /// `content type` (RFC 9052).
    pub const CONTENT_TYPE: i64 = 3;
    /// `kid`: key identifier, a byte string (RFC 9052).
    pub const KID: i64 = 4;
    /// `kcwt`: a CWT carrying the confirmation key (RFC 9528); SD-KBTs carry the SD-CWT here.
    pub const KCWT: i64 = 13;
    /// `CWT Claims`: claims in the protected header (RFC 9597).
    pub const CWT_CLAIMS: i64 = 15;
    /// `typ`: the media type of the whole COSE object (RFC 9596).
    pub const TYP: i64 = 16;
}

/// Why a COSE structure was refused.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CoseErrorKind {
    /// Not the structure RFC 9052 defines (wrong array length, wrong item types).
    Malformed,
    /// The CBOR tag is missing or not the one the structure needs (18 for COSE_Sign1).
    WrongTag,
    /// A header map breaks a rule: a label that is neither an integer nor a text string,
    /// a label in both buckets, `alg` missing or unprotected, a value of the wrong type.
    InvalidHeader,
    /// `crit` lists a header parameter this implementation does not understand.
    UnknownCritical,
    /// The payload is detached (`nil`); Lanyard's profiles carry it inline.
    DetachedPayload,
}

impl CoseErrorKind {
    /// The stable error code ([`crate::Error::kind`]).
    pub fn as_str(self) -> &'static str {
        match self {
            CoseErrorKind::Malformed => "cose_malformed",
            CoseErrorKind::WrongTag => "cose_wrong_tag",
            CoseErrorKind::InvalidHeader => "cose_invalid_header",
            CoseErrorKind::UnknownCritical => "cose_unknown_crit",
            CoseErrorKind::DetachedPayload => "cose_detached_payload",
        }
    }
}

pub(crate) fn cose_error(kind: CoseErrorKind, detail: impl Into<String>) -> crate::Error {
    crate::Error::Cose {
        kind,
        detail: detail.into(),
    }
}
