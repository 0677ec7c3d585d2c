//! Transaction Tokens in services (draft-ietf-oauth-transaction-tokens-11 §"Txn-Token
//! Validation"): [`TxnTokenLayer`] requires (or accepts) the `Txn-Token` header, verifies
//! the token with the Transaction Token Service's keys for this service's trust domain, and
//! hands handlers a [`VerifiedTxn`].
//!
//! Put it inside [`crate::WorkloadAuthLayer`] (that is, `.layer(TxnTokenLayer)` first, then
//! `.layer(WorkloadAuthLayer)`, so the workload layer runs first): the WPT's `tth` (or the
//! HTTP message signature) then binds the Txn-Token to the authenticated caller, and this
//! layer verifies the same token. A Txn-Token is transaction context, never authentication:
//! this layer does not make a request authenticated.
//!
//! Failures answer with RFC 9457 problem details and a stable `kind`: `400` for a header
//! that is malformed or holds more than one token; `403` for a missing (when required) or
//! invalid token (the request is understood, the transaction context is refused; `401`
//! would need an authentication challenge, and a Txn-Token is not a credential). The token
//! is never logged; outcomes are counted in `lanyard_txn_token_total` (label `outcome`).
//!
//! The TTS's keys come from a [`TxnTokenKeys`] handle that the service refreshes (from the
//! TTS's JWKS) while the layer runs.

use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::Response;
use http::request::Parts;
use http::{Request, StatusCode};
use lanyard_core::oauth::{
    TxnTokenClaims, TxnTokenPolicy, TxnTokenVerifier, VerificationKeys, VerifiedTxnToken, extract_txn_token,
};
use lanyard_core::{Clock, SystemClock};
use tower::Layer;

use crate::guard::{Guard, GuardService};

/// The Transaction Token Service's current keys, shared by every clone of the layer and
/// replaceable while it runs (when the TTS rotates).
#[derive(Clone)]
pub struct TxnTokenKeys(Arc<RwLock<Arc<VerificationKeys>>>);

impl TxnTokenKeys {
    /// A handle holding `keys`.
    pub fn new(keys: VerificationKeys) -> TxnTokenKeys {
        TxnTokenKeys(Arc::new(RwLock::new(Arc::new(keys))))
    }

    /// Replaces the keys (for example after fetching the TTS's JWKS again).
    pub fn replace(&self, keys: VerificationKeys) {
        let mut slot = self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Arc::new(keys);
    }

    fn current(&self) -> Arc<VerificationKeys> {
        Arc::clone(&self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl fmt::Debug for TxnTokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TxnTokenKeys").field(&self.current()).finish()
    }
}

/// The verified Txn-Token of a request, as a handler extractor (use `Option<VerifiedTxn>`
/// where the layer does not require one). `Debug` shows the claims, never the token.
#[derive(Clone, Debug)]
pub struct VerifiedTxn(pub VerifiedTxnToken);

impl VerifiedTxn {
    /// The claims: `txn`, `sub`, `scope`, `req_wl`, `tctx`, `rctx`, ...
    pub fn claims(&self) -> &TxnTokenClaims {
        &self.0.claims
    }
}

/// The verified token as it was sent, kept for forwarding it unmodified on outgoing calls
/// (draft-ietf-oauth-transaction-tokens-11: "MUST forward ... unmodified"). `Debug` hides
/// the value.
#[derive(Clone)]
pub struct ForwardableTxnToken(String);

impl ForwardableTxnToken {
    /// The token, to put in the outgoing request's `Txn-Token` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ForwardableTxnToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ForwardableTxnToken({} bytes)", self.0.len())
    }
}

fn missing_extension() -> Response {
    problem(
        StatusCode::FORBIDDEN,
        "missing_txn_token",
        "this route needs a verified Txn-Token",
    )
}

impl<S: Send + Sync> FromRequestParts<S> for VerifiedTxn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<VerifiedTxn>()
            .cloned()
            .ok_or_else(missing_extension)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for VerifiedTxn {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<VerifiedTxn>().cloned())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ForwardableTxnToken {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ForwardableTxnToken>()
            .cloned()
            .ok_or_else(missing_extension)
    }
}

struct Shared {
    verifier: TxnTokenVerifier,
    keys: TxnTokenKeys,
    required: bool,
    clock: Arc<dyn Clock>,
}

/// The tower layer that verifies Txn-Tokens. Cheap to clone.
#[derive(Clone)]
pub struct TxnTokenLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for TxnTokenLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxnTokenLayer")
            .field("policy", self.shared.verifier.policy())
            .field("required", &self.shared.required)
            .finish()
    }
}

impl TxnTokenLayer {
    /// A layer requiring a Txn-Token of `policy.trust_domain` signed by one of `keys`.
    pub fn new(policy: TxnTokenPolicy, keys: TxnTokenKeys) -> TxnTokenLayer {
        TxnTokenLayer {
            shared: Arc::new(Shared {
                verifier: TxnTokenVerifier::new(policy),
                keys,
                required: true,
                clock: Arc::new(SystemClock),
            }),
        }
    }

    /// Lets requests without a `Txn-Token` through (a present one is still verified).
    #[must_use]
    pub fn optional(self) -> TxnTokenLayer {
        self.map(|s| s.required = false)
    }

    /// Uses `clock` instead of the system clock (tests).
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> TxnTokenLayer {
        self.map(|s| s.clock = clock)
    }

    fn map(self, change: impl FnOnce(&mut Shared)) -> TxnTokenLayer {
        let mut shared = Arc::try_unwrap(self.shared).unwrap_or_else(|arc| Shared {
            verifier: arc.verifier.clone(),
            keys: arc.keys.clone(),
            required: arc.required,
            clock: Arc::clone(&arc.clock),
        });
        change(&mut shared);
        TxnTokenLayer {
            shared: Arc::new(shared),
        }
    }
}

impl<S> Layer<S> for TxnTokenLayer {
    type Service = TxnTokenAuth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GuardService::new(inner, self.clone())
    }
}

/// The service [`TxnTokenLayer`] produces.
pub type TxnTokenAuth<S> = GuardService<S, TxnTokenLayer>;

impl Guard for TxnTokenLayer {
    type Pass = ();

    async fn admit(&self, mut request: Request<Body>) -> Result<(Request<Body>, ()), Response> {
        self.shared.check(&mut request).map_err(Refusal::into_response)?;
        Ok((request, ()))
    }
}

/// Why a request's Txn-Token was refused.
enum Refusal {
    /// None was sent and the layer requires one.
    Missing,
    /// The header is malformed or holds more than one token.
    Malformed(lanyard_core::Error),
    /// The token failed verification.
    Invalid(lanyard_core::Error),
}

impl Refusal {
    /// The one place where Txn-Token failures become responses.
    fn into_response(self) -> Response {
        match self {
            Refusal::Missing => {
                count("missing");
                missing_extension()
            }
            Refusal::Malformed(e) => {
                count(e.kind());
                problem(StatusCode::BAD_REQUEST, e.kind(), &e.to_string())
            }
            Refusal::Invalid(e) => {
                count(e.kind());
                tracing::info!(kind = e.kind(), "Txn-Token refused");
                problem(StatusCode::FORBIDDEN, e.kind(), &e.to_string())
            }
        }
    }
}

impl Shared {
    /// Verifies the request's Txn-Token and puts it on the request.
    fn check(&self, request: &mut Request<Body>) -> Result<(), Refusal> {
        let headers = request.headers();
        let token = match extract_txn_token(headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes()))) {
            Ok(Some(token)) => token.to_owned(),
            Ok(None) if self.required => return Err(Refusal::Missing),
            Ok(None) => return Ok(()),
            Err(e) => return Err(Refusal::Malformed(e)),
        };
        let verified = self
            .verifier
            .verify(&token, &self.keys.current(), self.clock.now())
            .map_err(Refusal::Invalid)?;
        count("ok");
        tracing::debug!(txn = %verified.claims.txn, req_wl = %verified.claims.req_wl, "Txn-Token verified");
        if let Some(value) = request.headers_mut().get_mut("txn-token") {
            value.set_sensitive(true);
        }
        request.extensions_mut().insert(VerifiedTxn(verified));
        request.extensions_mut().insert(ForwardableTxnToken(token));
        Ok(())
    }
}

fn count(outcome: &'static str) {
    metrics::counter!("lanyard_txn_token_total", "outcome" => outcome).increment(1);
}

/// An RFC 9457 problem-details response.
fn problem(status: StatusCode, kind: &str, detail: &str) -> Response {
    crate::server::problem(status, kind, detail, &http::HeaderMap::new())
}
