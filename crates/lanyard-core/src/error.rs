//! The crate's one error type. Every variant names what was wrong (which claim, which
//! header, which identifier rule), and [`Error::kind`] gives a stable machine-readable
//! code that the conformance vectors and the CLI's `--json` output use.
//!
//! # Error policy
//!
//! - **One error type for the crate**, [`Error`]; callers match on it or on its stable
//!   `kind()` code, never on messages.
//! - **Causes are kept**: a variant that wraps another error holds it as `#[source]`.
//! - **No `anyhow`** here: this is library code. Only composition roots (the CLI, the
//!   server's and agent's start-up and configuration) use it.
//! - **No wire mapping here**: this crate does no I/O. Which HTTP status, OAuth
//!   `error` code or gRPC status an error becomes is decided once per edge by the crate
//!   serving it (the server's `endpoints/status.rs` and `oauth/error.rs`, the tower
//!   layers' rejection functions, the agent's `error.rs`); [`crate::oauth::ErrorCode`]
//!   only names the OAuth codes and their statuses.
//! - **Bad input is never a panic**: clippy denies `unwrap`/`expect` outside tests.

use crate::cbor::CborError;
use crate::cose::CoseErrorKind;
use crate::id::IdError;
use crate::jose::TokenType;
use crate::oauth::Violation;
use crate::spice::sd_cwt::SdCwtErrorKind;

/// Everything that can go wrong while parsing, issuing or verifying a credential.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A workload identifier broke a rule of its scheme.
    #[error("invalid identifier in {context}: {source}")]
    InvalidIdentifier {
        /// Where the identifier came from (a claim name, a CLI argument, ...).
        context: &'static str,
        /// The rule that was broken.
        source: IdError,
    },
    /// The token is not well-formed (structure, base64url, JSON, or a claim of the wrong JSON type).
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The token is longer than the limit checked before any decoding.
    #[error("token is {actual} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
        /// The token's length in bytes.
        actual: usize,
    },
    /// A JSON object repeats a member name (RFC 7515 §5.2 says reject).
    #[error("duplicate member {name:?} in the {part}")]
    DuplicateMember {
        /// `header` or `payload` (or another document part).
        part: &'static str,
        /// The repeated member name.
        name: String,
    },
    /// The `typ` header is missing or is not the one this token type requires.
    #[error("wrong typ: expected {expected:?}, found {}", quoted_or(found.as_deref(), "none"))]
    WrongType {
        /// The accepted value.
        expected: &'static str,
        /// What the token carried.
        found: Option<String>,
    },
    /// The explicit `typ` belongs to another known token type (RFC 8725 §3.11): a token of
    /// one kind offered where another is expected (see [`crate::jose::TypRule`]).
    #[error("typ says this is a {found}, not a {expected}")]
    TypeConfusion {
        /// The `typ` the verifier accepts (`JWT` when it accepts only the generic forms).
        expected: &'static str,
        /// The token type the `typ` names.
        found: TokenType,
    },
    /// A request presents a WPT together with an OAuth access token (`Bearer`, `DPoP`):
    /// draft-ietf-wimse-wpt-02 §2.2 forbids it, and the token is never used.
    #[error("a request with a WPT must not also present a {scheme} access token (draft-ietf-wimse-wpt-02 §2.2)")]
    AccessTokenWithWpt {
        /// `Bearer`, `DPoP`, or another scheme whose credentials came with the WPT.
        scheme: String,
    },
    /// The WPT came in the `Workload-Proof-Token` header of draft-ietf-wimse-wpt-01, which
    /// is accepted only behind the compatibility switch.
    #[error(
        "the Workload-Proof-Token header is the wpt-01 carriage; send Authorization: WPT (draft-ietf-wimse-wpt-02)"
    )]
    LegacyWptHeader,
    /// The algorithm is not on the allow-list (`none`, HMAC, unknown, or excluded by the profile).
    #[error("algorithm {alg:?} not allowed: {reason}")]
    AlgorithmNotAllowed {
        /// The algorithm named by the token or key.
        alg: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The algorithm is allowed but differs from the one the key is bound to.
    #[error("algorithm mismatch: expected {expected}, found {found}")]
    AlgorithmMismatch {
        /// The algorithm the key is bound to (e.g. the WIT's `cnf.jwk.alg`).
        expected: String,
        /// The algorithm the token used.
        found: String,
    },
    /// The header has a `crit` member; no JWS extension is understood.
    #[error("unsupported critical header parameters: {0:?}")]
    UnknownCritical(Vec<String>),
    /// The signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// No trust anchor fits the token.
    #[error("no trusted key for trust domain {trust_domain:?}{}: {reason}", kid_note(kid))]
    UnknownKey {
        /// The trust domain the token's subject belongs to.
        trust_domain: String,
        /// The `kid` header, if any.
        kid: Option<String>,
        /// Why no key was found.
        reason: &'static str,
    },
    /// The profile requires a `kid` header and there is none.
    #[error("missing kid header")]
    MissingKid,
    /// `exp` is in the past (beyond the allowed clock skew).
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The `exp` claim.
        exp: u64,
        /// The verification time.
        now: u64,
    },
    /// `nbf` (or `iat`) is in the future beyond the allowed clock skew.
    #[error("token not valid before {claim} = {value} (now {now})")]
    NotYetValid {
        /// `nbf` or `iat`.
        claim: &'static str,
        /// The claim's value.
        value: u64,
        /// The verification time.
        now: u64,
    },
    /// A required claim is absent.
    #[error("missing claim {0:?}")]
    MissingClaim(&'static str),
    /// A claim is present but its value is unacceptable.
    #[error("invalid claim {claim:?}: {reason}")]
    InvalidClaim {
        /// The claim name.
        claim: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A claim that the profile forbids is present (e.g. `aud` in a WIT-SVID).
    #[error("claim {0:?} is not allowed in this token")]
    ForbiddenClaim(&'static str),
    /// `aud` does not name this verifier.
    #[error("wrong audience: expected {expected:?}, token has {found:?}")]
    WrongAudience {
        /// The audience the verifier accepts.
        expected: String,
        /// The token's audiences.
        found: Vec<String>,
    },
    /// The token's remaining lifetime exceeds the policy's maximum.
    #[error("{token} lifetime of {lifetime}s exceeds the maximum of {max}s")]
    LifetimeTooLong {
        /// `WIT`, `WPT` or `JWT-SVID`.
        token: &'static str,
        /// `exp - now` in seconds.
        lifetime: u64,
        /// The allowed maximum in seconds.
        max: u64,
    },
    /// A token-hash claim (`wth`, `ath`, `tth`, an `oth` entry) does not match the token it binds.
    #[error("{claim} does not match the {what} in the request")]
    TokenHashMismatch {
        /// `wth`, `ath`, `tth` or `oth`.
        claim: &'static str,
        /// What it should have matched.
        what: String,
    },
    /// An `oth` entry names a header that the request does not carry.
    #[error("oth names header {0:?}, which the request does not carry")]
    UnknownOtherToken(String),
    /// The proof's `jti` was already seen from this sender.
    #[error("replayed proof: jti {jti:?} from {issuer:?} was already used")]
    Replay {
        /// The sender (the WIT's `sub`).
        issuer: String,
        /// The repeated `jti`.
        jti: String,
    },
    /// The replay cache is full of live entries; the proof is refused rather than risk a replay.
    #[error("replay cache is full ({capacity} live entries); refusing the proof")]
    ReplayCacheFull {
        /// The cache's capacity.
        capacity: usize,
    },
    /// An HTTP header needed to carry a credential is missing, repeated or malformed.
    #[error("header {name}: {reason}")]
    Header {
        /// The header field name.
        name: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// An HTTP message signature (RFC 9421, WIMSE profile) is missing, duplicated, or
    /// breaks a rule of the profile; `code` is the stable error kind.
    #[error("HTTP message signature: {detail}")]
    HttpSignature {
        /// One of the `signature_*` / `digest_*` kinds.
        code: &'static str,
        /// What exactly is wrong.
        detail: String,
    },
    /// Key material is malformed or does not fit its use.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A trust bundle is malformed.
    #[error("invalid trust bundle: {0}")]
    InvalidBundle(String),
    /// The crypto provider failed (e.g. no randomness).
    #[error("crypto provider failure: {0}")]
    Crypto(String),
    /// Authenticated decryption failed: wrong key or nonce, or altered ciphertext.
    #[error("decryption failed: {0}")]
    Decryption(&'static str),
    /// CBOR input broke the strict profile of [`crate::cbor`]; the kind names the rule.
    #[error("invalid CBOR: {0}")]
    Cbor(#[from] CborError),
    /// A COSE structure (RFC 9052) is malformed.
    #[error("invalid COSE: {detail}")]
    Cose {
        /// Which rule was broken.
        kind: CoseErrorKind,
        /// What exactly is wrong.
        detail: String,
    },
    /// An SD-CWT or SD-KBT broke a rule of draft-ietf-spice-sd-cwt.
    #[error("invalid SD-CWT: {detail}")]
    SdCwt {
        /// Which rule was broken.
        kind: SdCwtErrorKind,
        /// What exactly is wrong.
        detail: String,
    },
    /// An OAuth 2.0 rule was broken (request form, client assertion audience, DPoP proof,
    /// token binding, ...); the [`Violation`] names which and gives the kind.
    #[error(transparent)]
    OAuth(#[from] Violation),
}

/// `value` in quotes, or `absent` when there is none (for messages about optional fields).
pub(crate) fn quoted_or(value: Option<&str>, absent: &str) -> String {
    value.map_or_else(|| absent.to_owned(), |v| format!("{v:?}"))
}

fn kid_note(kid: &Option<String>) -> String {
    kid.as_ref().map(|k| format!(" with kid {k:?}")).unwrap_or_default()
}

impl Error {
    /// A stable, lowercase code for this error (the conformance vectors use it).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidIdentifier { .. } => "invalid_identifier",
            Error::Malformed(_) => "malformed",
            Error::TooLarge { .. } => "too_large",
            Error::DuplicateMember { .. } => "duplicate_member",
            Error::WrongType { .. } => "wrong_typ",
            Error::TypeConfusion { .. } => "typ_confusion",
            Error::AccessTokenWithWpt { .. } => "access_token_with_wpt",
            Error::LegacyWptHeader => "wpt_legacy_header",
            Error::AlgorithmNotAllowed { .. } => "alg_not_allowed",
            Error::AlgorithmMismatch { .. } => "alg_mismatch",
            Error::UnknownCritical(_) => "unknown_crit",
            Error::BadSignature => "bad_signature",
            Error::UnknownKey { .. } => "unknown_key",
            Error::MissingKid => "missing_kid",
            Error::Expired { .. } => "expired",
            Error::NotYetValid { .. } => "not_yet_valid",
            Error::MissingClaim(_) => "missing_claim",
            Error::InvalidClaim { .. } => "invalid_claim",
            Error::ForbiddenClaim(_) => "forbidden_claim",
            Error::WrongAudience { .. } => "wrong_audience",
            Error::LifetimeTooLong { .. } => "lifetime_too_long",
            Error::TokenHashMismatch { claim, .. } => match *claim {
                "wth" => "wth_mismatch",
                "ath" => "ath_mismatch",
                "tth" => "tth_mismatch",
                _ => "oth_mismatch",
            },
            Error::UnknownOtherToken(_) => "oth_unknown",
            Error::Replay { .. } => "replay",
            Error::ReplayCacheFull { .. } => "replay_cache_full",
            Error::Header { .. } => "header",
            Error::HttpSignature { code, .. } => code,
            Error::InvalidKey(_) => "invalid_key",
            Error::InvalidBundle(_) => "invalid_bundle",
            Error::Crypto(_) => "crypto",
            Error::Decryption(_) => "decryption_failed",
            Error::Cbor(e) => e.kind.as_str(),
            Error::Cose { kind, .. } => kind.as_str(),
            Error::SdCwt { kind, .. } => kind.as_str(),
            Error::OAuth(violation) => violation.kind(),
        }
    }

    pub(crate) fn malformed(what: impl Into<String>) -> Error {
        Error::Malformed(what.into())
    }

    pub(crate) fn invalid_claim(claim: &'static str, reason: impl Into<String>) -> Error {
        Error::InvalidClaim {
            claim,
            reason: reason.into(),
        }
    }
}
