//! Replay protection for proofs (WPT `jti`, HTTP signature `nonce`).
//!
//! A replay set must never forget a live entry early: an evicting LRU would reopen the
//! replay window under load. So the in-memory cache drops entries only once they have
//! expired, and when it is full of live entries it refuses new proofs (fails closed).
//! It protects one process; several replicas need a shared store behind the same trait.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::error::Error;
use crate::time::UnixTime;

/// Remembers which proofs have been used.
pub trait ReplayCache: Send + Sync + fmt::Debug {
    /// Records that `issuer` used `jti`, which stays reserved until `expires_at`.
    ///
    /// Fails with [`Error::Replay`] if the pair was already recorded and has not expired,
    /// and with [`Error::ReplayCacheFull`] if there is no room.
    fn check_and_record(&self, issuer: &str, jti: &str, expires_at: UnixTime, now: UnixTime) -> Result<(), Error>;
}

const SHARDS: usize = 16;

struct Shard {
    /// Key: issuer and jti, length-prefixed so that no two pairs share a key.
    entries: HashMap<String, u64>,
    /// Entries are swept when the shard is full or when this time has passed.
    next_sweep: u64,
}

/// A bounded in-memory [`ReplayCache`] keyed by (`jti`, issuer).
pub struct InMemoryReplayCache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

impl fmt::Debug for InMemoryReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryReplayCache")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl InMemoryReplayCache {
    /// A cache holding at most `capacity` live proofs (rounded up to a multiple of 16).
    pub fn new(capacity: usize) -> InMemoryReplayCache {
        InMemoryReplayCache {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        entries: HashMap::new(),
                        next_sweep: 0,
                    })
                })
                .collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// The most live proofs it holds.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    /// How many proofs it holds now (expired ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).entries.len()).sum()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for InMemoryReplayCache {
    fn default() -> Self {
        InMemoryReplayCache::new(100_000)
    }
}

impl ReplayCache for InMemoryReplayCache {
    fn check_and_record(&self, issuer: &str, jti: &str, expires_at: UnixTime, now: UnixTime) -> Result<(), Error> {
        let key = format!("{}:{issuer}{jti}", issuer.len());
        let shard_index = key
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b)))
            % SHARDS;
        let mut shard = lock(&self.shards[shard_index]);
        let now = now.as_secs();
        if let Some(&exp) = shard.entries.get(&key)
            && exp >= now
        {
            return Err(Error::Replay {
                issuer: issuer.to_owned(),
                jti: jti.to_owned(),
            });
        }
        if shard.entries.len() >= self.per_shard || now >= shard.next_sweep {
            shard.entries.retain(|_, exp| *exp >= now);
            shard.next_sweep = now.saturating_add(30);
        }
        if shard.entries.len() >= self.per_shard && !shard.entries.contains_key(&key) {
            return Err(Error::ReplayCacheFull {
                capacity: self.capacity(),
            });
        }
        shard.entries.insert(key, expires_at.as_secs());
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_replay_until_expiry() {
        let c = InMemoryReplayCache::new(16);
        c.check_and_record("spiffe://td/a", "j1", UnixTime(100), UnixTime(10))
            .unwrap();
        assert_eq!(
            c.check_and_record("spiffe://td/a", "j1", UnixTime(100), UnixTime(50))
                .unwrap_err()
                .kind(),
            "replay"
        );
        // Another sender may use the same jti.
        c.check_and_record("spiffe://td/b", "j1", UnixTime(100), UnixTime(50))
            .unwrap();
        // After expiry the pair may be recorded again.
        c.check_and_record("spiffe://td/a", "j1", UnixTime(300), UnixTime(101))
            .unwrap();
    }

    #[test]
    fn fails_closed_when_full_of_live_entries() {
        let c = InMemoryReplayCache::new(16); // one entry per shard
        let mut refused = 0;
        for i in 0..200 {
            match c.check_and_record("s", &format!("j{i}"), UnixTime(1000), UnixTime(1)) {
                Ok(()) => {}
                Err(e) => {
                    assert_eq!(e.kind(), "replay_cache_full");
                    refused += 1;
                }
            }
        }
        assert!(refused >= 200 - 16);
        // Once the entries expire there is room again.
        c.check_and_record("s", "late", UnixTime(3000), UnixTime(2000)).unwrap();
    }

    #[test]
    fn issuer_and_jti_do_not_collide() {
        let c = InMemoryReplayCache::new(64);
        c.check_and_record("ab", "c", UnixTime(100), UnixTime(1)).unwrap();
        c.check_and_record("a", "bc", UnixTime(100), UnixTime(1)).unwrap();
    }
}
