//! The crate's one error type. Every variant says which rule of X509-SVID.md (or which
//! step of issuance, path validation or the TLS handshake) failed, and [`Error::kind`]
//! gives a stable machine-readable code for the CLI's `--json` output and for logs.
//!
//! # Error policy
//!
//! - **One error type for the crate**, [`Error`]; callers match on it or on its stable
//!   `kind()` code, never on messages.
//! - **Causes are kept**: a variant that wraps another error holds it as `#[source]`.
//! - **No `anyhow`** here: this is library code. Only composition roots (the CLI, the
//!   server's and agent's start-up and configuration) use it.
//! - **No wire mapping here**: a refused certificate is an [`Error`]; the
//!   TLS stack reports it as a handshake failure, and the server and agent map it to
//!   their wire in their own `error.rs`.
//! - **Bad input is never a panic**: clippy denies `unwrap`/`expect` outside tests.

use lanyard_core::{IdError, SpiffeId, UnixTime};

/// Everything that can go wrong while issuing, parsing or verifying an X.509-SVID.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A certificate (or CSR, or key) is not well-formed DER/PEM.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// `certificate`, `CSR`, `PEM`, `public key`, ...
        what: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// The chain is empty.
    #[error("the certificate chain is empty")]
    EmptyChain,
    /// The leaf has no URI SAN (X509-SVID.md §2: exactly one is required).
    #[error("the leaf certificate has no URI SAN; an X.509-SVID has exactly one")]
    NoUriSan,
    /// The leaf has more than one URI SAN (X509-SVID.md §2).
    #[error("the leaf certificate has {count} URI SANs; an X.509-SVID has exactly one")]
    MultipleUriSans {
        /// How many URI SANs it has.
        count: usize,
    },
    /// The URI SAN is not a valid SPIFFE ID (SPIFFE-ID.md rules).
    #[error("the URI SAN {uri:?} is not a valid SPIFFE ID: {source}")]
    NotSpiffeId {
        /// The URI SAN (cut to 128 bytes).
        uri: String,
        /// The rule it broke.
        source: IdError,
    },
    /// The leaf's SPIFFE ID has no path: it names a trust domain, not a workload (X509-SVID.md §3.1).
    #[error("the leaf's SPIFFE ID {id} has no path; only signing certificates may carry a trust-domain ID")]
    LeafWithoutPath {
        /// The trust-domain ID found.
        id: SpiffeId,
    },
    /// The leaf is a CA certificate (basicConstraints cA=true; X509-SVID.md §4.1).
    #[error("the leaf certificate is a CA certificate (cA=true)")]
    LeafIsCa,
    /// The leaf's key usage has a bit a leaf must not have (keyCertSign, cRLSign; X509-SVID.md §4.3).
    #[error("the leaf certificate's key usage includes {usage}, which an X.509-SVID leaf must not have")]
    ForbiddenKeyUsage {
        /// `keyCertSign` or `cRLSign`.
        usage: &'static str,
    },
    /// No bundle is configured for the leaf's trust domain.
    #[error("no X.509 bundle for trust domain {trust_domain:?}")]
    UnknownTrustDomain {
        /// The leaf's trust domain.
        trust_domain: String,
    },
    /// The trust domain's bundle has no X.509 authorities (all revoked; bundle §4.1.3).
    #[error("the X.509 bundle for trust domain {trust_domain:?} has no authorities")]
    NoAuthorities {
        /// The trust domain.
        trust_domain: String,
    },
    /// A certificate of the chain has expired.
    #[error("certificate expired at {not_after} (now {now})")]
    Expired {
        /// The certificate's notAfter (Unix seconds).
        not_after: UnixTime,
        /// The verification time.
        now: UnixTime,
    },
    /// A certificate of the chain is not valid yet.
    #[error("certificate not valid before {not_before} (now {now})")]
    NotYetValid {
        /// The certificate's notBefore (Unix seconds).
        not_before: UnixTime,
        /// The verification time.
        now: UnixTime,
    },
    /// The chain does not lead to an authority of the trust domain's bundle, or a signature
    /// or constraint on the path is wrong (RFC 5280 path validation by rustls-webpki).
    #[error("certificate chain does not validate against the bundle of {trust_domain:?}: {reason}")]
    BadChain {
        /// The trust domain whose authorities were tried.
        trust_domain: String,
        /// What path validation reported.
        reason: webpki::Error,
    },
    /// A chain that is not an X.509-SVID (e.g. an x509pop node certificate) does not lead
    /// to one of the configured roots, or a signature or constraint on the path is wrong.
    #[error("certificate chain does not validate against the configured roots: {reason}")]
    UntrustedChain {
        /// What path validation reported.
        reason: webpki::Error,
    },
    /// The leaf lacks a key usage the caller requires.
    #[error("the leaf certificate's key usage does not include {usage}")]
    MissingKeyUsage {
        /// E.g. `digitalSignature`.
        usage: &'static str,
    },
    /// The leaf's extended key usage does not allow the use it is being verified for.
    #[error("the leaf's extended key usage does not allow {usage}")]
    WrongUsage {
        /// `clientAuth` or `serverAuth`.
        usage: &'static str,
    },
    /// The caller asked for a DNS name (or IP address) that the leaf does not carry.
    #[error("the certificate is not valid for {expected:?}")]
    NameMismatch {
        /// The name the caller expected.
        expected: String,
    },
    /// The peer's SPIFFE ID is valid but not allowed by the [`Authorizer`](crate::Authorizer).
    #[error("SPIFFE ID {id} is not authorized: expected {expected}")]
    Unauthorized {
        /// The peer's SPIFFE ID.
        id: SpiffeId,
        /// What the authorizer accepts.
        expected: String,
    },
    /// A SPIFFE ID or trust domain given to this crate is invalid.
    #[error("invalid identifier in {context}: {source}")]
    InvalidIdentifier {
        /// Where it came from.
        context: &'static str,
        /// The rule it broke.
        source: IdError,
    },
    /// The SPIFFE ID to issue for belongs to another trust domain than the CA's.
    #[error("the CA is for trust domain {ca:?}, cannot issue for {requested:?}")]
    TrustDomainMismatch {
        /// The CA's trust domain (`none` when the CA carries no SPIFFE ID).
        ca: String,
        /// The requested trust domain.
        requested: String,
    },
    /// The certificate given as a CA cannot sign certificates.
    #[error("not a usable CA certificate: {0}")]
    NotACa(String),
    /// The CA's own certificate has expired (or is not valid yet) at issuance time.
    #[error("the CA certificate is not valid at {now} (valid {not_before}..{not_after})")]
    CaNotValid {
        /// CA notBefore.
        not_before: UnixTime,
        /// CA notAfter.
        not_after: UnixTime,
        /// Issuance time.
        now: UnixTime,
    },
    /// A TTL or time is out of the range an X.509 certificate can express.
    #[error("invalid validity period: {0}")]
    InvalidValidity(String),
    /// A key is malformed, of an unsupported type, too weak, or does not match its certificate.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A DNS name to put in a certificate is invalid.
    #[error("invalid DNS name {0:?}")]
    InvalidDnsName(String),
    /// The CSR's signature does not verify, or it uses an unsupported algorithm.
    #[error("CSR signature does not verify: {0}")]
    CsrSignature(String),
    /// The CSR requests names the caller did not authorize.
    #[error("CSR does not match the authorized identity: {0}")]
    CsrIdentity(String),
    /// An x509-svid bundle entry is unusable.
    #[error("invalid X.509 bundle: {0}")]
    InvalidBundle(String),
    /// The SVID has no private key, but the operation needs one (e.g. a TLS identity).
    #[error("the SVID has no private key")]
    MissingKey,
    /// Certificate generation failed inside rcgen.
    #[error("certificate generation failed: {0}")]
    Generation(String),
    /// rustls refused a configuration or key.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// A key or randomness operation of lanyard-crypto failed.
    #[error(transparent)]
    Core(#[from] lanyard_core::Error),
}

impl Error {
    /// A stable, lowercase code for this error.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Malformed { .. } => "malformed",
            Error::EmptyChain => "empty_chain",
            Error::NoUriSan => "no_uri_san",
            Error::MultipleUriSans { .. } => "multiple_uri_sans",
            Error::NotSpiffeId { .. } => "not_spiffe_id",
            Error::LeafWithoutPath { .. } => "leaf_without_path",
            Error::LeafIsCa => "leaf_is_ca",
            Error::ForbiddenKeyUsage { .. } => "forbidden_key_usage",
            Error::UnknownTrustDomain { .. } => "unknown_trust_domain",
            Error::NoAuthorities { .. } => "no_authorities",
            Error::Expired { .. } => "expired",
            Error::NotYetValid { .. } => "not_yet_valid",
            Error::BadChain { .. } => "bad_chain",
            Error::UntrustedChain { .. } => "untrusted_chain",
            Error::MissingKeyUsage { .. } => "missing_key_usage",
            Error::WrongUsage { .. } => "wrong_usage",
            Error::NameMismatch { .. } => "name_mismatch",
            Error::Unauthorized { .. } => "unauthorized",
            Error::InvalidIdentifier { .. } => "invalid_identifier",
            Error::TrustDomainMismatch { .. } => "trust_domain_mismatch",
            Error::NotACa(_) => "not_a_ca",
            Error::CaNotValid { .. } => "ca_not_valid",
            Error::InvalidValidity(_) => "invalid_validity",
            Error::InvalidKey(_) => "invalid_key",
            Error::InvalidDnsName(_) => "invalid_dns_name",
            Error::CsrSignature(_) => "csr_signature",
            Error::CsrIdentity(_) => "csr_identity",
            Error::InvalidBundle(_) => "invalid_bundle",
            Error::MissingKey => "missing_key",
            Error::Generation(_) => "generation",
            Error::Tls(_) => "tls",
            Error::Core(e) => e.kind(),
        }
    }

    pub(crate) fn malformed(what: &'static str, reason: impl ToString) -> Error {
        Error::Malformed {
            what,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn generation(e: rcgen::Error) -> Error {
        Error::Generation(e.to_string())
    }
}
