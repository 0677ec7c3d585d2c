//! Other parties' signing keys, fetched and cached: the home servers of identity chaining
//! (`chaining.rs`), the trusted external issuers (`issuers.rs`), and the `jwks_uri` of
//! `private_key_jwt` clients (`client_auth.rs`).
//!
//! A [`KeySource`] names the issuer and where its keys are: a configured `jwks_uri`, or the
//! `jwks_uri` of its metadata, discovered at `<issuer>/.well-known/openid-configuration`
//! (OpenID Connect Discovery 1.0 §4, when the source allows it) and then at the RFC 8414
//! §3.1 location; the metadata's `issuer` must equal the issuer (RFC 8414 §3.3, OIDC
//! Discovery §4.3). Keys are cached for [`JWKS_URI_CACHE_SECS`] and fetched again when a
//! token names an unknown `kid` (key rotation), at most once per `refetch_after` seconds
//! so that a flood of tokens with made-up `kid`s cannot make this server hammer the issuer.
//! The same holds when there are no keys to use: requests that find none cached (or only
//! stale ones) wait for one fetch per issuer instead of starting one each, and after a
//! failed fetch the next waits `refetch_after` seconds (until then, tokens of that issuer
//! are refused with the failure's reason).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use lanyard_core::UnixTime;
use lanyard_core::oauth::{
    AuthorizationServerMetadata, VerificationKeys, check_discovered_url, loggable_url, metadata_url,
};

use super::{AuthorizationServer, JWKS_URI_CACHE_SECS};

/// The fetched keys, by issuer: when fetched, and the keys; when a refetch was last
/// claimed; the last failed fetch; one fetch at a time per issuer.
#[derive(Debug, Default)]
pub(crate) struct RemoteKeys {
    keys: Mutex<HashMap<String, (UnixTime, VerificationKeys)>>,
    refetches: Mutex<HashMap<String, UnixTime>>,
    failures: Mutex<HashMap<String, (UnixTime, String)>>,
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl RemoteKeys {
    /// The lock that one fetch of `issuer`'s keys holds (issuers are configured and
    /// clients registered: the maps hold one entry per issuer, and per client and
    /// `jwks_uri` it has had since the server started).
    fn fetch_lock(&self, issuer: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.fetching.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(locks.entry(issuer.to_owned()).or_default())
    }

    /// The reason of a fetch of `issuer`'s keys that failed less than `refetch_after`
    /// seconds before `now`.
    fn recent_failure(&self, issuer: &str, now: UnixTime, refetch_after: u64) -> Option<String> {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.get(issuer).and_then(|(when, why)| {
            let age = now.as_secs().saturating_sub(when.as_secs());
            (age < refetch_after).then(|| format!("not fetched again for {} s after: {why}", refetch_after - age))
        })
    }

    fn record_failure(&self, issuer: &str, now: UnixTime, why: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.insert(issuer.to_owned(), (now, why.to_owned()));
    }

    fn get(&self, issuer: &str) -> Option<(UnixTime, VerificationKeys)> {
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.get(issuer).cloned()
    }

    /// Whether a refetch of `issuer`'s keys may start now: the last fetch and the last
    /// refetch claimed are at least `refetch_after` seconds old. Marks the refetch as
    /// claimed, so that concurrent requests with unknown `kid`s make one fetch, not one
    /// each. The keys' own age is left alone: a refetch that fails does not make the old
    /// keys count as fresh for longer.
    fn claim_refetch(&self, issuer: &str, now: UnixTime, refetch_after: u64) -> bool {
        let fetched = self.get(issuer).map(|(fetched, _)| fetched);
        let mut claims = self.refetches.lock().unwrap_or_else(PoisonError::into_inner);
        let last = fetched.into_iter().chain(claims.get(issuer).copied()).max();
        if last.is_some_and(|t| now.as_secs().saturating_sub(t.as_secs()) < refetch_after) {
            return false;
        }
        claims.insert(issuer.to_owned(), now);
        true
    }

    fn put(&self, issuer: &str, fetched: UnixTime, keys: VerificationKeys) {
        let mut map = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(issuer.to_owned(), (fetched, keys));
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(issuer);
    }
}

/// Where an issuer's keys come from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeySource<'a> {
    /// The issuer identifier (for a client, its `client_id`).
    pub(crate) issuer: &'a str,
    /// What the keys are cached under: the issuer, or for a client a string no issuer URL
    /// can be (so that a client named like an issuer never shares its keys).
    pub(crate) cache_key: &'a str,
    /// Its configured `jwks_uri`; `None` discovers it.
    pub(crate) jwks_uri: Option<&'a str>,
    /// Try OpenID Connect discovery before RFC 8414 metadata.
    pub(crate) openid: bool,
    /// How soon the keys may be fetched again for an unknown `kid`, in seconds.
    pub(crate) refetch_after: u64,
}

impl AuthorizationServer {
    /// Runs `verify` with `source`'s keys; when it fails with `unknown_key` (a rotated
    /// key), fetches the keys again (rate-limited) and retries once. The outer error says
    /// the keys could not be obtained.
    pub(crate) async fn with_remote_keys<T>(
        &self,
        source: KeySource<'_>,
        now: UnixTime,
        verify: impl Fn(&VerificationKeys) -> Result<T, lanyard_core::Error>,
    ) -> Result<Result<T, lanyard_core::Error>, String> {
        let keys = self.remote_keys(source, now, false).await?;
        match verify(&keys) {
            Err(e) if e.kind() == "unknown_key" => {
                let keys = self.remote_keys(source, now, true).await?;
                Ok(verify(&keys))
            }
            other => Ok(other),
        }
    }

    /// The keys of `source`: cached ones unless stale, or `refresh` asks and the last
    /// fetch is at least `refetch_after` seconds old.
    async fn remote_keys(
        &self,
        source: KeySource<'_>,
        now: UnixTime,
        refresh: bool,
    ) -> Result<VerificationKeys, String> {
        let cached = |refresh: bool| {
            self.remote_keys.get(source.cache_key).and_then(|(fetched, keys)| {
                let age = now.as_secs().saturating_sub(fetched.as_secs());
                let fresh = age < JWKS_URI_CACHE_SECS
                    && !(refresh
                        && self
                            .remote_keys
                            .claim_refetch(source.cache_key, now, source.refetch_after));
                fresh.then_some(keys)
            })
        };
        if let Some(keys) = cached(refresh) {
            return Ok(keys);
        }
        let lock = self.remote_keys.fetch_lock(source.cache_key);
        let _one_fetch = lock.lock().await;
        // Another request may have fetched them while this one waited (a refresh has
        // already claimed its refetch, and makes it).
        if !refresh && let Some(keys) = cached(false) {
            return Ok(keys);
        }
        if let Some(why) = self
            .remote_keys
            .recent_failure(source.cache_key, now, source.refetch_after)
        {
            return Err(why);
        }
        let fetched = self.fetch_remote_keys(source).await;
        match &fetched {
            Ok(keys) => self.remote_keys.put(source.cache_key, now, keys.clone()),
            Err(why) => {
                // The requester's error says why, not where: the URL is for the operator,
                // without its credentials (userinfo, query: configured URLs are not
                // checked for them the way registered clients' are).
                let jwks_uri = source.jwks_uri.map(loggable_url);
                tracing::warn!(issuer = source.issuer, jwks_uri, error = ?why, "fetching signing keys failed");
                self.remote_keys.record_failure(source.cache_key, now, why);
            }
        }
        fetched
    }

    /// Fetches `source`'s keys (discovering its `jwks_uri` when not configured).
    async fn fetch_remote_keys(&self, source: KeySource<'_>) -> Result<VerificationKeys, String> {
        let jwks_uri = match source.jwks_uri {
            Some(uri) => uri.to_owned(),
            None => self.discover_jwks_uri(source).await?,
        };
        let body = self.fetch_small(&jwks_uri).await?;
        let jwks = lanyard_core::JwkSet::from_json(&body).map_err(|e| e.to_string())?;
        VerificationKeys::from_jwks(self.state.crypto.as_ref(), source.issuer, &jwks).map_err(|e| e.to_string())
    }

    /// The `jwks_uri` of `source`'s metadata (OpenID Connect discovery first when the
    /// source allows it, then RFC 8414).
    async fn discover_jwks_uri(&self, source: KeySource<'_>) -> Result<String, String> {
        let mut urls = Vec::with_capacity(2);
        if source.openid {
            urls.push(format!(
                "{}/.well-known/openid-configuration",
                source.issuer.trim_end_matches('/')
            ));
        }
        urls.push(metadata_url(source.issuer).map_err(|e| e.to_string())?);
        let mut last = String::new();
        for url in urls {
            match self.fetch_small(&url).await {
                Ok(body) => {
                    let jwks_uri = AuthorizationServerMetadata::from_json(&body, source.issuer)
                        .map_err(|e| e.to_string())?
                        .jwks_uri
                        .ok_or_else(|| "its metadata names no jwks_uri".to_owned())?;
                    check_discovered_url(&jwks_uri, &url).map_err(|m| format!("its jwks_uri {m}"))?;
                    return Ok(jwks_uri);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// GETs `url` (a success status, at most [`MAX_DOCUMENT`] bytes, read in chunks so that
    /// a larger body is never buffered whole).
    pub(crate) async fn fetch_small(&self, url: &str) -> Result<Vec<u8>, String> {
        let too_large = || format!("larger than {} KiB", MAX_DOCUMENT / 1024);
        let mut response = self.http.get(url).send().await.map_err(|_| "unreachable".to_owned())?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        if response.content_length().is_some_and(|n| n > MAX_DOCUMENT as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| "body".to_owned())? {
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The largest metadata or JWK Set document fetched.
const MAX_DOCUMENT: usize = 64 * 1024;
