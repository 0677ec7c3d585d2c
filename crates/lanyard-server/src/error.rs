//! The server's error type, and the policy every module follows for errors.
//!
//! # What each error type is for
//!
//! - [`ServerError`] is the crate's error: what an operation a client asked for (create an
//!   entry, attest, issue a credential, serve a bundle) fails with. Its first variants say
//!   what was wrong with the request (`Invalid`, `NotFound`, `Conflict`,
//!   `PermissionDenied`, a refused credential or CSR); the rest say which part of the server
//!   failed (`Keys`, `Store`, `X509`, `Tls`, `Transport`) and carry that part's error.
//! - Each subsystem has its own enum, joined to [`ServerError`] by `From`:
//!   [`StoreError`] (the datastore traits),
//!   [`CaError`] (signing authorities and keys at rest),
//!   [`AttestError`](crate::attest::AttestError) with one enum per method,
//!   [`JoinTokenError`](crate::attest::JoinTokenError) and
//!   [`X509PopError`](crate::attest::X509PopError) (node attestation),
//!   [`FederationError`](crate::federation::FederationError) (fetching foreign bundles; only
//!   logged, never sent to a client) and [`ConfigError`](crate::config::ConfigError).
//! - Each network edge has one error type and one mapping to its wire, in one file:
//!   - the agent API (gRPC): [`AgentApiError`](crate::api::status::AgentApiError) →
//!     `tonic::Status` in `api/status.rs`, the only place gRPC codes are chosen;
//!   - the admin and public HTTP endpoints: [`ServerError`] → HTTP status and
//!     `application/problem+json` body in `endpoints/status.rs`, the only place HTTP error
//!     statuses are chosen.
//!
//!   Domain code (attestation, entries, issuance, datastore, CA, federation) names neither
//!   `tonic::Status` nor an HTTP status.
//!
//! # Rules
//!
//! - **Errors keep their cause.** A variant that wraps another error holds it as
//!   `#[source]` (never its `to_string()`), and its message, lowercase, ends with the
//!   cause's message, so that a log line printing `%error` shows the whole story.
//! - **Stable codes.** [`ServerError::kind`] (and the subsystem enums' `kind()`) give a
//!   lowercase code for audit lines and problem documents; messages may change, codes do not.
//! - **`anyhow` only at the top.** The composition root (`server.rs`: start-up context such as
//!   "binding the public address") and configuration loading (`config.rs`: reading the files
//!   a configuration names) may use `anyhow`; every other module returns a typed error.
//! - **Server failures are logged where they are mapped**: the edge mapping logs an
//!   internal error (datastore, keys, TLS) once, with its cause, before answering
//!   `Unavailable` or 500.

use crate::ca::CaError;
use crate::datastore::StoreError;

/// Why a server operation failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The request is malformed or breaks a rule (bad identifier, unknown selector type...).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The object already exists or changed concurrently.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller may not do this (banned agent, unauthorized identity, used join token).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A credential could not be issued.
    #[error(transparent)]
    Credential(#[from] lanyard_core::Error),
    /// The caller's credentials (a WIT and its WPT, or none at all) are missing or do not
    /// verify.
    #[error("unauthenticated: {0}")]
    Unauthenticated(#[source] lanyard_core::Error),
    /// An OAuth access token (or its DPoP proof) presented to a protected resource of this
    /// server was refused (RFC 6750 §3.1, RFC 9449 §7.1): `invalid_request` is 400,
    /// `invalid_token`, `invalid_dpop_proof` and `use_dpop_nonce` are 401, each with a
    /// challenge for `scheme`.
    #[error("access token refused: {reason}")]
    AccessToken {
        /// How the token was presented (`Bearer` or `DPoP`).
        scheme: lanyard_core::oauth::TokenScheme,
        /// Why (the authorization server's error; its `code()` is the RFC 6750 code).
        #[source]
        reason: Box<crate::oauth::OAuthError>,
        /// The DPoP nonce to retry with, when the server requires nonces.
        dpop_nonce: Option<String>,
    },
    /// The client certificate on the mutual-TLS listener is missing or not a usable
    /// X.509-SVID of this or a federated trust domain.
    #[error("client certificate: {0}")]
    ClientCertificate(#[source] lanyard_x509::Error),
    /// A certificate signing request was refused (malformed, another identity, a weak key).
    #[error("invalid request: {0}")]
    Csr(#[source] lanyard_x509::Error),
    /// The CA or key manager failed.
    #[error("key management: {0}")]
    Keys(#[from] CaError),
    /// An X.509 operation on the server's own material failed (its SVID, the bundle, a
    /// check of what it just issued).
    #[error("key management: {context}: {source}")]
    X509 {
        /// What the server was doing.
        context: &'static str,
        /// What failed.
        #[source]
        source: lanyard_x509::Error,
    },
    /// A TLS configuration could not be built.
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// The datastore failed.
    #[error("datastore: {0}")]
    Store(#[source] StoreError),
    /// The agent API's gRPC server failed.
    #[error("agent API server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl From<StoreError> for ServerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ServerError::NotFound(m),
            StoreError::AlreadyExists(m) | StoreError::Conflict(m) => ServerError::Conflict(m),
            StoreError::Invalid(m) => ServerError::Invalid(m),
            other => ServerError::Store(other),
        }
    }
}

impl ServerError {
    /// A stable lowercase code.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerError::Invalid(_) | ServerError::Csr(_) => "invalid_request",
            ServerError::NotFound(_) => "not_found",
            ServerError::Conflict(_) => "conflict",
            ServerError::PermissionDenied(_) => "permission_denied",
            ServerError::Credential(e) | ServerError::Unauthenticated(e) => e.kind(),
            ServerError::AccessToken { reason, .. } => reason.kind(),
            ServerError::ClientCertificate(e) => e.kind(),
            ServerError::Keys(_) | ServerError::X509 { .. } => "key_management",
            ServerError::Tls(_) => "tls",
            ServerError::Store(_) => "datastore",
            ServerError::Transport(_) => "transport",
        }
    }
}
