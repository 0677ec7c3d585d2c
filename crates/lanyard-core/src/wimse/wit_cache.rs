//! A bounded cache of verified WITs, keyed by the token's SHA-256 (the same hash as its
//! `wth`), so a service that sees one WIT on many requests checks its signature once.
//!
//! Correct under key rotation: each entry remembers the [`TrustStore`] epoch it was
//! verified in. While the epoch is unchanged a hit costs one atomic load; after any key
//! removal, a hit first confirms that the very key that verified the entry is still
//! trusted, and evicts the entry otherwise.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use super::wit::VerifiedWit;
use crate::time::UnixTime;
use crate::trust::{KeyUse, TrustStore};

const SHARDS: usize = 16;

struct Entry {
    wit: Arc<VerifiedWit>,
    epoch: u64,
}

/// Verified WITs, at most `capacity` of them, each until its `exp` (plus leeway).
pub struct WitCache {
    shards: Vec<Mutex<HashMap<[u8; 32], Entry>>>,
    per_shard: usize,
}

impl fmt::Debug for WitCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WitCache")
            .field("len", &self.len())
            .field("capacity", &(self.per_shard * SHARDS))
            .finish()
    }
}

impl WitCache {
    /// A cache of at most `capacity` WITs (rounded up to a multiple of 16).
    pub fn new(capacity: usize) -> WitCache {
        WitCache {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// How many WITs are cached.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every entry.
    pub fn clear(&self) {
        for s in &self.shards {
            lock(s).clear();
        }
    }

    /// The cached WIT with this hash, if it is unexpired and its key is still trusted.
    pub(crate) fn get(
        &self,
        hash: &[u8; 32],
        now: UnixTime,
        leeway: u64,
        store: &TrustStore,
    ) -> Option<Arc<VerifiedWit>> {
        let mut shard = lock(self.shard(hash));
        let entry = shard.get_mut(hash)?;
        if now > entry.wit.exp.plus(leeway) {
            shard.remove(hash);
            return None;
        }
        let epoch = store.epoch();
        if entry.epoch != epoch {
            if !store.still_trusts(&entry.wit.anchor, KeyUse::WitSvid) {
                shard.remove(hash);
                return None;
            }
            entry.epoch = epoch;
        }
        Some(Arc::clone(&entry.wit))
    }

    /// Caches `wit`, verified while the store was at `epoch`.
    pub(crate) fn insert(&self, hash: [u8; 32], wit: Arc<VerifiedWit>, epoch: u64) {
        let mut shard = lock(self.shard(&hash));
        if shard.len() >= self.per_shard && !shard.contains_key(&hash) {
            // Make room: the entry that expires first goes (expired ones first of all).
            if let Some(victim) = shard.iter().min_by_key(|(_, e)| e.wit.exp).map(|(k, _)| *k) {
                shard.remove(&victim);
            }
        }
        shard.insert(hash, Entry { wit, epoch });
    }

    fn shard(&self, hash: &[u8; 32]) -> &Mutex<HashMap<[u8; 32], Entry>> {
        &self.shards[usize::from(hash[0]) % SHARDS]
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
