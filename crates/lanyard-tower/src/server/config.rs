//! What a service accepts: the modes, the policies, and what a handler learns about its caller.

use std::fmt;
use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::Response;
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use lanyard_core::httpsig::HttpSigPolicy;
use lanyard_core::wimse::CarriageConfig;
use lanyard_core::{Clock, ReplayCache, SystemClock, WitPolicy, WorkloadId, WptPolicy};

use super::rejection::problem;
use crate::credentials::CredentialSource;

/// Which authentication modes a service accepts: [`Modes::ALL`], or [`Modes::NONE`] with the
/// `with_*` builders (a struct literal is not possible outside this crate: modes will be
/// added).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Modes {
    /// WIT + Workload Proof Token.
    pub wpt: bool,
    /// WIT + HTTP Message Signature.
    pub http_signature: bool,
    /// Mutual TLS with an X.509-SVID (the handshake is done by [`crate::mtls`]).
    pub mtls: bool,
}

impl Modes {
    /// Every mode.
    pub const ALL: Modes = Modes {
        wpt: true,
        http_signature: true,
        mtls: true,
    };

    /// No mode (a start for the `with_*` builders).
    pub const NONE: Modes = Modes {
        wpt: false,
        http_signature: false,
        mtls: false,
    };

    /// These modes plus WIT + WPT.
    pub const fn with_wpt(mut self) -> Modes {
        self.wpt = true;
        self
    }

    /// These modes plus WIT + HTTP Message Signature.
    pub const fn with_http_signature(mut self) -> Modes {
        self.http_signature = true;
        self
    }

    /// These modes plus mutual TLS.
    pub const fn with_mtls(mut self) -> Modes {
        self.mtls = true;
        self
    }
}

/// The mode a request was authenticated with.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// WIT + WPT.
    Wpt,
    /// WIT + HTTP Message Signature.
    HttpSignature,
    /// Mutual TLS.
    Mtls,
}

impl AuthMode {
    /// A short lowercase name (metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Wpt => "wpt",
            AuthMode::HttpSignature => "http_signature",
            AuthMode::Mtls => "mtls",
        }
    }
}

/// The authenticated caller, available to handlers as an axum extractor.
#[derive(Clone, Debug)]
pub struct VerifiedWorkload {
    /// The caller's workload identifier.
    pub id: WorkloadId,
    /// How it was authenticated.
    pub mode: AuthMode,
    /// The WIT's claims (absent for mTLS).
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// The proof's `jti` (WPT) or `nonce` (HTTP signature).
    pub proof_id: Option<String>,
}

impl VerifiedWorkload {
    /// The caller's trust domain.
    pub fn trust_domain(&self) -> &str {
        self.id.trust_domain()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for VerifiedWorkload {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<VerifiedWorkload>().cloned().ok_or_else(|| {
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "not_configured",
                "the route has no WorkloadAuthLayer",
                &HeaderMap::new(),
            )
        })
    }
}

/// The `Txn-Token` of an authenticated request, as a handler extractor (use
/// `Option<UnverifiedTxnToken>` on routes where it is optional).
///
/// It is **bound** to the caller's proof — the WPT's `tth` matched it, or the HTTP
/// message signature covers it — so it came from the authenticated workload, but it is
/// **not verified**: its signature, issuer, audience and lifetime are not checked until
/// Lanyard verifies Txn-Tokens (draft-ietf-oauth-transaction-tokens). Treat it as
/// transaction context, never as authentication. Its `Debug` form hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct UnverifiedTxnToken(pub(crate) String);

impl UnverifiedTxnToken {
    /// The token as the caller sent it, unverified.
    pub fn as_unverified_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UnverifiedTxnToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnverifiedTxnToken({} bytes)", self.0.len())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for UnverifiedTxnToken {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<UnverifiedTxnToken>().cloned().ok_or_else(|| {
            problem(
                StatusCode::BAD_REQUEST,
                "missing_txn_token",
                "this route needs a Txn-Token bound to the caller's proof",
                &HeaderMap::new(),
            )
        })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for UnverifiedTxnToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<UnverifiedTxnToken>().cloned())
    }
}

/// How a service authenticates its callers.
#[derive(Clone)]
pub struct WorkloadAuthConfig {
    /// `scheme://authority` this service is known as (from configuration, never from
    /// `Host`); the expected WPT `aud` and HTTP-signature `wimse-aud` of a request is this
    /// plus the request path.
    pub audience_base: String,
    /// Accepted modes.
    pub modes: Modes,
    /// WIT rules.
    pub wit_policy: WitPolicy,
    /// WPT rules.
    pub wpt_policy: WptPolicy,
    /// HTTP-signature rules.
    pub http_sig_policy: HttpSigPolicy,
    /// Where WPTs may be carried. `carriage.accept_legacy_header` is the wpt-01
    /// compatibility switch of the whole layer: it also turns on
    /// [`WptPolicy::accept_wpt01`] (an `ath`-bound `Authorization: Bearer` token beside the
    /// `Workload-Proof-Token` header; the token is bound, never used to authenticate).
    pub carriage: CarriageConfig,
    /// Context-token headers to bind with the WPT's `oth` (lowercase names).
    pub other_token_headers: Vec<String>,
    /// Largest request (and signed response) body buffered for `Content-Digest`.
    pub max_body_bytes: usize,
    /// Verified WITs cached (0 disables the cache).
    pub wit_cache_capacity: usize,
    /// Proof `jti`s / nonces remembered; defaults to an in-memory cache of 100 000.
    pub replay_cache: Option<Arc<dyn ReplayCache>>,
    /// The service's own WIT and key, to sign responses in HTTP-signature mode.
    pub response_credentials: Option<Arc<dyn CredentialSource>>,
    /// Sign every response to a signed request, not only when asked (`wimse-sign-response`).
    pub sign_all_responses: bool,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl fmt::Debug for WorkloadAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadAuthConfig")
            .field("audience_base", &self.audience_base)
            .field("modes", &self.modes)
            .finish_non_exhaustive()
    }
}

impl WorkloadAuthConfig {
    /// Defaults for a service known as `audience_base` (e.g. `https://orders.example.org`):
    /// WPT and HTTP-signature modes, WIMSE WIT policy, 1 MiB bodies, a 10 000-entry WIT cache.
    pub fn new(audience_base: impl Into<String>) -> WorkloadAuthConfig {
        WorkloadAuthConfig {
            audience_base: audience_base.into().trim_end_matches('/').to_owned(),
            modes: Modes {
                wpt: true,
                http_signature: true,
                mtls: false,
            },
            wit_policy: WitPolicy::wimse(),
            wpt_policy: WptPolicy::default(),
            http_sig_policy: HttpSigPolicy::default(),
            carriage: CarriageConfig::default(),
            other_token_headers: Vec::new(),
            max_body_bytes: 1 << 20,
            wit_cache_capacity: 10_000,
            replay_cache: None,
            response_credentials: None,
            sign_all_responses: false,
            clock: Arc::new(SystemClock),
        }
    }
}
