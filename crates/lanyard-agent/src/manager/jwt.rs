//! JWT-SVIDs: minted by the server when a workload asks, checked, and cached per entry
//! revision and audience; a cached token is served while it has more than half its
//! lifetime left, and while the server cannot be reached, until it expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use lanyard_api::agent::v1 as pb;
use lanyard_core::{JwtSvidPolicy, JwtSvidVerifier, UnixTime};

use super::Manager;
use crate::error::{AgentError, WorkloadApiError};

/// The most JWT-SVIDs the agent caches (across workloads and audiences).
const MAX_CACHED_JWTS: usize = 10_000;

/// A JWT-SVID cache key: entry id, entry revision, sorted audience.
type JwtKey = (String, u64, Vec<String>);

#[derive(Clone)]
struct CachedJwt {
    token: String,
    issued_at: UnixTime,
    expires_at: UnixTime,
}

/// The JWT-SVIDs minted for the node's workloads, bounded by [`MAX_CACHED_JWTS`].
#[derive(Default)]
pub(super) struct JwtCache {
    tokens: Mutex<HashMap<JwtKey, CachedJwt>>,
}

impl JwtCache {
    fn get(&self, key: &JwtKey) -> Option<CachedJwt> {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Caches `fresh`; when full, drops what expired before `now`, or else everything.
    fn insert(&self, key: JwtKey, fresh: CachedJwt, now: UnixTime) {
        let mut jwts = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if jwts.len() >= MAX_CACHED_JWTS {
            jwts.retain(|_, c| c.expires_at > now);
            if jwts.len() >= MAX_CACHED_JWTS {
                // Still full of live tokens (a workload asking for many audiences):
                // start over rather than grow without bound.
                jwts.clear();
            }
        }
        jwts.insert(key, fresh);
    }
}

impl Manager {
    /// A JWT-SVID for `entry` and `audience`: from the cache while it has more than half
    /// its lifetime left, else freshly minted by the server once `budget` allows it (or,
    /// if the server cannot be reached or the budget is spent, the cached one while it is
    /// still valid).
    pub async fn jwt_svid(
        &self,
        entry: &pb::Entry,
        audience: &[String],
        budget: impl FnOnce() -> Result<(), WorkloadApiError>,
    ) -> Result<String, WorkloadApiError> {
        let mut audience = audience.to_vec();
        audience.sort();
        audience.dedup();
        lanyard_core::spiffe::check_audiences(&audience).map_err(WorkloadApiError::InvalidAudience)?;
        let key = (entry.id.clone(), entry.revision, audience.clone());
        let now = self.now();
        let cached = self.jwts.get(&key);
        let still_valid = |c: &CachedJwt| c.expires_at.as_secs() > now.as_secs() + 5;
        if let Some(c) = &cached {
            let half = c.issued_at.as_secs() + (c.expires_at.as_secs().saturating_sub(c.issued_at.as_secs())) / 2;
            if now.as_secs() < half {
                return Ok(c.token.clone());
            }
        }
        if let Err(refused) = budget() {
            return match cached {
                Some(c) if still_valid(&c) => Ok(c.token),
                _ => Err(refused),
            };
        }
        let minted = self
            .client()
            .new_jwt_svid(crate::link::timed(pb::NewJwtSvidRequest {
                entry_id: entry.id.clone(),
                audience: audience.clone(),
            }))
            .await
            .map_err(AgentError::from);
        match minted {
            Ok(response) => {
                let token = response.into_inner().token;
                // Check what the server sent before handing it to a workload, and cache it
                // by its own claims.
                let verifier = JwtSvidVerifier::new(Arc::clone(&self.trust), JwtSvidPolicy::default());
                let verified = audience
                    .iter()
                    .try_fold(None, |_, aud| verifier.verify(&token, aud, now).map(Some))
                    .ok()
                    .flatten()
                    .filter(|v| v.sub.as_str() == entry.spiffe_id)
                    .ok_or_else(|| {
                        tracing::error!(entry_id = %entry.id, "refusing a JWT-SVID from the server that does not verify");
                        WorkloadApiError::InvalidJwtSvidFromServer
                    })?;
                let fresh = CachedJwt {
                    token: token.clone(),
                    issued_at: verified.iat.unwrap_or(now),
                    expires_at: verified.exp,
                };
                self.jwts.insert(key, fresh, now);
                Ok(token)
            }
            Err(failed) => {
                let error = WorkloadApiError::from_mint("JWT-SVID", failed);
                match cached {
                    Some(c) if still_valid(&c) && error.is_outage() => {
                        tracing::warn!("server unavailable; serving a cached JWT-SVID");
                        Ok(c.token)
                    }
                    _ => Err(error),
                }
            }
        }
    }
}
