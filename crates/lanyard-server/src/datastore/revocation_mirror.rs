//! A replica's copy of the revoked access tokens in front of the [`JtiStore`]: token
//! exchange checks every subject and actor token it accepts, introspection every token it
//! describes and the SD-CWT endpoint every access token it serves, while revocations (RFC
//! 7009) are rare and few.
//!
//! [`JtiStore::is_revoked`] is answered from a set of every revoked `jti` read from the
//! store at most [`REVOCATION_MIRROR_TTL`] ago (one query reads them all, once per
//! interval, however many checks there are). A revocation made through this replica enters
//! its copy at once; one made on another replica sharing the database is seen within the
//! interval (a revocation through this replica waits for a read under way, so that the
//! read's older copy cannot replace the one it enters). When the store holds more than
//! [`MAX_MIRRORED_REVOCATIONS`] revocations (expired ones count until pruned), the
//! copy is not kept and each check asks the store, as before.
//!
//! Without it, each check is a round trip to the database (on SQLite, a hand-off to its
//! worker thread and back), which costs more wall time than the signature verification
//! of the token it is about (docs/benchmarks.md, token exchange in-process).

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lanyard_core::UnixTime;

use super::{JtiStore, StoreError};

/// How old the copy of the revocations may be before it is read again.
pub const REVOCATION_MIRROR_TTL: Duration = Duration::from_secs(1);

/// The most revocations kept in memory; with more in the store, checks ask the store.
pub const MAX_MIRRORED_REVOCATIONS: usize = 10_000;

/// The copy: every revoked `jti`, as read at `read_at` (plus this replica's own since).
/// `None` when the store held too many to keep.
struct Copy {
    read_at: Instant,
    jtis: Option<HashSet<String>>,
}

/// A [`JtiStore`] that answers [`JtiStore::is_revoked`] from a copy of the revocations at
/// most [`REVOCATION_MIRROR_TTL`] old; every other call goes to the inner store.
pub struct MirroredRevocations {
    inner: Arc<dyn JtiStore>,
    copy: Mutex<Option<Copy>>,
    /// One reader of the store at a time (the others wait for its copy), and no
    /// revocation through this replica while one reads.
    reading: tokio::sync::Mutex<()>,
    limit: usize,
}

impl fmt::Debug for MirroredRevocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MirroredRevocations")
            .field("inner", &self.inner)
            .finish()
    }
}

impl MirroredRevocations {
    /// Wraps `inner`, keeping at most [`MAX_MIRRORED_REVOCATIONS`] revocations.
    pub fn new(inner: Arc<dyn JtiStore>) -> MirroredRevocations {
        MirroredRevocations::with_limit(inner, MAX_MIRRORED_REVOCATIONS)
    }

    /// Wraps `inner`, keeping at most `limit` revocations.
    pub fn with_limit(inner: Arc<dyn JtiStore>, limit: usize) -> MirroredRevocations {
        MirroredRevocations {
            inner,
            copy: Mutex::new(None),
            reading: tokio::sync::Mutex::new(()),
            limit,
        }
    }

    /// The answer from a fresh copy: `Some(revoked)`, or `None` when there is no fresh
    /// copy or it is not kept (too many revocations).
    fn answer(&self, jti: &str) -> Option<Option<bool>> {
        let copy = self.copy.lock().unwrap_or_else(PoisonError::into_inner);
        let copy = copy.as_ref().filter(|c| c.read_at.elapsed() < REVOCATION_MIRROR_TTL)?;
        Some(copy.jtis.as_ref().map(|jtis| jtis.contains(jti)))
    }
}

#[async_trait]
impl JtiStore for MirroredRevocations {
    async fn record_jti(&self, key: &str, expires_at: UnixTime, now: UnixTime) -> Result<bool, StoreError> {
        self.inner.record_jti(key, expires_at, now).await
    }

    async fn record_jtis(&self, keys: &[(String, UnixTime)], now: UnixTime) -> Result<Vec<bool>, StoreError> {
        self.inner.record_jtis(keys, now).await
    }

    async fn revoke_token(&self, jti: &str, expires_at: UnixTime) -> Result<(), StoreError> {
        // Not while a read of the store is under way: a copy read before this revocation
        // was committed must not replace the one it is added to.
        let _reading = self.reading.lock().await;
        self.inner.revoke_token(jti, expires_at).await?;
        let mut copy = self.copy.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(jtis) = copy.as_mut().and_then(|c| c.jtis.as_mut()) {
            jtis.insert(jti.to_owned());
        }
        Ok(())
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        if let Some(known) = self.answer(jti) {
            return match known {
                Some(revoked) => Ok(revoked),
                None => self.inner.is_revoked(jti).await,
            };
        }
        let read = {
            let _reading = self.reading.lock().await;
            match self.answer(jti) {
                // Another caller read the store while this one waited.
                Some(known) => known,
                None => {
                    // Started before the query: a revocation committed during it may be
                    // missing from the copy, never one committed before this check.
                    let read_at = Instant::now();
                    let jtis = self.inner.all_revocations(self.limit).await?;
                    let revoked = jtis.as_ref().map(|set| set.contains(jti));
                    *self.copy.lock().unwrap_or_else(PoisonError::into_inner) = Some(Copy { read_at, jtis });
                    revoked
                }
            }
        };
        match read {
            Some(revoked) => Ok(revoked),
            None => self.inner.is_revoked(jti).await,
        }
    }

    async fn revoked_among(&self, jtis: &[String]) -> Result<Vec<bool>, StoreError> {
        self.inner.revoked_among(jtis).await
    }

    async fn all_revocations(&self, limit: usize) -> Result<Option<HashSet<String>>, StoreError> {
        self.inner.all_revocations(limit).await
    }

    async fn prune_jtis(&self, now: UnixTime) -> Result<u64, StoreError> {
        self.inner.prune_jtis(now).await
    }
}
