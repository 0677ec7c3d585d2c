//! The cache behind the credentials the server mints on a workload's request (JWT-SVIDs,
//! SD-CWTs): per key, the last credential minted with its times. A cached credential is
//! served while it has more than half its lifetime left; after that a new one is minted
//! once the caller's mint budget allows, and the cached one is served instead, while it is
//! still valid (more than [`GRACE_SECS`] left), when the budget is spent or the server is
//! unreachable. Refusals by the server are never papered over.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use lanyard_core::UnixTime;

use crate::error::WorkloadApiError;

/// A cached credential is still handed out during an outage only with more than this many
/// seconds left.
const GRACE_SECS: u64 = 5;

/// A credential as the server minted it, with its times.
#[derive(Clone)]
pub(super) struct Minted<V> {
    /// The credential.
    pub(super) value: V,
    /// `iat`.
    pub(super) issued_at: UnixTime,
    /// `exp`.
    pub(super) expires_at: UnixTime,
}

impl<V> Minted<V> {
    /// More than half its lifetime left at `now`.
    fn fresh(&self, now: UnixTime) -> bool {
        let (iat, exp) = (self.issued_at.as_secs(), self.expires_at.as_secs());
        now.as_secs() < iat + exp.saturating_sub(iat) / 2
    }

    /// Usable at `now` (more than [`GRACE_SECS`] left).
    fn still_valid(&self, now: UnixTime) -> bool {
        self.expires_at.as_secs() > now.as_secs() + GRACE_SECS
    }
}

/// Minted credentials by key, at most `capacity` of them.
pub(super) struct MintCache<K, V> {
    entries: Mutex<HashMap<K, Minted<V>>>,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> MintCache<K, V> {
    /// An empty cache holding at most `capacity` credentials.
    pub(super) fn new(capacity: usize) -> MintCache<K, V> {
        MintCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn get(&self, key: &K) -> Option<Minted<V>> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Caches `fresh`; when full, drops what expired before `now`, or else everything.
    fn insert(&self, key: K, fresh: Minted<V>, now: UnixTime) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity {
            entries.retain(|_, c| c.expires_at > now);
            if entries.len() >= self.capacity {
                // Still full of live credentials (a workload asking for many audiences):
                // start over rather than grow without bound.
                entries.clear();
            }
        }
        entries.insert(key, fresh);
    }

    /// The credential for `key` at `now` (see the module documentation): cached, or
    /// `mint`ed once `budget` allows it. `what` names the credential in logs.
    pub(super) async fn serve(
        &self,
        key: K,
        now: UnixTime,
        what: &'static str,
        budget: impl FnOnce() -> Result<(), WorkloadApiError>,
        mint: impl Future<Output = Result<Minted<V>, WorkloadApiError>>,
    ) -> Result<V, WorkloadApiError> {
        let cached = self.get(&key);
        if let Some(c) = cached.as_ref().filter(|c| c.fresh(now)) {
            return Ok(c.value.clone());
        }
        if let Err(refused) = budget() {
            return match cached {
                Some(c) if c.still_valid(now) => Ok(c.value),
                _ => Err(refused),
            };
        }
        match mint.await {
            Ok(fresh) => {
                let value = fresh.value.clone();
                self.insert(key, fresh, now);
                Ok(value)
            }
            Err(error) => match cached {
                Some(c) if c.still_valid(now) && error.is_outage() => {
                    tracing::warn!(credential = what, "server unavailable; serving a cached credential");
                    Ok(c.value)
                }
                _ => Err(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn minted(value: u32, issued_at: u64, expires_at: u64) -> Minted<u32> {
        Minted {
            value,
            issued_at: UnixTime(issued_at),
            expires_at: UnixTime(expires_at),
        }
    }

    #[tokio::test]
    async fn serves_fresh_credentials_from_the_cache_and_mints_past_half_life() {
        let cache = MintCache::new(2);
        let spent = || Err(WorkloadApiError::NoIdentity);
        let ok = || Ok(());
        let first = cache.serve("a", UnixTime(100), "x", ok, async { Ok(minted(1, 100, 200)) });
        assert_eq!(first.await.unwrap(), 1);
        // Fresh: neither the budget nor the server is asked.
        let again = cache.serve("a", UnixTime(149), "x", spent, async { unreachable!() });
        assert_eq!(again.await.unwrap(), 1);
        // Past half its life: minted again; with the budget spent, the cached one.
        let later = cache.serve("a", UnixTime(150), "x", ok, async { Ok(minted(2, 150, 250)) });
        assert_eq!(later.await.unwrap(), 2);
        let spent_late = cache.serve("a", UnixTime(240), "x", spent, async { unreachable!() });
        assert_eq!(spent_late.await.unwrap(), 2);
        // Too close to expiry: the refusal stands.
        let expiring = cache.serve("a", UnixTime(246), "x", spent, async { unreachable!() });
        assert!(expiring.await.is_err());
        // Full: expired entries go first, then everything.
        cache.insert("b", minted(3, 0, 10), UnixTime(20));
        cache.insert("c", minted(4, 20, 30), UnixTime(20));
        assert!(cache.get(&"b").is_none() && cache.get(&"c").is_some());
    }
}
