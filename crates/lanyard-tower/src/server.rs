//! The server side: a tower layer that authenticates every request in one of the
//! enabled WIMSE modes and hands the handler a [`VerifiedWorkload`].
//!
//! Failures map to the wire in one place, [`Rejection::into_response`]:
//! - no credentials, or a WIT/WPT failure: `401` with `WWW-Authenticate: WPT`
//!   (draft-ietf-wimse-wpt editor's copy; when WPT is not enabled, see below);
//! - an HTTP Message Signature failure: `400` (draft-ietf-wimse-http-signature-06 §3.5
//!   says 401 is NOT RECOMMENDED there), with `Accept-Signature` naming what to sign;
//! - an authenticated workload that the route does not allow: `403`.
//!
//! Bodies are RFC 9457 problem details with a short reason and a stable `kind`; nothing
//! about the credential is logged beyond the workload identifier and the proof's
//! `jti`/nonce. Every outcome is counted in the `lanyard_workload_auth_total` metric
//! (labels `mode`, `outcome`).

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use lanyard_core::httpsig::{
    self, HttpSigPolicy, HttpSigVerifier, RequestParts, ResponseParts, ResponseSigning, TargetComponents,
};
use lanyard_core::wimse::{CarriageConfig, WPT_SCHEME, extract_credentials};
use lanyard_core::{
    Clock, InMemoryReplayCache, ProofTokens, ReplayCache, SystemClock, TrustStore, WitPolicy, WitVerifier, WorkloadId,
    WptPolicy, WptVerifier,
};
use tower::{Layer, Service};

use crate::credentials::CredentialSource;
use crate::mtls::PeerIdentity;

/// Which authentication modes a service accepts.
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
}

/// The mode a request was authenticated with.
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
    /// Where WPTs may be carried.
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

struct Shared {
    config: WorkloadAuthConfig,
    wpt: WptVerifier,
    http_sig: HttpSigVerifier,
}

/// The tower layer that authenticates requests. Cheap to clone.
#[derive(Clone)]
pub struct WorkloadAuthLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for WorkloadAuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadAuthLayer")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl WorkloadAuthLayer {
    /// A layer trusting the WIT keys in `store`.
    pub fn new(store: Arc<TrustStore>, config: WorkloadAuthConfig) -> WorkloadAuthLayer {
        let mut wit = WitVerifier::new(store, config.wit_policy);
        if config.wit_cache_capacity > 0 {
            wit = wit.with_cache(config.wit_cache_capacity);
        }
        let replay = config
            .replay_cache
            .clone()
            .unwrap_or_else(|| Arc::new(InMemoryReplayCache::default()));
        let shared = Shared {
            wpt: WptVerifier::new(wit.clone(), config.wpt_policy, Arc::clone(&replay)),
            http_sig: HttpSigVerifier::new(wit, config.http_sig_policy, replay),
            config,
        };
        WorkloadAuthLayer {
            shared: Arc::new(shared),
        }
    }
}

impl<S> Layer<S> for WorkloadAuthLayer {
    type Service = WorkloadAuth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        WorkloadAuth {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`WorkloadAuthLayer`] produces.
#[derive(Clone)]
pub struct WorkloadAuth<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> fmt::Debug for WorkloadAuth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadAuth").finish_non_exhaustive()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for WorkloadAuth<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        // The clone that was polled ready serves this request (tower's usual pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (request, outcome) = match shared.authenticate(request).await {
                Ok(pair) => pair,
                Err(rejection) => return Ok(rejection.into_response(&shared.config)),
            };
            let response = inner.call(request).await?;
            Ok(match outcome {
                Some(sign) => shared.sign_response(response, sign).await,
                None => response,
            })
        })
    }
}

/// Why a request was refused.
enum Rejection {
    /// No credentials for any enabled mode.
    Missing,
    /// Credentials were presented and failed.
    Failed(AuthMode, lanyard_core::Error),
    /// The body could not be read or is too large.
    Body(String),
}

/// A signed request whose response must be signed too.
struct ResponseToSign {
    method: String,
    target: String,
    nonce: String,
}

fn count(mode: &'static str, outcome: &'static str) {
    metrics::counter!("lanyard_workload_auth_total", "mode" => mode, "outcome" => outcome).increment(1);
}

fn header_view(headers: &HeaderMap) -> Vec<(&str, &[u8])> {
    headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect()
}

/// The URI the client sent. Inside `Router::nest` axum strips the prefix from
/// `request.uri()` but keeps the original in [`OriginalUri`]; the audience and the signed
/// `@request-target` are about the original.
fn original_uri(request: &Request<Body>) -> &http::Uri {
    request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| request.uri(), |o| &o.0)
}

impl Shared {
    fn audience(&self, request: &Request<Body>) -> String {
        format!("{}{}", self.config.audience_base, original_uri(request).path())
    }

    /// Authenticates `request`, returning it (with the body restored if it was read and
    /// the [`VerifiedWorkload`] in its extensions) and whether the response must be signed.
    async fn authenticate(
        &self,
        mut request: Request<Body>,
    ) -> Result<(Request<Body>, Option<ResponseToSign>), Rejection> {
        let modes = self.config.modes;
        let headers = request.headers();
        let signed = modes.http_signature && headers.contains_key("signature-input");
        let wpt = modes.wpt
            && (headers.contains_key("workload-proof-token")
                || headers
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(' ').next())
                    .is_some_and(|s| s.eq_ignore_ascii_case(WPT_SCHEME)));
        let peer = request.extensions().get::<PeerIdentity>().cloned();
        let (verified, to_sign) = if signed {
            self.verify_signed(&mut request).await?
        } else if wpt {
            (self.verify_wpt(&request)?, None)
        } else if let (true, Some(peer)) = (modes.mtls, peer) {
            let verified = VerifiedWorkload {
                id: WorkloadId::Spiffe(peer.id),
                mode: AuthMode::Mtls,
                claims: None,
                proof_id: None,
            };
            (verified, None)
        } else {
            return Err(Rejection::Missing);
        };
        count(verified.mode.as_str(), "ok");
        tracing::debug!(workload = %verified.id, mode = verified.mode.as_str(), proof = ?verified.proof_id, "workload authenticated");
        request.extensions_mut().insert(verified);
        Ok((request, to_sign))
    }

    fn verify_wpt(&self, request: &Request<Body>) -> Result<VerifiedWorkload, Rejection> {
        let fail = |e| Rejection::Failed(AuthMode::Wpt, e);
        let headers = header_view(request.headers());
        let presented = extract_credentials(headers.iter().copied(), &self.config.carriage).map_err(fail)?;
        let mut other = Vec::new();
        for name in &self.config.other_token_headers {
            if let Some(v) = request.headers().get(name.as_str()) {
                let v = v.to_str().map_err(|_| {
                    fail(lanyard_core::Error::Header {
                        name: "oth",
                        reason: "a bound context token is not visible ASCII",
                    })
                })?;
                other.push((name.as_str(), v));
            }
        }
        let tokens = ProofTokens {
            wit: presented.wit,
            wpt: presented.wpt,
            access_token: presented.access_token,
            txn_token: presented.txn_token,
            other_tokens: &other,
        };
        let now = self.config.clock.now();
        let proof = self.wpt.verify(&tokens, &self.audience(request), now).map_err(fail)?;
        Ok(VerifiedWorkload {
            id: proof.wit.sub.clone(),
            mode: AuthMode::Wpt,
            claims: Some(proof.wit.claims.clone()),
            proof_id: Some(proof.wpt.jti),
        })
    }

    async fn verify_signed(
        &self,
        request: &mut Request<Body>,
    ) -> Result<(VerifiedWorkload, Option<ResponseToSign>), Rejection> {
        let body = std::mem::take(request.body_mut());
        let bytes = read_limited(body, self.config.max_body_bytes)
            .await
            .map_err(Rejection::Body)?;
        let uri = original_uri(request).clone();
        let target = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
        let method = request.method().as_str().to_owned();
        let authority = uri.authority().map(|a| a.as_str().to_owned());
        let audience = self.audience(request);
        let parts = RequestParts {
            method: &method,
            target: &target,
            authority: authority.as_deref(),
            scheme: uri.scheme_str(),
            headers: header_view(request.headers()),
        };
        let now = self.config.clock.now();
        let verified = self
            .http_sig
            .verify_request(&parts, &bytes, &audience, now)
            .map_err(|e| Rejection::Failed(AuthMode::HttpSignature, e))?;
        *request.body_mut() = Body::from(bytes);
        let to_sign = (verified.signature.sign_response || self.config.sign_all_responses).then(|| ResponseToSign {
            method,
            target,
            nonce: verified.signature.nonce.clone(),
        });
        let workload = VerifiedWorkload {
            id: verified.wit.sub.clone(),
            mode: AuthMode::HttpSignature,
            claims: Some(verified.wit.claims.clone()),
            proof_id: Some(verified.signature.nonce),
        };
        Ok((workload, to_sign))
    }

    /// Signs a response (-06 §3.4). If it cannot, the caller gets an error, never a
    /// successful unsigned response.
    async fn sign_response(&self, response: Response, sign: ResponseToSign) -> Response {
        let cannot = |detail: &str| {
            count("http_signature", "response_not_signed");
            problem(
                StatusCode::NOT_IMPLEMENTED,
                "response_not_signed",
                detail,
                &HeaderMap::new(),
            )
        };
        let Some(source) = &self.config.response_credentials else {
            return cannot("a signed response was requested but this service has no credentials to sign with");
        };
        let creds = match source.credentials() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot load the credentials to sign a response");
                return cannot("the service's signing credentials are unavailable");
            }
        };
        let (mut parts, body) = response.into_parts();
        let Ok(bytes) = read_limited(body, self.config.max_body_bytes).await else {
            return cannot("the response is too large to sign");
        };
        let request = RequestParts {
            method: &sign.method,
            target: &sign.target,
            ..RequestParts::default()
        };
        let unsigned = ResponseParts {
            status: parts.status.as_u16(),
            headers: header_view(&parts.headers),
        };
        let target = self
            .config
            .http_sig_policy
            .target
            .unwrap_or(TargetComponents::RequestTarget);
        let opts = ResponseSigning {
            wit: &creds.wit,
            request_nonce: &sign.nonce,
            lifetime: 60,
            target,
        };
        let provider = lanyard_crypto::provider();
        let now = self.config.clock.now();
        let signed = match httpsig::sign_response(
            creds.key.as_ref(),
            &unsigned,
            &bytes,
            &request,
            &opts,
            now,
            provider.as_ref(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "signing a response failed");
                return cannot("the response could not be signed");
            }
        };
        for (name, value) in signed.headers {
            if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                parts.headers.insert(n, v);
            }
        }
        Response::from_parts(parts, Body::from(bytes))
    }
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, String> {
    let limited = http_body_util::Limited::new(body, limit);
    limited
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|e| format!("cannot read the body (limit {limit} bytes): {e}"))
}

/// An RFC 9457 problem-details response.
fn problem(status: StatusCode, kind: &str, detail: &str, extra: &HeaderMap) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "kind": kind,
    });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    for (name, value) in extra {
        response.headers_mut().append(name, value.clone());
    }
    response
}

/// What to ask for: `WWW-Authenticate: WPT` and/or an `Accept-Signature` template.
fn challenges(modes: Modes) -> HeaderMap {
    let mut h = HeaderMap::new();
    if modes.wpt {
        h.insert(http::header::WWW_AUTHENTICATE, HeaderValue::from_static(WPT_SCHEME));
    }
    if modes.http_signature {
        h.insert(
            HeaderName::from_static("accept-signature"),
            HeaderValue::from_static(
                "wimse=(\"@method\" \"@request-target\" \"workload-identity-token\");tag=\"wimse-workload-to-workload\"",
            ),
        );
    }
    h
}

impl Rejection {
    /// The one place where authentication failures become HTTP responses.
    fn into_response(self, config: &WorkloadAuthConfig) -> Response {
        let modes = config.modes;
        match self {
            Rejection::Missing => {
                count("none", "missing");
                let status = if modes.wpt {
                    StatusCode::UNAUTHORIZED
                } else if modes.http_signature {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::FORBIDDEN
                };
                let detail = match (modes.wpt, modes.http_signature, modes.mtls) {
                    (false, false, true) => "a client certificate (X.509-SVID) is required",
                    _ => {
                        "no workload credentials: send a Workload-Identity-Token with a WPT or an HTTP message signature"
                    }
                };
                problem(status, "missing_credentials", detail, &challenges(modes))
            }
            Rejection::Failed(mode, e) => {
                count(mode.as_str(), e.kind());
                tracing::info!(mode = mode.as_str(), kind = e.kind(), "workload authentication failed");
                let (status, extra) = match mode {
                    AuthMode::HttpSignature => (StatusCode::BAD_REQUEST, challenges(Modes { wpt: false, ..modes })),
                    _ => (
                        StatusCode::UNAUTHORIZED,
                        challenges(Modes {
                            http_signature: false,
                            ..modes
                        }),
                    ),
                };
                problem(status, e.kind(), &e.to_string(), &extra)
            }
            Rejection::Body(detail) => {
                count("http_signature", "body");
                problem(StatusCode::PAYLOAD_TOO_LARGE, "body", &detail, &HeaderMap::new())
            }
        }
    }
}

/// A per-route authorization layer: lets through only callers whose identifier is listed
/// or whose trust domain is listed (identifiers compare byte for byte). Needs a
/// [`WorkloadAuthLayer`] outside it.
#[derive(Clone, Debug, Default)]
pub struct Authorize {
    ids: Vec<WorkloadId>,
    trust_domains: Vec<String>,
}

impl Authorize {
    /// Allow exactly these workloads.
    pub fn workloads(ids: impl IntoIterator<Item = WorkloadId>) -> Authorize {
        Authorize {
            ids: ids.into_iter().collect(),
            trust_domains: Vec::new(),
        }
    }

    /// Allow any workload of these trust domains.
    pub fn trust_domains<T: Into<String>>(tds: impl IntoIterator<Item = T>) -> Authorize {
        Authorize {
            ids: Vec::new(),
            trust_domains: tds.into_iter().map(Into::into).collect(),
        }
    }

    /// Also allow these workloads.
    pub fn or_workloads(mut self, ids: impl IntoIterator<Item = WorkloadId>) -> Authorize {
        self.ids.extend(ids);
        self
    }

    /// Whether `workload` may call the route.
    pub fn allows(&self, workload: &VerifiedWorkload) -> bool {
        self.ids.contains(&workload.id) || self.trust_domains.iter().any(|td| td == workload.trust_domain())
    }
}

impl<S> Layer<S> for Authorize {
    type Service = AuthorizeService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthorizeService {
            inner,
            policy: Arc::new(self.clone()),
        }
    }
}

/// The service [`Authorize`] produces.
#[derive(Clone, Debug)]
pub struct AuthorizeService<S> {
    inner: S,
    policy: Arc<Authorize>,
}

impl<S> Service<Request<Body>> for AuthorizeService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let verdict = match request.extensions().get::<VerifiedWorkload>() {
            None => Err(problem(
                StatusCode::UNAUTHORIZED,
                "missing_credentials",
                "the caller is not authenticated",
                &HeaderMap::new(),
            )),
            Some(w) if self.policy.allows(w) => Ok(()),
            Some(w) => {
                count(w.mode.as_str(), "forbidden");
                tracing::info!(workload = %w.id, "workload not allowed on this route");
                Err(problem(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    &format!("{} may not call this route", w.id),
                    &HeaderMap::new(),
                ))
            }
        };
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            match verdict {
                Ok(()) => inner.call(request).await,
                Err(response) => Ok(response),
            }
        })
    }
}
