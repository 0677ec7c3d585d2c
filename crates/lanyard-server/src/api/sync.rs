//! `SyncEntries`: one shared change feed for all streams.
//!
//! The datastore has an entry change log (`entry_events_since`) but no notifications, and
//! writes may come from the admin API or from another replica. So one task per server, the
//! [`Hub`], polls `latest_entry_event()` every [`POLL_INTERVAL`] and broadcasts new events
//! to every open stream: the database cost is one cheap query per interval however many
//! agents are connected, and a change reaches a connected agent within about
//! `POLL_INTERVAL` (plus one `get_entry` by the streams the change concerns). Every
//! [`SLOW_INTERVAL`] the hub also checks the bundle sequence and the stored federated
//! bundles (streams then send a `Bundles` message) and, while streams are open, the set of
//! banned agents (a banned agent's stream ends with `PermissionDenied`).
//!
//! A stream subscribes to the feed *before* it reads the revision and the snapshot, and
//! ignores events at or below the snapshot's revision, so no change is lost between the
//! snapshot and the first delta. A stream that falls behind the broadcast buffer resyncs
//! with a full delta (every authorized entry upserted, the rest deleted).

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use lanyard_api::agent::v1 as pb;
use lanyard_core::SpiffeId;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::api::status::AgentApiError;
use crate::api::{bundles, wire};
use crate::datastore::EntryEvent;
use crate::entries;
use crate::state::AppState;

/// The stream type of `SyncEntries`.
pub type SyncStream = Pin<Box<dyn Stream<Item = Result<pb::SyncEntriesResponse, Status>> + Send + 'static>>;

/// How often the hub polls the entry change log.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How often the hub checks the bundle sequence and the banned agents.
pub const SLOW_INTERVAL: Duration = Duration::from_secs(1);
/// Events read from the change log per query.
const EVENT_PAGE: u32 = 500;
/// Event batches buffered per stream before it must resync.
const BROADCAST_CAPACITY: usize = 256;
/// Entries per snapshot chunk.
const SNAPSHOT_CHUNK: usize = 500;
/// Messages buffered per stream (the rest waits for the agent to read).
const STREAM_BUFFER: usize = 16;

/// The shared change feed. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Hub {
    events: broadcast::Sender<Arc<[EntryEvent]>>,
    bundle_sequence: watch::Receiver<BundleVersion>,
    banned: watch::Receiver<Arc<HashSet<String>>>,
    stop: watch::Receiver<bool>,
}

/// What the streams' `Bundles` messages depend on: the own bundle's sequence and a digest
/// of the stored federated bundles.
type BundleVersion = (u64, [u8; 32]);

impl Hub {
    /// Starts the polling task in `tasks`; it ends when `stop` becomes true, and so do the
    /// streams (with `Unavailable`).
    pub fn start(state: AppState, stop: watch::Receiver<bool>, tasks: &mut JoinSet<()>) -> Hub {
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let (sequence_tx, bundle_sequence) = watch::channel((0, [0; 32]));
        let (banned_tx, banned) = watch::channel(Arc::new(HashSet::new()));
        let hub = Hub {
            events: events.clone(),
            bundle_sequence,
            banned,
            stop: stop.clone(),
        };
        tasks.spawn(poll(state, events, sequence_tx, banned_tx, stop));
        hub
    }

    /// Opens a `SyncEntries` stream for `agent` (already authenticated).
    pub fn open_stream(&self, state: AppState, agent: SpiffeId) -> SyncStream {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let feed = Feed {
            events: self.events.subscribe(),
            bundle_sequence: self.bundle_sequence.clone(),
            banned: self.banned.clone(),
            stop: self.stop.clone(),
        };
        tokio::spawn(async move {
            let result = run_stream(&state, &agent, feed, &tx).await;
            if let Err(e) = result {
                let status = Status::from(e);
                tracing::debug!(agent = %agent, code = ?status.code(), message = status.message(), "SyncEntries stream ended");
                let _ = tx.send(Err(status)).await;
            }
        });
        Box::pin(ReceiverStream::new(rx))
    }
}

/// Completes when `stop` becomes true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The hub's loop.
async fn poll(
    state: AppState,
    events: broadcast::Sender<Arc<[EntryEvent]>>,
    bundle_sequence: watch::Sender<BundleVersion>,
    banned: watch::Sender<Arc<HashSet<String>>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut last = None;
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let slow_every = u32::try_from(SLOW_INTERVAL.as_millis() / POLL_INTERVAL.as_millis()).unwrap_or(20);
    let mut n: u32 = 0;
    let local_changes = state.stores.entries.local_changes();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            // An entry written by this process: look now, not at the next tick.
            () = async {
                match &local_changes {
                    Some(changed) => changed.notified().await,
                    None => std::future::pending().await,
                }
            } => {}
            () = stopped(&mut stop) => return,
        }
        if let Err(e) = poll_events(&state, &events, &mut last).await {
            tracing::warn!(error = %e, "agent API: reading the entry change log failed");
        }
        if n.is_multiple_of(slow_every) {
            match bundle_version(&state).await {
                Ok(version) => {
                    bundle_sequence.send_if_modified(|old| std::mem::replace(old, version) != version);
                }
                Err(e) => tracing::warn!(error = %e, "agent API: reading the bundle sequence failed"),
            }
            if events.receiver_count() > 0 {
                match state.stores.agents.list_agents().await {
                    Ok(agents) => {
                        let set: HashSet<String> = agents
                            .into_iter()
                            .filter(|a| a.banned)
                            .map(|a| a.id.as_str().to_owned())
                            .collect();
                        banned.send_if_modified(|old| {
                            let changed = **old != set;
                            if changed {
                                *old = Arc::new(set);
                            }
                            changed
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "agent API: listing agents failed"),
                }
            }
        }
        n = n.wrapping_add(1);
    }
}

/// The own bundle's sequence and a SHA-256 over the stored federated bundles (a foreign
/// bundle is stored only when it changed, possibly by another replica).
async fn bundle_version(state: &AppState) -> Result<BundleVersion, crate::datastore::StoreError> {
    let sequence = state.stores.authorities.bundle_sequence().await?;
    let mut federated = Vec::new();
    for trust_domain in state.stores.federated_bundles.list_federated_bundles().await? {
        if let Some((json, _)) = state
            .stores
            .federated_bundles
            .get_federated_bundle(&trust_domain)
            .await?
        {
            federated.extend_from_slice(trust_domain.as_bytes());
            federated.push(0);
            federated.extend_from_slice(json.as_bytes());
            federated.push(0);
        }
    }
    Ok((sequence, state.crypto.sha256(&federated)))
}

async fn poll_events(
    state: &AppState,
    events: &broadcast::Sender<Arc<[EntryEvent]>>,
    last: &mut Option<u64>,
) -> Result<(), crate::datastore::StoreError> {
    let latest = state.stores.entries.latest_entry_event().await?;
    let Some(mut seen) = *last else {
        *last = Some(latest);
        return Ok(());
    };
    while seen < latest {
        let page = state.stores.entries.entry_events_since(seen, EVENT_PAGE).await?;
        let Some(newest) = page.last().map(|e| e.seq) else {
            break;
        };
        seen = newest;
        // No receivers is fine: nobody is connected.
        let _ = events.send(page.into());
    }
    *last = Some(seen.max(latest));
    Ok(())
}

/// A stream's view of the hub.
struct Feed {
    events: broadcast::Receiver<Arc<[EntryEvent]>>,
    bundle_sequence: watch::Receiver<BundleVersion>,
    banned: watch::Receiver<Arc<HashSet<String>>>,
    stop: watch::Receiver<bool>,
}

type Tx = mpsc::Sender<Result<pb::SyncEntriesResponse, Status>>;

/// Sends one message; `false` when the agent has gone.
async fn send(tx: &Tx, event: pb::sync_entries_response::Event) -> bool {
    tx.send(Ok(pb::SyncEntriesResponse { event: Some(event) }))
        .await
        .is_ok()
}

async fn send_bundles(state: &AppState, agent: &SpiffeId, tx: &Tx) -> Result<bool, AgentApiError> {
    let bundles = bundles::for_agent(state, agent).await?;
    Ok(send(tx, pb::sync_entries_response::Event::Bundles(bundles)).await)
}

/// Serves one stream until the agent goes away (`Ok`) or it must end with a status.
async fn run_stream(state: &AppState, agent: &SpiffeId, mut feed: Feed, tx: &Tx) -> Result<(), AgentApiError> {
    feed.bundle_sequence.borrow_and_update();
    feed.banned.borrow_and_update();
    if !send_bundles(state, agent, tx).await? {
        return Ok(());
    }
    // The revision before the entries: a change in between is both in the snapshot and
    // delivered again as a delta, which the agent applies idempotently.
    let mut revision = state.stores.entries.latest_entry_event().await?;
    let entries = entries::authorized_entries(&*state.stores.entries, agent).await?;
    let mut known: HashSet<String> = entries.iter().map(|e| e.id.clone()).collect();
    let chunks: Vec<&[crate::model::Entry]> = if entries.is_empty() {
        vec![&[]]
    } else {
        entries.chunks(SNAPSHOT_CHUNK).collect()
    };
    let count = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let snapshot = pb::EntriesSnapshot {
            revision,
            entries: chunk.iter().map(|e| wire::entry(e, None)).collect(),
            complete: i + 1 == count,
        };
        if !send(tx, pb::sync_entries_response::Event::Snapshot(snapshot)).await {
            return Ok(());
        }
    }
    loop {
        tokio::select! {
            () = tx.closed() => return Ok(()),
            () = stopped(&mut feed.stop) => return Err(AgentApiError::ShuttingDown),
            changed = feed.banned.changed() => {
                if changed.is_err() {
                    return Err(AgentApiError::ShuttingDown);
                }
                if feed.banned.borrow_and_update().contains(agent.as_str()) {
                    return Err(AgentApiError::AgentBanned(agent.clone()));
                }
            }
            changed = feed.bundle_sequence.changed() => {
                if changed.is_err() {
                    return Err(AgentApiError::ShuttingDown);
                }
                feed.bundle_sequence.borrow_and_update();
                if !send_bundles(state, agent, tx).await? {
                    return Ok(());
                }
            }
            received = feed.events.recv() => {
                let delta = match received {
                    Ok(batch) => apply_events(state, agent, &batch, &mut known, &mut revision).await?,
                    Err(broadcast::error::RecvError::Lagged(_)) => resync(state, agent, &mut known, &mut revision).await?,
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(AgentApiError::ShuttingDown);
                    }
                };
                if let Some(delta) = delta
                    && !send(tx, pb::sync_entries_response::Event::Delta(delta)).await
                {
                    return Ok(());
                }
            }
        }
    }
}

/// The delta for a batch of change-log events, or `None` if none concerns this agent.
async fn apply_events(
    state: &AppState,
    agent: &SpiffeId,
    batch: &[EntryEvent],
    known: &mut HashSet<String>,
    revision: &mut u64,
) -> Result<Option<pb::EntriesDelta>, AgentApiError> {
    let floor = *revision;
    let Some(newest) = batch.iter().map(|e| e.seq).max().filter(|s| *s > floor) else {
        return Ok(None);
    };
    *revision = newest;
    // The last event per entry that concerns this agent (its current state is read below).
    let mut ids: Vec<(&str, u64)> = Vec::new();
    for event in batch.iter().filter(|e| e.seq > floor) {
        if event.parent_id == agent.as_str() || known.contains(&event.entry_id) {
            match ids.iter_mut().find(|(id, _)| *id == event.entry_id) {
                Some(slot) => slot.1 = event.seq,
                None => ids.push((&event.entry_id, event.seq)),
            }
        }
    }
    if ids.is_empty() {
        return Ok(None);
    }
    let mut delta = pb::EntriesDelta {
        revision: newest,
        ..Default::default()
    };
    for (id, seq) in ids {
        let entry = state.stores.entries.get_entry(id).await?;
        match entry.filter(|e| entries::is_authorized(e, agent)) {
            Some(entry) => {
                known.insert(entry.id.clone());
                delta.upserts.push(wire::entry(&entry, Some(seq)));
            }
            None => {
                if known.remove(id) {
                    delta.deleted_entry_ids.push(id.to_owned());
                }
            }
        }
    }
    Ok((!delta.upserts.is_empty() || !delta.deleted_entry_ids.is_empty()).then_some(delta))
}

/// After missing events: the complete current set as one delta.
async fn resync(
    state: &AppState,
    agent: &SpiffeId,
    known: &mut HashSet<String>,
    revision: &mut u64,
) -> Result<Option<pb::EntriesDelta>, AgentApiError> {
    let latest = state.stores.entries.latest_entry_event().await?;
    let entries = entries::authorized_entries(&*state.stores.entries, agent).await?;
    let current: HashSet<String> = entries.iter().map(|e| e.id.clone()).collect();
    let deleted: Vec<String> = known.difference(&current).cloned().collect();
    *known = current;
    let next = latest.max(*revision + 1);
    *revision = next;
    Ok(Some(pb::EntriesDelta {
        revision: next,
        upserts: entries.iter().map(|e| wire::entry(e, None)).collect(),
        deleted_entry_ids: deleted,
    }))
}
