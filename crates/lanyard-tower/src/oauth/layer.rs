//! [`AccessTokenLayer`], whose [`Guard`] makes the resource-server checks, in
//! the order RFC 9449 §7.1 gives them (the proof, then the token, then the binding), then
//! the route's scope.

use std::fmt;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::header::HeaderValue;
use http::{HeaderMap, Request};
use lanyard_core::oauth::{
    AccessTokenVerifier, DpopNonce, DpopRequest, DpopVerifier, PresentedProof, Scope, TokenScheme, VerifiedDpopProof,
    alg_values, extract_access_token,
};
use lanyard_core::{CryptoProvider, InMemoryReplayCache, ReplayCache, UnixTime};
use tower::Layer;

use super::config::AccessTokenConfig;
use super::keys::{KeyOutcome, KeySource};
use super::rejection::{Challenge, DPOP_NONCE, Rejection, count};
use super::token::{Binding, VerifiedAccessToken};
use crate::guard::{Guard, GuardService};
use crate::mtls::PeerCertificate;
use crate::server::{header_view, original_uri};

/// What every clone of the layer and its services shares.
struct Shared {
    config: AccessTokenConfig,
    keys: KeySource,
    verifier: AccessTokenVerifier,
    dpop: DpopVerifier,
    replay: Arc<dyn ReplayCache>,
    htu_base: Option<String>,
    challenge: Challenge,
    provider: Arc<dyn CryptoProvider>,
}

/// The tower layer that verifies access tokens (see the [module docs](super)). Cheap to
/// clone; [`AccessTokenLayer::require_scope`] gives a copy for a route that needs a scope.
///
/// ```no_run
/// # fn demo(keys: lanyard_core::oauth::VerificationKeys) -> Result<(), lanyard_core::Error> {
/// use axum::{Router, routing::get};
/// use lanyard_core::oauth::Scope;
/// use lanyard_tower::oauth::{AccessTokenConfig, AccessTokenLayer, KeySource, VerifiedAccessToken};
///
/// let tokens = AccessTokenLayer::new(
///     KeySource::fixed(keys),
///     AccessTokenConfig::new("https://as.example.org", "https://ledger.example.org"),
/// );
/// let app: Router = Router::new()
///     .route("/balance", get(|t: VerifiedAccessToken| async move { t.client_id().to_owned() })
///         .layer(tokens.require_scope(Scope::parse("ledger.read")?)));
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone)]
pub struct AccessTokenLayer {
    shared: Arc<Shared>,
    required: Option<Arc<Scope>>,
}

impl fmt::Debug for AccessTokenLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenLayer")
            .field("config", &self.shared.config)
            .field("keys", &self.shared.keys)
            .field("required", &self.required)
            .finish()
    }
}

impl AccessTokenLayer {
    /// A layer verifying tokens with the keys of `keys` under `config`.
    pub fn new(keys: KeySource, config: AccessTokenConfig) -> AccessTokenLayer {
        let provider = Arc::clone(&config.provider);
        let replay = config
            .replay_cache
            .clone()
            .unwrap_or_else(|| Arc::new(InMemoryReplayCache::default()));
        let challenge = Challenge {
            realm: config.realm.clone(),
            dpop_algs: alg_values(config.dpop.algorithms).join(" "),
            bearer: config.accept_bearer,
        };
        let shared = Shared {
            verifier: AccessTokenVerifier::new(config.token.clone()),
            dpop: DpopVerifier::new(Arc::clone(&provider), config.dpop),
            htu_base: config.htu_base(),
            keys,
            replay,
            challenge,
            provider,
            config,
        };
        AccessTokenLayer {
            shared: Arc::new(shared),
            required: None,
        }
    }

    /// The same layer for a route that also requires every token of `scope` (RFC 6750
    /// §3.1: `403` with `insufficient_scope` otherwise).
    pub fn require_scope(&self, scope: Scope) -> AccessTokenLayer {
        AccessTokenLayer {
            shared: Arc::clone(&self.shared),
            required: Some(Arc::new(scope)),
        }
    }
}

impl<S> Layer<S> for AccessTokenLayer {
    type Service = AccessTokenAuth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GuardService::new(inner, self.clone())
    }
}

/// The service [`AccessTokenLayer`] produces.
pub type AccessTokenAuth<S> = GuardService<S, AccessTokenLayer>;

impl Guard for AccessTokenLayer {
    /// The next DPoP nonce, for the response to a DPoP-bound token.
    type Pass = Option<HeaderValue>;

    async fn admit(&self, mut request: Request<Body>) -> Result<(Request<Body>, Self::Pass), Response> {
        let shared = &self.shared;
        hide_credentials(request.headers_mut());
        let now = shared.config.clock.now();
        let nonce = shared.current_nonce(now);
        let facts = RequestFacts::of(&request);
        let token = shared
            .authenticate(&facts, self.required.as_deref(), now)
            .await
            .map_err(|(rejection, scheme)| rejection.into_response(&shared.challenge, scheme, nonce.as_deref()))?;
        let scheme = token.scheme();
        count(Some(scheme), "ok");
        tracing::debug!(client_id = %token.client_id(), jti = %token.jti(), "access token accepted");
        request.extensions_mut().insert(token);
        // A DPoP client learns the next nonce from any response (RFC 9449 §8.2).
        let next_nonce = match scheme {
            TokenScheme::Dpop => nonce.and_then(|n| HeaderValue::try_from(n).ok()),
            _ => None,
        };
        Ok((request, next_nonce))
    }

    async fn finish(&self, mut response: Response, next_nonce: Self::Pass) -> Response {
        if let Some(nonce) = next_nonce {
            response.headers_mut().insert(DPOP_NONCE, nonce);
        }
        response
    }
}

impl Shared {
    fn current_nonce(&self, now: UnixTime) -> Option<String> {
        let nonces = self.config.dpop_nonces.as_ref()?;
        match nonces.current(now) {
            Ok(n) => Some(n),
            Err(error) => {
                tracing::warn!(%error, "cannot compute the DPoP nonce");
                None
            }
        }
    }

    async fn authenticate(
        &self,
        request: &RequestFacts,
        required: Option<&Scope>,
        now: UnixTime,
    ) -> Result<VerifiedAccessToken, (Rejection, Option<TokenScheme>)> {
        let presented = extract_access_token(request.credentials.iter().map(|(n, v)| (*n, v.as_slice())))
            .map_err(|e| (Rejection::header(e), None))?
            .ok_or((Rejection::Missing, None))?;
        let scheme = presented.scheme;
        let fail = |r: Rejection| (r, Some(scheme));
        let proof = match presented.dpop_proof {
            Some(p) => Some(self.verify_proof(request, p, presented.token, now).map_err(fail)?),
            None => None,
        };
        let token = self
            .keys
            .verify(&self.verifier, presented.token, now)
            .await
            .map_err(|outcome| match outcome {
                KeyOutcome::Token(e) => fail(Rejection::InvalidToken(scheme, e)),
                KeyOutcome::Unavailable(e) => fail(Rejection::Unavailable(e.to_string())),
            })?;
        let presented_proof = PresentedProof {
            dpop_jkt: proof.as_ref().map(|p| p.jkt.as_str()),
            client_certificate: request.certificate.as_ref().map(PeerCertificate::der),
        };
        token
            .check_binding(&presented_proof, self.provider.as_ref())
            .map_err(|e| fail(Rejection::token(scheme, e)))?;
        let cnf = token.claims.cnf.as_ref();
        let binding = match (&proof, cnf) {
            (Some(p), Some(c)) if c.jkt.is_some() => Binding::Dpop {
                jkt: p.jkt.clone(),
                proof_jti: p.jti.clone(),
            },
            (_, Some(c)) if c.x5t_s256.is_some() => Binding::Certificate,
            _ => Binding::Bearer,
        };
        if binding == Binding::Bearer && !self.config.accept_bearer {
            // This resource accepts sender-constrained tokens only.
            return Err(fail(Rejection::InvalidToken(
                scheme,
                lanyard_core::Error::MissingClaim("cnf"),
            )));
        }
        if let Some(required) = required
            && token.require_scope(required).is_err()
        {
            return Err(fail(Rejection::InsufficientScope(scheme, required.clone())));
        }
        // The proof is spent only once everything else passed.
        if let Some(p) = &proof {
            p.record(self.replay.as_ref(), now)
                .map_err(|e| fail(Rejection::proof(e)))?;
        }
        Ok(VerifiedAccessToken {
            claims: token.claims,
            binding,
            kid: token.kid,
        })
    }

    /// Checks the DPoP proof against the request (`htu` = the public base URL + the path).
    fn verify_proof(
        &self,
        request: &RequestFacts,
        proof: &str,
        access_token: &str,
        now: UnixTime,
    ) -> Result<VerifiedDpopProof, Rejection> {
        let Some(base) = &self.htu_base else {
            return Err(Rejection::Unavailable(
                "DPoP needs AccessTokenConfig::public_base_url (the audience is not an http(s) URL)".into(),
            ));
        };
        let uri = format!("{base}{}", request.path);
        let accepted = match &self.config.dpop_nonces {
            Some(n) => Some(n.accepted(now).map_err(|e| Rejection::Unavailable(e.to_string()))?),
            None => None,
        };
        let list: Vec<&str> = accepted.iter().flatten().map(String::as_str).collect();
        let nonce = match accepted {
            Some(_) => DpopNonce::Required(&list),
            None => DpopNonce::NotRequired,
        };
        let dpop_request = DpopRequest {
            method: &request.method,
            uri: &uri,
            access_token: Some(access_token),
            nonce,
        };
        self.dpop.verify(proof, &dpop_request, now).map_err(Rejection::proof)
    }
}

/// What the checks read from a request, owned (the request body is not `Sync`, so the
/// request itself cannot be held across the key fetch).
struct RequestFacts {
    /// The `Authorization` and `DPoP` fields (lowercase names).
    credentials: Vec<(&'static str, Vec<u8>)>,
    method: String,
    /// The path the client sent (before any `Router::nest` stripped a prefix).
    path: String,
    certificate: Option<PeerCertificate>,
}

impl RequestFacts {
    fn of(request: &Request<Body>) -> RequestFacts {
        let mut credentials = Vec::new();
        for (name, value) in header_view(request.headers()) {
            if name == "authorization" {
                credentials.push(("authorization", value.to_vec()));
            } else if name == "dpop" {
                credentials.push(("dpop", value.to_vec()));
            }
        }
        RequestFacts {
            credentials,
            method: request.method().as_str().to_owned(),
            path: original_uri(request).path().to_owned(),
            certificate: request.extensions().get::<PeerCertificate>().cloned(),
        }
    }
}

/// Marks `Authorization` and `DPoP` sensitive, so a handler or layer that logs headers
/// shows `Sensitive` instead of the token.
fn hide_credentials(headers: &mut HeaderMap) {
    for (name, value) in headers.iter_mut() {
        if name == http::header::AUTHORIZATION || name.as_str() == "dpop" {
            value.set_sensitive(true);
        }
    }
}
