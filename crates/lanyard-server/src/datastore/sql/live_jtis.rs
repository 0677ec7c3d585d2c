//! The used one-time values (`jti`s) of a SQLite store, held in memory and appended to a
//! journal.
//!
//! One process owns a SQLite file (replicas share PostgreSQL instead), so on SQLite the
//! set of used keys can live in that process's memory: [`LiveJtis`] decides what is fresh
//! and what is a replay, and the journal (`jti_journal.rs`) only makes the set durable.
//! Every fresh key is appended there before its caller is answered, and the set is read
//! back from it when the store opens, so a replay is still refused after a restart or a
//! crash. (Versions before the journal appended to the table `oauth_jti_log`, which is
//! still read back at open and pruned.)
//!
//! Why not the `oauth_jti` table with its unique index, as on PostgreSQL: the keys are
//! hashes, so each insert landed on a random page of that index, and every batch of `jti`s
//! rewrote one or two 4 KiB pages per key into the WAL (73 MB/s at 11,000 tokens/s on the
//! benchmark machine, docs/benchmarks.md), which the once-a-second checkpoints then had to
//! copy while the token endpoint waited. The journal appends each key once, at the end of
//! a file.
//!
//! Memory: 16 bytes of SHA-256 of each key and its expiry, 25 bytes a hash-table slot, the
//! tables between 44 % and 88 % full: 28 to 57 bytes a key. At most [`MAX_LIVE_JTIS`] live
//! keys are held (measured: 12 million keys read back from the journal make an RSS of
//! 420–490 MiB and take 3.6–4 s to read back on two cores, during which the server does
//! not answer; the inserts wait on memory, one random cache line after another); beyond
//! that, recording fails with [`StoreError::Full`] (503 `temporarily_unavailable` at the
//! token endpoint) until some expire: fail closed, as a live key forgotten early would reopen its replay window. Only
//! authenticated clients record keys (a DPoP proof's `jti` is spent after client
//! authentication), and a key lives as long as its token may be presented: at most 6
//! minutes for an assertion (5 minutes of lifetime, 60 s of leeway) or a DPoP proof.
//!
//! On PostgreSQL none of this applies: the `oauth_jti` table decides, for every replica.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lanyard_core::{CryptoProvider, UnixTime};

use crate::datastore::StoreError;

/// The most live keys held: 12 Mi, 420–490 MiB when full (measured with 12 million). At
/// 11,000 DPoP-bound tokens a second (two keys each: assertion and proof), six minutes of
/// keys are 7.9 million.
pub(super) const MAX_LIVE_JTIS: usize = 12 << 20;

/// Shards of the set, each behind its own lock.
const SHARDS: usize = 64;

/// Seconds between sweeps of a shard's expired keys (a full shard is swept at once).
const SWEEP_EVERY: u64 = 30;

/// What a key is known by in memory: the first 16 bytes of SHA-256 of the key. Two keys
/// with one digest would only make the second look like a replay (refused, never let
/// through), and 128 bits make even that out of reach.
pub(super) type Digest = [u8; 16];

struct Shard {
    /// Each live key's expiry (Unix seconds); expired ones until the next sweep.
    expiries: HashMap<Digest, u64>,
    next_sweep: u64,
    /// When the shard was last swept (a full shard is swept at most once a second).
    last_sweep: u64,
}

/// The set of used one-time values of one SQLite store (see the module doc).
pub(super) struct LiveJtis {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    crypto: Arc<dyn CryptoProvider>,
}

/// The keys one [`LiveJtis::claim`] recorded, to undo them if their log append fails.
#[derive(Debug, Default)]
pub(super) struct Claim {
    /// Each recorded key with the expiry it replaced (an expired key taken over).
    recorded: Vec<(Digest, u64, Option<u64>)>,
}

impl LiveJtis {
    /// An empty set holding at most `capacity` live keys (rounded up to a multiple of the
    /// shard count).
    pub(super) fn new(crypto: Arc<dyn CryptoProvider>, capacity: usize) -> LiveJtis {
        LiveJtis {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        expiries: HashMap::new(),
                        next_sweep: 0,
                        last_sweep: 0,
                    })
                })
                .collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            crypto,
        }
    }

    fn digest(&self, key: &str) -> Digest {
        let full = self.crypto.sha256(key.as_bytes());
        let mut digest = [0; 16];
        digest.copy_from_slice(&full[..16]);
        digest
    }

    /// The shard `digest` belongs to.
    fn shard_index(digest: &Digest) -> usize {
        usize::from(digest[0]) % SHARDS
    }

    fn shard(&self, digest: &Digest) -> MutexGuard<'_, Shard> {
        self.shards[Self::shard_index(digest)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Which of `parts` parts of the set (whole shards each) `digest` belongs to: keys of
    /// different parts never meet on a lock, so several threads can restore them at once.
    pub(super) fn part_of(digest: &Digest, parts: usize) -> usize {
        Self::shard_index(digest) % parts.max(1)
    }

    /// Adds keys read back from the log (at open): a key keeps its latest expiry. The
    /// capacity is not applied: what was recorded stays recorded.
    pub(super) fn restore(&self, key: &str, expires_at: u64) {
        self.restore_digest(self.digest(key), expires_at);
    }

    /// [`restore`](Self::restore) for a key known by its digest (the journal's records).
    pub(super) fn restore_digest(&self, digest: Digest, expires_at: u64) {
        let mut shard = self.shard(&digest);
        let expiry = shard.expiries.entry(digest).or_insert(expires_at);
        *expiry = (*expiry).max(expires_at);
    }

    /// Records each key of `keys` that is fresh at `now` (never recorded, or recorded with
    /// an expiry before `now`) until its expiry, in order, so a key that appears twice is
    /// fresh at its first place only. Answers which were fresh, and the [`Claim`] to
    /// [`release`](Self::release) should they not become durable. Fails with
    /// [`StoreError::Full`], recording nothing, when a key finds no room.
    pub(super) fn claim(&self, keys: &[(String, UnixTime)], now: UnixTime) -> Result<(Vec<bool>, Claim), StoreError> {
        let now = now.as_secs();
        let mut fresh = Vec::with_capacity(keys.len());
        let mut claim = Claim::default();
        for (key, expires_at) in keys {
            let digest = self.digest(key);
            let mut shard = self.shard(&digest);
            let previous = shard.expiries.get(&digest).copied();
            if previous.is_some_and(|expiry| expiry >= now) {
                fresh.push(false);
                continue;
            }
            let full = shard.expiries.len() >= self.per_shard;
            if previous.is_none() && (now >= shard.next_sweep || (full && now > shard.last_sweep)) {
                shard.expiries.retain(|_, expiry| *expiry >= now);
                shard.next_sweep = now.saturating_add(SWEEP_EVERY);
                shard.last_sweep = now;
            }
            if previous.is_none() && shard.expiries.len() >= self.per_shard {
                drop(shard);
                self.release(claim);
                return Err(StoreError::Full(format!(
                    "more than {} one-time values are live; try again when some expire",
                    self.per_shard * SHARDS
                )));
            }
            shard.expiries.insert(digest, expires_at.as_secs());
            claim.recorded.push((digest, expires_at.as_secs(), previous));
            fresh.push(true);
        }
        Ok((fresh, claim))
    }

    /// Undoes a [`claim`](Self::claim) whose keys did not reach the log: each key gets
    /// back what it had (nothing, or its expired entry), unless another call changed it
    /// since. Until then, a concurrent use of such a key was answered as a replay: the
    /// error is on the side of refusing.
    pub(super) fn release(&self, claim: Claim) {
        for (digest, recorded, previous) in claim.recorded.into_iter().rev() {
            let mut shard = self.shard(&digest);
            if shard.expiries.get(&digest) == Some(&recorded) {
                match previous {
                    Some(expiry) => shard.expiries.insert(digest, expiry),
                    None => shard.expiries.remove(&digest),
                };
            }
        }
    }

    /// How many keys it holds (expired ones until they are swept).
    pub(super) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).expiries.len())
            .sum()
    }

    /// Drops the keys that expired before `now` (the same rule as the journal's pruning);
    /// answers how many.
    pub(super) fn prune(&self, now: UnixTime) -> usize {
        let now = now.as_secs();
        let mut dropped = 0;
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let before = shard.expiries.len();
            shard.expiries.retain(|_, expiry| *expiry >= now);
            dropped += before - shard.expiries.len();
        }
        dropped
    }
}

impl Claim {
    /// Whether it recorded nothing.
    pub(super) fn is_empty(&self) -> bool {
        self.recorded.is_empty()
    }

    /// Each recorded key's digest and expiry, in order: what the journal appends.
    pub(super) fn records(&self) -> impl Iterator<Item = (&Digest, u64)> {
        self.recorded.iter().map(|(digest, expiry, _)| (digest, *expiry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(capacity: usize) -> LiveJtis {
        LiveJtis::new(lanyard_crypto::provider(), capacity)
    }

    fn keys(names: &[&str], expires_at: u64) -> Vec<(String, UnixTime)> {
        names.iter().map(|n| ((*n).to_owned(), UnixTime(expires_at))).collect()
    }

    #[test]
    fn a_key_is_fresh_once_until_it_expires() {
        let live = set(1024);
        let (fresh, _) = live.claim(&keys(&["a", "b", "a"], 100), UnixTime(10)).unwrap();
        assert_eq!(fresh, [true, true, false]);
        assert_eq!(live.claim(&keys(&["a"], 100), UnixTime(100)).unwrap().0, [false]);
        // Expired: taken over.
        assert_eq!(live.claim(&keys(&["a"], 300), UnixTime(101)).unwrap().0, [true]);
        assert_eq!(live.claim(&keys(&["a"], 300), UnixTime(200)).unwrap().0, [false]);
    }

    #[test]
    fn a_released_claim_gives_back_what_was_there() {
        let live = set(1024);
        live.claim(&keys(&["old"], 50), UnixTime(10)).unwrap();
        let (fresh, claim) = live.claim(&keys(&["new", "old"], 500), UnixTime(60)).unwrap();
        assert_eq!(fresh, [true, true]);
        live.release(claim);
        // "new" is unknown again, "old" is back at its expired entry: both fresh.
        assert_eq!(
            live.claim(&keys(&["new", "old"], 500), UnixTime(60)).unwrap().0,
            [true, true]
        );
    }

    #[test]
    fn a_full_set_refuses_new_keys_and_keeps_live_ones() {
        let live = set(SHARDS);
        let names: Vec<String> = (0..10_000).map(|i| format!("k{i}")).collect();
        let mut recorded = Vec::new();
        let mut refused = None;
        for name in &names {
            match live.claim(&[(name.clone(), UnixTime(1000))], UnixTime(10)) {
                Ok((fresh, _)) => {
                    assert_eq!(fresh, [true]);
                    recorded.push(name.clone());
                }
                Err(e) => {
                    assert!(matches!(e, StoreError::Full(_)), "{e}");
                    refused = Some(name.clone());
                    break;
                }
            }
        }
        let refused = refused.expect("a set of 64 keys fills up");
        // Every recorded key is still a replay; a batch that meets a full shard records
        // none of its keys.
        for name in &recorded {
            assert_eq!(
                live.claim(&[(name.clone(), UnixTime(1000))], UnixTime(20)).unwrap().0,
                [false]
            );
        }
        let batch = [
            ("fits-maybe".to_owned(), UnixTime(1000)),
            (refused.clone(), UnixTime(1000)),
        ];
        assert!(live.claim(&batch, UnixTime(20)).is_err());
        // Once the keys expire, there is room again.
        assert_eq!(
            live.claim(&[(refused, UnixTime(5000))], UnixTime(1001)).unwrap().0,
            [true]
        );
    }

    #[test]
    fn restored_keys_are_replays_and_keep_the_latest_expiry() {
        let live = set(1024);
        live.restore("a", 100);
        live.restore("a", 50);
        assert_eq!(live.claim(&keys(&["a"], 100), UnixTime(100)).unwrap().0, [false]);
        live.prune(UnixTime(101));
        assert_eq!(live.claim(&keys(&["a"], 200), UnixTime(101)).unwrap().0, [true]);
    }
}
