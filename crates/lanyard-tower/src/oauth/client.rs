//! The client side: [`OAuthClientMiddleware`], a reqwest middleware that obtains access
//! tokens with `client_credentials` (RFC 6749 §4.4; `scope`, RFC 8707 `resource`, RFC 8693
//! `audience`), caches them per scope and target, refreshes them before they expire, and
//! sends them as `Bearer` (RFC 6750 §2.1) or DPoP-bound (RFC 9449 §7.1) tokens.
//!
//! The token endpoint is configured or discovered from the RFC 8414 metadata of the
//! issuer (the document's `issuer` must match; with mutual TLS its
//! `mtls_endpoint_aliases.token_endpoint` is used when present, RFC 8705 §5). Client
//! authentication comes from a [`ClientCredentialSource`]: a `jwt-spiffe` JWT-SVID, a
//! fresh `private_key_jwt` assertion per request, or mutual TLS; `client_id` is always
//! sent (required with SPIFFE client authentication, editor's copy of
//! draft-ietf-oauth-spiffe-client-auth after PR #44).
//!
//! With DPoP the middleware holds one key for its lifetime, proves it at the token
//! endpoint (no `ath`) and on every API call (with `ath`), remembers the latest
//! `DPoP-Nonce` of each origin, and retries a request once when the authorization server
//! (`400`) or the resource server (`401`) answers `use_dpop_nonce` (RFC 9449 §8, §9).
//! Requests retried at a resource server must have a body that can be cloned.
//!
//! A service in a call chain that received a Txn-Token forwards it as it is
//! ([`crate::ForwardableTxnToken`]) or, to add its own context, asks the Transaction Token
//! Service for a replacement with [`OAuthClientMiddleware::replace_txn_token`] (a token
//! exchange with the received token as `subject_token`, authenticated like every other
//! request of the middleware; draft-ietf-oauth-transaction-tokens-11).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use lanyard_core::oauth::{
    AccessTokenType, AuthorizationServerMetadata, ClientAssertionParams, ClientAssertionType, DpopProofParams,
    ErrorCode, ErrorResponse, GrantType, Scope, TokenResponse, check_discovered_url, check_remote_url,
    create_client_assertion, create_dpop_proof, encode_form, loggable_url, metadata_url,
};
use lanyard_core::{Algorithm, Clock, CryptoProvider, SigningKey, SystemClock, UnixTime};
use reqwest_middleware::Next;
use tokio::sync::OnceCell;

use super::credentials::{ClientCredential, ClientCredentialSource};
use super::keys::{RemoteKeysConfig, get, read_limited, refuse_redirect};
use crate::client::middleware_error;
use crate::error::Error;

/// A cached token is not sent in its last seconds (a request in flight must not arrive
/// with an expired token): past that, requests wait for a new one.
const USE_GUARD: u64 = 5;

/// How long a failed background refresh waits before the next one.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The largest token-endpoint response read.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// `DPoP` (RFC 9449 §4.1) and `DPoP-Nonce` (§8.1).
const DPOP: HeaderName = HeaderName::from_static("dpop");
const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// How the middleware obtains tokens.
#[derive(Clone)]
pub struct OAuthClientConfig {
    /// The authorization server's issuer identifier (the `aud` of client assertions).
    pub issuer: String,
    /// The token endpoint; discovered from the issuer's metadata when `None`.
    pub token_endpoint: Option<String>,
    /// The client's `client_id` (always sent).
    pub client_id: String,
    /// The scope requested by default.
    pub scope: Option<Scope>,
    /// The `resource` values (RFC 8707) requested by default.
    pub resources: Vec<String>,
    /// The `audience` values (RFC 8693 §2.1) requested by default.
    pub audiences: Vec<String>,
    /// Bind tokens with DPoP (an ES256 key held by the middleware).
    pub dpop: bool,
    /// Get a new token this long before the current one expires (60 s; at most half the
    /// token's lifetime).
    pub refresh_before: Duration,
    /// The lifetime of `private_key_jwt` assertions, in seconds (60).
    pub assertion_lifetime: u64,
    /// Write `typ: client-authentication+jwt` in `private_key_jwt` assertions (true).
    pub explicit_assertion_typ: bool,
    /// The HTTP client for metadata and the token endpoint (not for mutual TLS, which uses
    /// [`ClientCredentialSource::mtls_client`]); unless given, one that follows no
    /// redirect. A client given here must not follow redirects either
    /// (`reqwest::redirect::Policy::none()`): a 307 or 308 would carry the token request,
    /// client assertion included, to another host. An answer that came after a redirect
    /// is refused, but by then the request has gone.
    pub http: Option<reqwest::Client>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Key generation, signatures and thumbprints (the process default unless set).
    pub provider: Arc<dyn CryptoProvider>,
}

impl fmt::Debug for OAuthClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClientConfig")
            .field("issuer", &self.issuer)
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .field("resources", &self.resources)
            .field("audiences", &self.audiences)
            .field("dpop", &self.dpop)
            .finish_non_exhaustive()
    }
}

impl OAuthClientConfig {
    /// A client `client_id` of the authorization server `issuer`; the token endpoint is
    /// discovered, no scope or target by default, no DPoP.
    pub fn new(issuer: impl Into<String>, client_id: impl Into<String>) -> OAuthClientConfig {
        OAuthClientConfig {
            issuer: issuer.into(),
            token_endpoint: None,
            client_id: client_id.into(),
            scope: None,
            resources: Vec::new(),
            audiences: Vec::new(),
            dpop: false,
            refresh_before: Duration::from_secs(60),
            assertion_lifetime: 60,
            explicit_assertion_typ: true,
            http: None,
            clock: Arc::new(SystemClock),
            provider: crate::default_provider(),
        }
    }
}

/// What to ask for, per request: put it in the request's extensions
/// (`client.get(url).with_extension(TokenOptions { .. })`) to override the configured
/// scope and targets. Tokens are cached per distinct value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TokenOptions {
    /// The scope (space-separated, sorted).
    pub scope: Option<String>,
    /// `resource` values.
    pub resources: Vec<String>,
    /// `audience` values.
    pub audiences: Vec<String>,
}

impl TokenOptions {
    /// Options asking for `scope`.
    pub fn scope(scope: &Scope) -> TokenOptions {
        TokenOptions {
            scope: Some(scope.to_string()),
            ..TokenOptions::default()
        }
    }
}

/// What a Txn-Token replacement asks for (draft-ietf-oauth-transaction-tokens-11): the
/// service keeps the token's `txn`, `sub` and `aud` and never widens its scope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnTokenReplacement {
    /// The trust domain the token is for (its `aud`, which a replacement keeps).
    pub audience: String,
    /// A narrower scope, if any (space-separated).
    pub scope: Option<String>,
    /// `request_details` of this hop: a JSON object, as text.
    pub request_details: Option<String>,
}

/// The RFC 8693 token type of a Txn-Token.
const TXN_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:txn_token";

/// A token in the cache.
#[derive(Clone)]
struct Cached {
    token: String,
    dpop: bool,
    /// From then on, a request starts a background refresh and still uses this token.
    refresh_at: UnixTime,
    /// From then on (a few seconds before `exp`), requests wait for a new token.
    use_until: UnixTime,
    /// Whether a background refresh is under way.
    refreshing: Arc<AtomicBool>,
}

/// The token endpoints.
#[derive(Clone, Debug)]
struct Endpoints {
    token: String,
    /// `mtls_endpoint_aliases.token_endpoint`.
    mtls_token: Option<String>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

struct Inner {
    config: OAuthClientConfig,
    source: Arc<dyn ClientCredentialSource>,
    http: reqwest::Client,
    provider: Arc<dyn CryptoProvider>,
    dpop_key: Option<Arc<dyn SigningKey>>,
    endpoints: OnceCell<Endpoints>,
    cache: Mutex<HashMap<TokenOptions, Slot>>,
    /// The latest `DPoP-Nonce` of each origin.
    nonces: Mutex<HashMap<String, String>>,
}

/// A reqwest middleware that sends an OAuth access token with every request (see the
/// [module docs](super)).
///
/// ```no_run
/// # use std::sync::Arc;
/// # fn demo(key: Arc<dyn lanyard_core::SigningKey>) -> Result<(), lanyard_tower::Error> {
/// use lanyard_tower::oauth::{OAuthClientConfig, OAuthClientMiddleware, PrivateKeyJwtSource};
///
/// let mut config = OAuthClientConfig::new("https://as.example.org", "billing");
/// config.resources = vec!["https://ledger.example.org".into()];
/// config.dpop = true;
/// let oauth = OAuthClientMiddleware::new(config, Arc::new(PrivateKeyJwtSource { key, kid: None }))?;
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(oauth).build();
/// # let _ = client; Ok(()) }
/// ```
#[derive(Clone)]
pub struct OAuthClientMiddleware {
    inner: Arc<Inner>,
}

impl fmt::Debug for OAuthClientMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClientMiddleware")
            .field("config", &self.inner.config)
            .field("source", &self.inner.source)
            .finish_non_exhaustive()
    }
}

impl OAuthClientMiddleware {
    /// A middleware for `config`, authenticating with `source`; with DPoP it generates its
    /// ES256 key now.
    pub fn new(config: OAuthClientConfig, source: Arc<dyn ClientCredentialSource>) -> Result<Self, Error> {
        let provider = Arc::clone(&config.provider);
        let dpop_key = if config.dpop {
            Some(provider.generate_key(Algorithm::ES256)?)
        } else {
            None
        };
        // Client credentials go to the token endpoint: a configured one follows the rules
        // of every URL an authorization server is reached at (a discovered one is checked
        // when discovered).
        if let Some(endpoint) = &config.token_endpoint {
            check_remote_url(endpoint).map_err(|p| Error::Config(format!("token_endpoint {}", p.as_str())))?;
        }
        let http = match &config.http {
            Some(http) => http.clone(),
            None => super::keys::http_client()?,
        };
        Ok(OAuthClientMiddleware {
            inner: Arc::new(Inner {
                config,
                source,
                http,
                provider,
                dpop_key,
                endpoints: OnceCell::new(),
                cache: Mutex::new(HashMap::new()),
                nonces: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The RFC 7638 thumbprint of the DPoP key (the `cnf.jkt` of its tokens), with DPoP.
    pub fn dpop_jkt(&self) -> Option<String> {
        let key = self.inner.dpop_key.as_ref()?;
        key.public_jwk().thumbprint(self.inner.provider.as_ref()).ok()
    }

    /// The configured scope and targets, as [`TokenOptions`].
    pub fn default_options(&self) -> TokenOptions {
        let c = &self.inner.config;
        TokenOptions {
            scope: c.scope.as_ref().map(ToString::to_string),
            resources: c.resources.clone(),
            audiences: c.audiences.clone(),
        }
    }

    /// An access token for `options`: the cached one while it is fresh, else a new one
    /// (concurrent callers with the same options share one token request). Past the refresh
    /// point the cached token is still returned while a background task gets the next one.
    pub async fn access_token(&self, options: &TokenOptions) -> Result<String, Error> {
        self.inner.token(options).await.map(|c| c.token)
    }

    /// Asks the Transaction Token Service (this middleware's authorization server) to
    /// replace `txn_token`, the Txn-Token this service received, so that it carries this
    /// service as the requesting workload: the new Txn-Token (`typ` `txntoken+jwt`), to send
    /// on in the `Txn-Token` header. Not cached: every call is one token exchange.
    pub async fn replace_txn_token(&self, txn_token: &str, ask: &TxnTokenReplacement) -> Result<String, Error> {
        let mut grant = vec![
            ("grant_type", GrantType::TokenExchange.as_str()),
            ("requested_token_type", TXN_TOKEN_TYPE),
            ("subject_token", txn_token),
            ("subject_token_type", TXN_TOKEN_TYPE),
            ("audience", ask.audience.as_str()),
        ];
        if let Some(scope) = &ask.scope {
            grant.push(("scope", scope));
        }
        if let Some(details) = &ask.request_details {
            grant.push(("request_details", details));
        }
        let (body, _) = self.inner.post_token_request(&grant).await?;
        let response = TokenResponse::from_json(&body)?;
        let issued = response.issued_token_type.as_ref().map(|t| t.as_str());
        if issued != Some(TXN_TOKEN_TYPE) || response.token_type != AccessTokenType::NotApplicable {
            return Err(Error::TokenEndpoint(format!(
                "a Txn-Token replacement answered issued_token_type {issued:?}, token_type {}",
                response.token_type
            )));
        }
        metrics::counter!("lanyard_oauth_client_token_total", "outcome" => "txn_token_replaced").increment(1);
        Ok(response.access_token)
    }
}

impl Inner {
    /// The token for `options`: the cached one while it is fresh; past its refresh point,
    /// still the cached one while one background task gets the next; without a usable
    /// token, a new one (concurrent callers wait for the same request).
    async fn token(self: &Arc<Self>, options: &TokenOptions) -> Result<Cached, Error> {
        let slot = {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(cache.entry(options.clone()).or_default())
        };
        let mut held = slot.lock().await;
        let now = self.config.clock.now();
        if let Some(cached) = held.as_ref() {
            if now < cached.refresh_at {
                return Ok(cached.clone());
            }
            if now < cached.use_until {
                if !cached.refreshing.swap(true, Ordering::AcqRel) {
                    self.refresh_in_background(options.clone(), Arc::clone(&slot), Arc::clone(&cached.refreshing));
                }
                return Ok(cached.clone());
            }
        }
        let fresh = self.request_token(options).await?;
        *held = Some(fresh.clone());
        Ok(fresh)
    }

    /// Gets the next token for `options` into `slot` without holding up requests; after a
    /// failure, the next attempt waits [`RETRY_AFTER`].
    fn refresh_in_background(self: &Arc<Self>, options: TokenOptions, slot: Slot, refreshing: Arc<AtomicBool>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            match this.request_token(&options).await {
                Ok(fresh) => *slot.lock().await = Some(fresh),
                Err(error) => {
                    tracing::warn!(error = ?error.to_string(), "refreshing an access token failed; the current one is used meanwhile");
                    tokio::time::sleep(RETRY_AFTER).await;
                    refreshing.store(false, Ordering::Release);
                }
            }
        });
    }

    async fn endpoints(&self) -> Result<&Endpoints, Error> {
        self.endpoints
            .get_or_try_init(|| async {
                if let Some(token) = &self.config.token_endpoint {
                    return Ok(Endpoints {
                        token: token.clone(),
                        mtls_token: None,
                    });
                }
                let url = metadata_url(&self.config.issuer)?;
                let body = get(&self.http, &url, &RemoteKeysConfig::default()).await?;
                let metadata = AuthorizationServerMetadata::from_json(&body, &self.config.issuer)?;
                let token = metadata.token_endpoint.clone().ok_or_else(|| Error::Fetch {
                    what: url.clone(),
                    reason: "the metadata has no token_endpoint".into(),
                })?;
                let mtls_token = metadata
                    .mtls_endpoint_aliases
                    .as_ref()
                    .and_then(|aliases| aliases.get("token_endpoint").cloned());
                // Client credentials go to these: they follow the rules for URLs found in
                // metadata.
                for (name, endpoint) in [
                    ("token_endpoint", Some(&token)),
                    ("mtls token_endpoint", mtls_token.as_ref()),
                ] {
                    if let Some(endpoint) = endpoint {
                        check_discovered_url(endpoint, &url).map_err(|m| Error::Fetch {
                            what: url.clone(),
                            reason: format!("its {name} {m}"),
                        })?;
                    }
                }
                Ok(Endpoints { token, mtls_token })
            })
            .await
    }

    /// One `client_credentials` request for `options`.
    async fn request_token(&self, options: &TokenOptions) -> Result<Cached, Error> {
        let mut grant: Vec<(&str, &str)> = vec![("grant_type", GrantType::ClientCredentials.as_str())];
        if let Some(scope) = &options.scope {
            grant.push(("scope", scope));
        }
        grant.extend(options.resources.iter().map(|r| ("resource", r.as_str())));
        grant.extend(options.audiences.iter().map(|a| ("audience", a.as_str())));
        let (body, now) = self.post_token_request(&grant).await?;
        self.accept(&body, now)
    }

    /// POSTs `grant` (the grant type and its parameters) with the client's authentication
    /// to the token endpoint, retried once on `use_dpop_nonce`: the body of the successful
    /// answer and when the request was made.
    async fn post_token_request(&self, grant: &[(&str, &str)]) -> Result<(Vec<u8>, UnixTime), Error> {
        let endpoints = self.endpoints().await?;
        let credential = self.source.credential(&self.config.issuer).await?;
        let (http, endpoint) = match &credential {
            ClientCredential::Mtls => (
                self.source
                    .mtls_client()
                    .ok_or_else(|| Error::Request("mutual TLS needs the source's mtls_client".into()))?,
                endpoints.mtls_token.as_ref().unwrap_or(&endpoints.token),
            ),
            _ => (self.http.clone(), &endpoints.token),
        };
        let mut retried = false;
        loop {
            let now = self.config.clock.now();
            let body = self.form(grant, &credential, now)?;
            let mut request = http
                .post(endpoint.as_str())
                .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(http::header::ACCEPT, "application/json")
                .body(body);
            if let Some(key) = &self.dpop_key {
                let nonce = self.nonce_for(endpoint);
                let params = DpopProofParams {
                    method: "POST",
                    uri: endpoint,
                    access_token: None,
                    nonce: nonce.as_deref(),
                };
                request = request.header(
                    DPOP,
                    create_dpop_proof(key.as_ref(), &params, now, self.provider.as_ref())?,
                );
            }
            let fail = |reason: String| Error::Fetch {
                what: loggable_url(endpoint),
                reason,
            };
            let mut response = request.send().await.map_err(|e| fail(e.without_url().to_string()))?;
            refuse_redirect(endpoint, &response).map_err(fail)?;
            let new_nonce = self.remember_nonce(response.url().as_str(), response.headers());
            let status = response.status();
            let body = read_limited(&mut response, MAX_TOKEN_RESPONSE_BYTES)
                .await
                .map_err(fail)?;
            if status.is_success() {
                return Ok((body, now));
            }
            let error: Option<ErrorResponse> = serde_json::from_slice(&body).ok();
            if let Some(e) = &error
                && e.error == ErrorCode::UseDpopNonce
                && new_nonce
                && !retried
            {
                retried = true;
                continue;
            }
            metrics::counter!("lanyard_oauth_client_token_total", "outcome" => "refused").increment(1);
            return Err(Error::TokenEndpoint(match error {
                Some(e) => format!(
                    "{} ({}): {}",
                    e.error,
                    status.as_u16(),
                    e.error_description.unwrap_or_default()
                ),
                None => format!("HTTP status {}", status.as_u16()),
            }));
        }
    }

    /// The token request body: `grant`, `client_id` and the client's authentication.
    fn form(&self, grant: &[(&str, &str)], credential: &ClientCredential, now: UnixTime) -> Result<String, Error> {
        let c = &self.config;
        let mut pairs: Vec<(&str, &str)> = grant.to_vec();
        // After `grant_type`, where it has always been.
        pairs.insert(1.min(pairs.len()), ("client_id", &c.client_id));
        let assertion;
        match credential {
            ClientCredential::JwtSvid(svid) => {
                pairs.push(("client_assertion_type", ClientAssertionType::JwtSpiffe.as_str()));
                pairs.push(("client_assertion", svid));
            }
            ClientCredential::PrivateKeyJwt { key, kid } => {
                let params = ClientAssertionParams {
                    lifetime: c.assertion_lifetime,
                    explicit_typ: c.explicit_assertion_typ,
                    kid: kid.as_deref(),
                    ..ClientAssertionParams::new(&c.client_id, &c.issuer)
                };
                assertion = create_client_assertion(key.as_ref(), &params, now, self.provider.as_ref())?;
                pairs.push(("client_assertion_type", ClientAssertionType::JwtBearer.as_str()));
                pairs.push(("client_assertion", &assertion));
            }
            ClientCredential::Mtls => {}
        }
        Ok(encode_form(pairs))
    }

    /// Reads a successful token response.
    fn accept(&self, body: &[u8], now: UnixTime) -> Result<Cached, Error> {
        let response = TokenResponse::from_json(body)?;
        let expected = if self.dpop_key.is_some() {
            AccessTokenType::Dpop
        } else {
            AccessTokenType::Bearer
        };
        if response.token_type != expected {
            return Err(Error::TokenEndpoint(format!(
                "token_type {} where {expected} was expected",
                response.token_type
            )));
        }
        // Without expires_in, the token is used for a minute.
        let lifetime = response.expires_in.unwrap_or(60);
        let margin = self.config.refresh_before.as_secs().min(lifetime / 2);
        metrics::counter!("lanyard_oauth_client_token_total", "outcome" => "issued").increment(1);
        tracing::debug!(client_id = %self.config.client_id, lifetime, "access token obtained");
        Ok(Cached {
            token: response.access_token,
            dpop: self.dpop_key.is_some(),
            refresh_at: now.plus(lifetime - margin),
            use_until: now.plus(lifetime.saturating_sub(USE_GUARD).max(lifetime - margin)),
            refreshing: Arc::new(AtomicBool::new(false)),
        })
    }

    fn nonce_for(&self, url: &str) -> Option<String> {
        let origin = origin(url)?;
        self.nonces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&origin)
            .cloned()
    }

    /// Keeps a `DPoP-Nonce` the origin of `url` sent; true when it is new.
    fn remember_nonce(&self, url: &str, headers: &http::HeaderMap) -> bool {
        let (Some(origin), Some(nonce)) = (origin(url), headers.get(DPOP_NONCE).and_then(|v| v.to_str().ok())) else {
            return false;
        };
        let mut nonces = self.nonces.lock().unwrap_or_else(PoisonError::into_inner);
        nonces.insert(origin, nonce.to_owned()).as_deref() != Some(nonce)
    }

    /// Puts the token (and a fresh DPoP proof) on `req`.
    fn authorize(&self, req: &mut reqwest::Request, token: &Cached) -> Result<(), Error> {
        let scheme = if token.dpop { "DPoP" } else { "Bearer" };
        let mut value = HeaderValue::from_str(&format!("{scheme} {}", token.token))
            .map_err(|_| Error::Request("the access token cannot be sent in a header".into()))?;
        value.set_sensitive(true);
        req.headers_mut().insert(http::header::AUTHORIZATION, value);
        if let (true, Some(key)) = (token.dpop, &self.dpop_key) {
            let url = req.url().as_str().to_owned();
            let nonce = self.nonce_for(&url);
            let params = DpopProofParams {
                method: req.method().as_str(),
                uri: &url,
                access_token: Some(&token.token),
                nonce: nonce.as_deref(),
            };
            let proof = create_dpop_proof(key.as_ref(), &params, self.config.clock.now(), self.provider.as_ref())?;
            let mut value =
                HeaderValue::from_str(&proof).map_err(|_| Error::Request("the DPoP proof is not a header".into()))?;
            value.set_sensitive(true);
            req.headers_mut().insert(DPOP, value);
        }
        Ok(())
    }
}

/// `scheme://host[:port]` of `url`.
fn origin(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    Some(parsed.origin().ascii_serialization())
}

/// Whether a resource server's response asks for a new nonce (RFC 9449 §9).
fn asks_for_nonce(response: &reqwest::Response) -> bool {
    response.status() == reqwest::StatusCode::UNAUTHORIZED
        && response
            .headers()
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("error=\"use_dpop_nonce\""))
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for OAuthClientMiddleware {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let options = extensions
            .get::<TokenOptions>()
            .cloned()
            .unwrap_or_else(|| self.default_options());
        let token = self.inner.token(&options).await.map_err(middleware_error)?;
        let retry = if token.dpop { req.try_clone() } else { None };
        self.inner.authorize(&mut req, &token).map_err(middleware_error)?;
        let response = next.clone().run(req, extensions).await?;
        if !token.dpop {
            return Ok(response);
        }
        let new_nonce = self.inner.remember_nonce(response.url().as_str(), response.headers());
        match retry {
            Some(mut again) if new_nonce && asks_for_nonce(&response) => {
                self.inner.authorize(&mut again, &token).map_err(middleware_error)?;
                next.run(again, extensions).await
            }
            _ => Ok(response),
        }
    }
}
