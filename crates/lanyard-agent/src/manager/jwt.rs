//! JWT-SVIDs: minted by the server when a workload asks, checked, and cached per entry
//! revision and audience ([`MintCache`]): a cached token is served while it has more than
//! half its lifetime left, and while the server cannot be reached, until it expires.

use std::sync::Arc;

use lanyard_api::agent::v1 as pb;
use lanyard_core::{JwtSvidPolicy, JwtSvidVerifier};

use super::Manager;
use super::mint_cache::{MintCache, Minted};
use crate::error::{AgentError, WorkloadApiError};

/// The most JWT-SVIDs the agent caches (across workloads and audiences).
const MAX_CACHED_JWTS: usize = 10_000;

/// A JWT-SVID cache key: entry id, entry revision, sorted audience.
type JwtKey = (String, u64, Vec<String>);

/// The JWT-SVIDs minted for the node's workloads, bounded by [`MAX_CACHED_JWTS`].
pub(super) type JwtCache = MintCache<JwtKey, String>;

/// An empty JWT-SVID cache.
pub(super) fn cache() -> JwtCache {
    MintCache::new(MAX_CACHED_JWTS)
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
        let mint = async {
            let response = self
                .client()
                .new_jwt_svid(crate::link::timed(pb::NewJwtSvidRequest {
                    entry_id: entry.id.clone(),
                    audience: audience.clone(),
                }))
                .await
                .map_err(|e| WorkloadApiError::from_mint("JWT-SVID", AgentError::from(e)))?;
            let token = response.into_inner().token;
            // Check what the server sent before handing it to a workload, and cache it by
            // its own claims.
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
            Ok(Minted {
                issued_at: verified.iat.unwrap_or(now),
                expires_at: verified.exp,
                value: token,
            })
        };
        self.jwts.serve(key, now, "JWT-SVID", budget, mint).await
    }
}
