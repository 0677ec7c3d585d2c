//! Group commit for one-time values: [`GroupCommitJtis`] records the `jti`s of concurrent
//! requests in shared transactions, so the token endpoint pays one durable commit (one
//! disk flush) per batch instead of one per request, while every caller still gets its
//! answer only after its key is committed. The server puts it in front of PostgreSQL; a
//! SQLite store decides `jti`s in memory and appends each to its journal in one write
//! (`sql/jti_journal.rs`), which leaves nothing to batch.
//!
//! Why: a client assertion's or a DPoP proof's `jti` must be refused when replayed, on
//! every replica sharing the database and after a restart, so each one is written to the
//! datastore before the token is issued. With SQLite's `synchronous=FULL` (and on
//! PostgreSQL) each commit waits for the disk; one commit per request caps the token
//! endpoint at the disk's flush rate. Batching keeps the guarantee (nothing is answered
//! before it is durable; the store still decides every conflict: PostgreSQL across
//! replicas, the owning process on SQLite) and lifts the cap.
//!
//! How: one task owns the batches. A request queues its key and waits. The task takes the
//! first queued key and everything else already queued (up to [`MAX_BATCH`]), records them
//! in one transaction ([`JtiStore::record_jtis`]), and answers each waiter. While a batch
//! commits, the next one gathers, so batches grow with the load and a lone request waits
//! for one commit only. A failed batch fails each of its requests with the store's error.
//!
//! Revocation checks ([`JtiStore::is_revoked`], two per token exchange) are batched the same
//! way by a second task, as one `IN (...)` query per batch ([`JtiStore::revoked_among`]):
//! each query runs after its callers queued, so every answer is at least as fresh as an
//! unbatched one; what batching saves is a round trip to the database (and on SQLite a
//! wake-up of its worker thread) per check.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use lanyard_core::UnixTime;
use tokio::sync::{mpsc, oneshot};

use super::{JtiStore, MAX_JTI_KEY, StoreError};

/// The most keys recorded in one transaction.
const MAX_BATCH: usize = 256;

/// Keys waiting for a batch; beyond this, callers wait to queue (backpressure).
const QUEUE: usize = 4096;

/// One waiting request.
struct Pending {
    key: String,
    expires_at: UnixTime,
    now: UnixTime,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// One waiting revocation check.
struct PendingCheck {
    jti: String,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// A [`JtiStore`] whose `record_jti` calls are committed in batches by a background task
/// and whose `is_revoked` calls are answered in batches by another; the other calls go
/// straight to the inner store.
pub struct GroupCommitJtis {
    inner: Arc<dyn JtiStore>,
    queue: mpsc::Sender<Pending>,
    checks: mpsc::Sender<PendingCheck>,
}

impl fmt::Debug for GroupCommitJtis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCommitJtis").field("inner", &self.inner).finish()
    }
}

impl GroupCommitJtis {
    /// Wraps `inner`, starting the batching task on the current Tokio runtime. The task
    /// ends when the last handle is dropped.
    pub fn spawn(inner: Arc<dyn JtiStore>) -> GroupCommitJtis {
        let (queue, received) = mpsc::channel(QUEUE);
        tokio::spawn(run(Arc::clone(&inner), received));
        let (checks, received_checks) = mpsc::channel(QUEUE);
        tokio::spawn(run_checks(Arc::clone(&inner), received_checks));
        GroupCommitJtis { inner, queue, checks }
    }
}

/// A queued call waiting for its answer.
trait Waiting {
    fn answer(self, outcome: Result<bool, StoreError>);
}

impl Waiting for Pending {
    fn answer(self, outcome: Result<bool, StoreError>) {
        // A caller that gave up (its request was dropped) needs no answer.
        let _ = self.reply.send(outcome);
    }
}

impl Waiting for PendingCheck {
    fn answer(self, outcome: Result<bool, StoreError>) {
        let _ = self.reply.send(outcome);
    }
}

/// The `jti`-recording task: one [`JtiStore::record_jtis`] per batch.
async fn run(store: Arc<dyn JtiStore>, received: mpsc::Receiver<Pending>) {
    serve_batches(received, "recording a batch of jtis", |batch: &[Pending]| {
        let now = batch.iter().map(|p| p.now).max().unwrap_or(UnixTime(0));
        let keys: Vec<(String, UnixTime)> = batch.iter().map(|p| (p.key.clone(), p.expires_at)).collect();
        let store = Arc::clone(&store);
        async move { store.record_jtis(&keys, now).await }
    })
    .await;
}

/// The revocation-check task: one [`JtiStore::revoked_among`] per batch.
async fn run_checks(store: Arc<dyn JtiStore>, received: mpsc::Receiver<PendingCheck>) {
    serve_batches(
        received,
        "reading a batch of revocations",
        |batch: &[PendingCheck]| {
            let jtis: Vec<String> = batch.iter().map(|p| p.jti.clone()).collect();
            let store = Arc::clone(&store);
            async move { store.revoked_among(&jtis).await }
        },
    )
    .await;
}

/// Takes the first queued call and everything else already queued (up to [`MAX_BATCH`]),
/// asks the store once with `serve`, and answers each call; a failed batch fails each of
/// its calls. Ends when every sender is gone.
async fn serve_batches<T, F, Fut>(mut received: mpsc::Receiver<T>, what: &'static str, mut serve: F)
where
    T: Waiting,
    F: FnMut(&[T]) -> Fut,
    Fut: Future<Output = Result<Vec<bool>, StoreError>>,
{
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = received.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match received.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        match serve(&batch).await {
            Ok(answers) if answers.len() == batch.len() => {
                for (waiting, answer) in batch.drain(..).zip(answers) {
                    waiting.answer(Ok(answer));
                }
            }
            outcome => {
                // A full store stays "full" for each caller (a 503, try again later).
                let full = match &outcome {
                    Err(StoreError::Full(m)) => Some(m.clone()),
                    _ => None,
                };
                let reason = match outcome {
                    Err(e) => e.to_string(),
                    Ok(_) => "the store answered a batch with the wrong number of results".into(),
                };
                tracing::warn!(calls = batch.len(), error = %reason, "{what} failed");
                for waiting in batch.drain(..) {
                    waiting.answer(Err(match &full {
                        Some(m) => StoreError::Full(m.clone()),
                        None => StoreError::Inconsistent(format!("{what} failed: {reason}")),
                    }));
                }
            }
        }
    }
}

#[async_trait]
impl JtiStore for GroupCommitJtis {
    async fn record_jti(&self, key: &str, expires_at: UnixTime, now: UnixTime) -> Result<bool, StoreError> {
        // Checked here so that one bad key cannot fail a whole batch.
        if key.is_empty() || key.len() > MAX_JTI_KEY {
            return Err(StoreError::Invalid(format!("a jti key is 1 to {MAX_JTI_KEY} bytes")));
        }
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            key: key.to_owned(),
            expires_at,
            now,
            reply,
        };
        let stopped = || StoreError::Inconsistent("the jti batching task has stopped".into());
        self.queue.send(pending).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn record_jtis(&self, keys: &[(String, UnixTime)], now: UnixTime) -> Result<Vec<bool>, StoreError> {
        self.inner.record_jtis(keys, now).await
    }

    async fn revoke_token(&self, jti: &str, expires_at: UnixTime) -> Result<(), StoreError> {
        self.inner.revoke_token(jti, expires_at).await
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        let pending = PendingCheck {
            jti: jti.to_owned(),
            reply,
        };
        let stopped = || StoreError::Inconsistent("the revocation batching task has stopped".into());
        self.checks.send(pending).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn revoked_among(&self, jtis: &[String]) -> Result<Vec<bool>, StoreError> {
        self.inner.revoked_among(jtis).await
    }

    async fn all_revocations(&self, limit: usize) -> Result<Option<std::collections::HashSet<String>>, StoreError> {
        self.inner.all_revocations(limit).await
    }

    async fn prune_jtis(&self, now: UnixTime) -> Result<u64, StoreError> {
        self.inner.prune_jtis(now).await
    }
}
