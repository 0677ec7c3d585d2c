//! The authorization server's token-signing keys at a resource server: configured, or
//! fetched from its RFC 8414 metadata `jwks_uri` (or a `jwks_uri` given directly) and kept
//! fresh.
//!
//! Fetched keys are cached for [`RemoteKeysConfig::ttl`]. Requests never wait for the
//! network while keys are cached: once the TTL has passed, the stale set keeps serving and
//! one background task refreshes it. A token whose `kid` is unknown triggers one refetch
//! (it may be a newly rotated key), at most once per [`RemoteKeysConfig::min_refetch`],
//! so a stream of tokens with made-up `kid`s cannot turn into a stream of fetches.
//! Concurrent requests that need a fetch share it. Only the very first requests (no keys
//! yet) wait for a fetch.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use lanyard_core::oauth::{
    AccessTokenVerifier, AuthorizationServerMetadata, VerificationKeys, VerifiedAccessToken, check_discovered_url,
    check_remote_url, loggable_url, metadata_url,
};
use lanyard_core::{CryptoProvider, Error as CoreError, JwkSet, UnixTime};
use tokio::time::Instant;

use crate::error::Error;

/// How fetched keys are kept.
#[derive(Clone, Debug)]
pub struct RemoteKeysConfig {
    /// How long a fetched key set is used before it is refreshed in the background (5 min).
    pub ttl: Duration,
    /// The least time between two fetches triggered by unknown `kid`s or failures (30 s).
    pub min_refetch: Duration,
    /// The timeout of each HTTP request (5 s).
    pub timeout: Duration,
    /// The largest metadata or JWK Set document read (256 KiB).
    pub max_document_bytes: usize,
    /// The HTTP client (unless given, one with default settings that follows no
    /// redirect; a `jwks_uri` on a private PKI needs a client that trusts it, and a client
    /// given here should not follow redirects either).
    pub http: Option<reqwest::Client>,
    /// Parses the fetched keys (the process default unless set).
    pub provider: Arc<dyn CryptoProvider>,
}

impl Default for RemoteKeysConfig {
    fn default() -> Self {
        RemoteKeysConfig {
            ttl: Duration::from_secs(300),
            min_refetch: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            max_document_bytes: 256 * 1024,
            http: None,
            provider: crate::default_provider(),
        }
    }
}

/// Where the authorization server's keys come from.
#[derive(Clone, Debug)]
pub struct KeySource(Inner);

#[derive(Clone, Debug)]
enum Inner {
    Fixed(Arc<VerificationKeys>),
    Remote(Arc<RemoteKeys>),
}

enum Origin {
    /// Discover `jwks_uri` from the metadata of this issuer.
    Metadata { issuer: String },
    /// This `jwks_uri`.
    JwksUri(String),
}

struct Cached {
    keys: Option<Arc<VerificationKeys>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    /// Bumped by every fetch that succeeded.
    generation: u64,
    jwks_uri: Option<String>,
}

struct RemoteKeys {
    origin: Origin,
    config: RemoteKeysConfig,
    http: reqwest::Client,
    provider: Arc<dyn CryptoProvider>,
    cached: RwLock<Cached>,
    fetching: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
}

/// Where the keys come from, as a log line may show it (no userinfo, query or fragment).
impl fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = match &self.origin {
            Origin::Metadata { issuer } => format!("metadata of {}", loggable_url(issuer)),
            Origin::JwksUri(uri) => loggable_url(uri),
        };
        f.debug_struct("RemoteKeys")
            .field("origin", &origin)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KeySource {
    /// A fixed JWK Set (configured out of band).
    pub fn fixed(keys: VerificationKeys) -> KeySource {
        KeySource(Inner::Fixed(Arc::new(keys)))
    }

    /// Keys from the `jwks_uri` of the RFC 8414 metadata of `issuer` (fetched from
    /// [`metadata_url`]; the document's `issuer` must be exactly `issuer`).
    pub fn discover(issuer: impl Into<String>, config: RemoteKeysConfig) -> Result<KeySource, Error> {
        let issuer = issuer.into();
        metadata_url(&issuer)?;
        KeySource::remote(Origin::Metadata { issuer }, config)
    }

    /// Keys from this JWK Set URL: `https`, or plain `http` to a loopback host, without
    /// userinfo ([`check_remote_url`]).
    pub fn jwks_uri(uri: impl Into<String>, config: RemoteKeysConfig) -> Result<KeySource, Error> {
        let uri = uri.into();
        check_remote_url(&uri).map_err(|problem| Error::Config(format!("jwks_uri {}", problem.as_str())))?;
        KeySource::remote(Origin::JwksUri(uri), config)
    }

    fn remote(origin: Origin, config: RemoteKeysConfig) -> Result<KeySource, Error> {
        let http = match &config.http {
            Some(http) => http.clone(),
            None => http_client()?,
        };
        let provider = Arc::clone(&config.provider);
        Ok(KeySource(Inner::Remote(Arc::new(RemoteKeys {
            origin,
            http,
            config,
            provider,
            cached: RwLock::new(Cached {
                keys: None,
                fetched_at: None,
                last_attempt: None,
                generation: 0,
                jwks_uri: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
            refreshing: AtomicBool::new(false),
        }))))
    }

    /// Verifies `token` with the current keys, refetching once (rate-limited) when its
    /// `kid` is unknown. `Err(Ok(e))` is a token failure, `Err(Err(e))` a key-fetch failure.
    pub(super) async fn verify(
        &self,
        verifier: &AccessTokenVerifier,
        token: &str,
        now: UnixTime,
    ) -> Result<VerifiedAccessToken, KeyOutcome> {
        match &self.0 {
            Inner::Fixed(keys) => verifier.verify(token, keys, now).map_err(KeyOutcome::Token),
            Inner::Remote(remote) => remote.verify(verifier, token, now).await,
        }
    }
}

/// Why [`KeySource::verify`] failed.
pub(super) enum KeyOutcome {
    /// The token is invalid.
    Token(CoreError),
    /// No keys could be had.
    Unavailable(Error),
}

impl RemoteKeys {
    async fn verify(
        self: &Arc<Self>,
        verifier: &AccessTokenVerifier,
        token: &str,
        now: UnixTime,
    ) -> Result<VerifiedAccessToken, KeyOutcome> {
        let (keys, generation) = self.keys().await.map_err(KeyOutcome::Unavailable)?;
        match verifier.verify(token, &keys, now) {
            Err(e) if e.kind() == "unknown_key" && self.may_refetch() => {
                tracing::debug!("access token signed by an unknown key; refetching the JWK Set");
                match self.fetch(generation).await {
                    Ok((fresh, _)) => verifier.verify(token, &fresh, now).map_err(KeyOutcome::Token),
                    Err(error) => {
                        tracing::warn!(error = ?error.to_string(), "cannot refetch the authorization server's keys");
                        Err(KeyOutcome::Token(e))
                    }
                }
            }
            other => other.map_err(KeyOutcome::Token),
        }
    }

    /// The cached keys (starting a background refresh when they are stale), or the keys
    /// of a fetch when none are cached.
    async fn keys(self: &Arc<Self>) -> Result<(Arc<VerificationKeys>, u64), Error> {
        let (keys, stale, generation) = {
            let c = self.cached.read().unwrap_or_else(PoisonError::into_inner);
            let stale = c.fetched_at.is_none_or(|at| at.elapsed() >= self.config.ttl);
            (c.keys.clone(), stale, c.generation)
        };
        match keys {
            Some(keys) => {
                if stale && self.may_refetch() && !self.refreshing.swap(true, Ordering::AcqRel) {
                    let this = Arc::clone(self);
                    tokio::spawn(async move {
                        if let Err(error) = this.fetch(generation).await {
                            tracing::warn!(error = ?error.to_string(), "refreshing the authorization server's keys failed; keeping the old ones");
                        }
                        this.refreshing.store(false, Ordering::Release);
                    });
                }
                Ok((keys, generation))
            }
            // Waits for a fetch in progress, or fails at once after a recent failure.
            None => self.fetch(generation).await,
        }
    }

    /// Whether the rate limit allows a fetch now.
    fn may_refetch(&self) -> bool {
        let c = self.cached.read().unwrap_or_else(PoisonError::into_inner);
        c.last_attempt.is_none_or(|at| at.elapsed() >= self.config.min_refetch)
    }

    /// Fetches the keys unless a fetch that completed after `seen` already did (single
    /// flight: concurrent callers wait for the one fetch in progress).
    async fn fetch(&self, seen: u64) -> Result<(Arc<VerificationKeys>, u64), Error> {
        let _guard = self.fetching.lock().await;
        {
            let c = self.cached.read().unwrap_or_else(PoisonError::into_inner);
            if c.generation != seen
                && let Some(keys) = &c.keys
            {
                return Ok((Arc::clone(keys), c.generation));
            }
            // Another caller's fetch just failed: do not try again at once.
            if c.last_attempt.is_some_and(|at| at.elapsed() < self.config.min_refetch) {
                return Err(Error::Fetch {
                    what: "the authorization server's keys".into(),
                    reason: "the last attempt failed; retrying later".into(),
                });
            }
        }
        let (jwks_uri, known_uri) = {
            let mut c = self.cached.write().unwrap_or_else(PoisonError::into_inner);
            c.last_attempt = Some(Instant::now());
            (c.jwks_uri.clone(), c.jwks_uri.is_some())
        };
        let result = self.download(jwks_uri).await;
        metrics::counter!("lanyard_access_token_jwks_fetch_total", "outcome" => if result.is_ok() { "ok" } else { "error" })
            .increment(1);
        let (keys, jwks_uri) = result?;
        let keys = Arc::new(keys);
        let mut c = self.cached.write().unwrap_or_else(PoisonError::into_inner);
        c.keys = Some(Arc::clone(&keys));
        c.fetched_at = Some(Instant::now());
        c.generation += 1;
        if !known_uri {
            c.jwks_uri = Some(jwks_uri);
        }
        tracing::info!(
            keys = keys.len(),
            generation = c.generation,
            "authorization server keys fetched"
        );
        Ok((keys, c.generation))
    }

    /// Reads the metadata (once) and the JWK Set.
    async fn download(&self, known: Option<String>) -> Result<(VerificationKeys, String), Error> {
        let (owner, jwks_uri) = match (&self.origin, known) {
            (Origin::JwksUri(uri), _) => (uri.clone(), uri.clone()),
            (Origin::Metadata { issuer }, Some(uri)) => (issuer.clone(), uri),
            (Origin::Metadata { issuer }, None) => {
                let url = metadata_url(issuer)?;
                let body = get(&self.http, &url, &self.config).await?;
                let metadata = AuthorizationServerMetadata::from_json(&body, issuer)?;
                let uri = metadata.jwks_uri.ok_or_else(|| Error::Fetch {
                    what: url.clone(),
                    reason: "the metadata has no jwks_uri".into(),
                })?;
                check_discovered_url(&uri, &url).map_err(|m| Error::Fetch {
                    what: url,
                    reason: format!("its jwks_uri {m}"),
                })?;
                (issuer.clone(), uri)
            }
        };
        let body = get(&self.http, &jwks_uri, &self.config).await?;
        let set = JwkSet::from_json(&body)?;
        let keys = VerificationKeys::from_jwks(self.provider.as_ref(), owner, &set)?;
        Ok((keys, jwks_uri))
    }
}

/// The HTTP client used when the configuration gives none: it follows no redirect, which
/// could lead a key or metadata fetch away from the URL that was checked, or a token
/// request's client credentials to another host.
pub(crate) fn http_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Config(format!("building the HTTP client: {e}")))
}

/// GETs `url` as JSON, reading at most `max_document_bytes` (a redirect is a failure
/// with the clients of [`http_client`]).
pub(crate) async fn get(http: &reqwest::Client, url: &str, config: &RemoteKeysConfig) -> Result<Vec<u8>, Error> {
    let fail = |reason: String| Error::Fetch {
        what: loggable_url(url),
        reason,
    };
    let mut response = http
        .get(url)
        .header(http::header::ACCEPT, "application/json")
        .timeout(config.timeout)
        .send()
        .await
        .map_err(|e| fail(e.without_url().to_string()))?;
    refuse_redirect(url, &response).map_err(fail)?;
    if !response.status().is_success() {
        return Err(fail(format!("HTTP status {}", response.status())));
    }
    read_limited(&mut response, config.max_document_bytes)
        .await
        .map_err(fail)
}

/// Refuses a response that came from elsewhere than `requested`: a caller-supplied HTTP
/// client that followed a redirect (this crate's own clients follow none). The request
/// may already have gone to the other host; this makes the misconfiguration an error
/// instead of a silent success.
pub(crate) fn refuse_redirect(requested: &str, response: &reqwest::Response) -> Result<(), String> {
    match reqwest::Url::parse(requested) {
        Ok(url) if url == *response.url() => Ok(()),
        _ => Err(format!(
            "the answer came from {} after a redirect; give lanyard-tower an HTTP client that follows none",
            loggable_url(response.url().as_str())
        )),
    }
}

/// Reads a response body of at most `limit` bytes.
pub(crate) async fn read_limited(response: &mut reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > limit {
            return Err(format!("the document is over {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::{KeySource, RemoteKeysConfig};

    #[test]
    fn a_configured_jwks_uri_is_https_or_loopback_without_userinfo() {
        for good in ["https://as.example/jwks", "http://127.0.0.1:9000/jwks"] {
            assert!(KeySource::jwks_uri(good, RemoteKeysConfig::default()).is_ok(), "{good}");
        }
        for bad in [
            "http://as.example/jwks",
            "http://localhost.evil.example/jwks",
            "https://user:secret@as.example/jwks",
            "as.example/jwks",
        ] {
            let Err(refused) = KeySource::jwks_uri(bad, RemoteKeysConfig::default()) else {
                panic!("{bad} was accepted");
            };
            assert!(!refused.to_string().contains("secret"), "{refused}");
        }
    }
}
