//! The entry stream: the server pushes this agent's entries (a snapshot, then deltas)
//! and the bundles it trusts; the agent refuses entries it must not serve, publishes the
//! rest, and wakes the minter. A stream that fails is reopened with backoff; a refusal of
//! the agent itself (it was banned) empties what it serves until it is let in again.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};

use lanyard_api::agent::v1 as pb;
use lanyard_core::{SpiffeId, TrustDomain, WorkloadId};
use lanyard_x509::{X509Bundle, X509BundleSet};

use super::Manager;
use super::backoff::Backoff;
use crate::error::AgentError;
use crate::state::{BundleView, Snapshot};

impl Manager {
    /// Keeps the entry stream open: reopens it with backoff when it fails, at once when
    /// the agent SVID was renewed.
    pub(super) async fn sync_loop(self: Arc<Self>) {
        let mut backoff = Backoff::new(Arc::clone(&self.crypto));
        loop {
            let result = tokio::select! {
                result = self.sync_once(&mut backoff) => result,
                () = self.restart_sync.notified() => Ok(()),
            };
            let was = self.health();
            self.set_health(|h| h.server_connected = false);
            match result {
                Ok(()) => tracing::debug!("entry stream restarted"),
                Err(refused) if refused.is_agent_refused() => {
                    // Logged once per refusal, not on every retry.
                    if !was.banned {
                        tracing::error!(
                            reason = %refused.reason(),
                            "the server refused this agent; serving nothing"
                        );
                    }
                    self.set_health(|h| {
                        h.banned = true;
                        h.last_error = Some(refused.reason());
                    });
                    self.store.update(|s| {
                        let had = !s.entries.is_empty() || !s.svids.is_empty() || !s.wits.is_empty();
                        s.set_entries(BTreeMap::new());
                        s.svids.clear();
                        s.wits.clear();
                        had
                    });
                }
                Err(failed) => {
                    // Logged when the link goes down, then quietly retried.
                    if was.server_connected || was.last_error.is_none() {
                        tracing::warn!(error = %failed.summary(), "entry stream failed; reconnecting with backoff");
                    } else {
                        tracing::debug!(error = %failed.summary(), "still cannot reach the server");
                    }
                    self.set_health(|h| h.last_error = Some(failed.summary()));
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff.next_delay()) => {}
                () = self.restart_sync.notified() => {}
            }
        }
    }

    async fn sync_once(&self, backoff: &mut Backoff) -> Result<(), AgentError> {
        let mut stream = self
            .client()
            .sync_entries(pb::SyncEntriesRequest { known_revision: 0 })
            .await?
            .into_inner();
        self.set_health(|h| {
            h.server_connected = true;
            h.banned = false;
            h.last_error = None;
        });
        let mut chunks: Vec<pb::Entry> = Vec::new();
        while let Some(message) = stream.message().await? {
            backoff.reset();
            match message.event {
                Some(pb::sync_entries_response::Event::Bundles(bundles)) => {
                    if let Err(e) = self.apply_bundles(&bundles) {
                        tracing::error!(error = %e, "refusing bundles from the server");
                    }
                }
                Some(pb::sync_entries_response::Event::Snapshot(snapshot)) => {
                    chunks.extend(snapshot.entries);
                    if snapshot.complete {
                        self.apply_snapshot(snapshot.revision, std::mem::take(&mut chunks));
                    }
                }
                Some(pb::sync_entries_response::Event::Delta(delta)) => self.apply_delta(delta),
                None => {}
            }
        }
        Ok(())
    }

    fn apply_bundles(&self, bundles: &pb::Bundles) -> Result<(), AgentError> {
        let own = bundles
            .bundle
            .as_ref()
            .ok_or_else(|| AgentError::InvalidFromServer("bundles without the own trust domain's".into()))?;
        let mut federated = BTreeMap::new();
        for (key, bundle) in &bundles.federated_bundles {
            match BundleView::from_pb(bundle) {
                Ok(view) if &view.key == key && view.bundle.trust_domain != self.td => {
                    federated.insert(key.clone(), Arc::new(view));
                }
                Ok(_) => tracing::warn!(trust_domain = %key, "ignoring a federated bundle filed under the wrong key"),
                Err(e) => tracing::warn!(trust_domain = %key, error = %e, "ignoring an invalid federated bundle"),
            }
        }
        self.apply_bundle_set(own, federated)
    }

    /// Installs the own trust domain's bundle (from attestation or renewal), keeping the
    /// federated bundles as they are.
    pub(super) fn apply_own_bundle(&self, own: &pb::Bundle) -> Result<(), AgentError> {
        self.apply_bundle_set(own, self.store.current().federated.clone())
    }

    fn apply_bundle_set(
        &self,
        own: &pb::Bundle,
        federated: BTreeMap<String, Arc<BundleView>>,
    ) -> Result<(), AgentError> {
        let json = own.json.clone();
        let own = BundleView::from_pb(own)?;
        if own.bundle.trust_domain != self.td {
            return Err(AgentError::InvalidFromServer(format!(
                "bundle for {} instead of {}",
                own.bundle.trust_domain.name(),
                self.td.name()
            )));
        }

        // TLS toward the server trusts the new own bundle; JWT/WIT checks trust all.
        let changed = self
            .store
            .current()
            .bundle
            .as_ref()
            .is_none_or(|b| b.sequence != own.sequence || b.bundle != own.bundle);
        if changed {
            self.source
                .update_bundles(X509BundleSet::new().with(X509Bundle::from_spiffe_bundle(&own.bundle)?));
            self.files.save_bundle(&json)?;
        }
        self.trust.set_bundle(&own.bundle)?;
        let current = self.store.current();
        for key in current.federated.keys().filter(|k| !federated.contains_key(*k)) {
            self.trust.remove_trust_domain(key.trim_start_matches("spiffe://"));
        }
        for view in federated.values() {
            self.trust.set_bundle(&view.bundle)?;
        }
        let own = Arc::new(own);
        self.store.update(|s| {
            let same_fed = s.federated.len() == federated.len()
                && s.federated
                    .iter()
                    .all(|(k, v)| federated.get(k).is_some_and(|n| n.bundle == v.bundle));
            if !changed && same_fed {
                return false;
            }
            s.bundle = Some(Arc::clone(&own));
            s.federated = federated;
            true
        });
        Ok(())
    }

    /// Whether the server may send this entry to this agent; logs a refusal once.
    fn acceptable(&self, entry: &pb::Entry) -> bool {
        let Some(reason) = entry_refusal(entry, &self.agent_id(), &self.td) else {
            return true;
        };
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        if refused.insert(format!("{}@{}", entry.id, entry.revision)) {
            tracing::warn!(entry_id = %entry.id, %reason, "refusing an entry sent by the server");
        }
        false
    }

    fn apply_snapshot(&self, revision: u64, entries: Vec<pb::Entry>) {
        let entries: BTreeMap<String, Arc<pb::Entry>> = entries
            .into_iter()
            .filter(|e| self.acceptable(e))
            .map(|e| (e.id.clone(), Arc::new(e)))
            .collect();
        tracing::info!(entries = entries.len(), revision, "entry snapshot applied");
        self.store.update(|s| {
            s.revision = revision;
            s.set_entries(entries);
            s.synced = true;
            drop_orphans(s);
            true
        });
        self.wake_minter.notify_one();
    }

    fn apply_delta(&self, delta: pb::EntriesDelta) {
        let upserts: Vec<pb::Entry> = delta.upserts.into_iter().filter(|e| self.acceptable(e)).collect();
        self.store.update(|s| {
            if delta.revision <= s.revision {
                return false;
            }
            s.revision = delta.revision;
            let mut entries = std::mem::take(&mut s.entries);
            for id in &delta.deleted_entry_ids {
                entries.remove(id);
            }
            for entry in upserts {
                entries.insert(entry.id.clone(), Arc::new(entry));
            }
            s.set_entries(entries);
            drop_orphans(s);
            true
        });
        self.wake_minter.notify_one();
    }
}

/// Why this agent must not serve `entry`, if it must not: the entry belongs to another
/// node, names an identity outside the trust domain, is malformed, or has no selectors
/// (it would match every workload).
fn entry_refusal(entry: &pb::Entry, agent: &SpiffeId, td: &TrustDomain) -> Option<String> {
    if entry.parent_id != agent.as_str() {
        return Some(format!("its parent is {}, not this agent", entry.parent_id));
    }
    match WorkloadId::parse(&entry.spiffe_id) {
        Err(e) => Some(format!("invalid identity {:?}: {e}", entry.spiffe_id)),
        Ok(id) if id.trust_domain() != td.name() => {
            Some(format!("{} is not in trust domain {}", entry.spiffe_id, td.name()))
        }
        Ok(_) if entry.selectors.is_empty() => Some("it has no selectors".into()),
        Ok(_)
            if entry
                .selectors
                .iter()
                .any(|s| s.r#type.is_empty() || s.value.is_empty()) =>
        {
            Some("it has an empty selector".into())
        }
        Ok(_) => None,
    }
}

/// Removes SVIDs and WITs whose entry is gone.
fn drop_orphans(s: &mut Snapshot) {
    let entries = &s.entries;
    s.svids.retain(|id, _| entries.contains_key(id));
    s.wits.retain(|id, _| entries.contains_key(id));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn entries_for_other_nodes_or_domains_are_refused() {
        let agent = SpiffeId::parse("spiffe://example.org/lanyard/agent/join_token/ab").unwrap();
        let td = TrustDomain::parse("example.org").unwrap();
        let good = pb::Entry {
            id: "1".into(),
            spiffe_id: "spiffe://example.org/web".into(),
            parent_id: agent.to_string(),
            selectors: vec![pb::Selector {
                r#type: "unix".into(),
                value: "uid:1000".into(),
            }],
            ..pb::Entry::default()
        };
        assert_eq!(entry_refusal(&good, &agent, &td), None);
        let cases = [
            pb::Entry {
                parent_id: "spiffe://example.org/lanyard/agent/join_token/cd".into(),
                ..good.clone()
            },
            pb::Entry {
                spiffe_id: "spiffe://other.org/web".into(),
                ..good.clone()
            },
            pb::Entry {
                spiffe_id: "not an id".into(),
                ..good.clone()
            },
            pb::Entry {
                selectors: vec![],
                ..good.clone()
            },
            pb::Entry {
                selectors: vec![pb::Selector::default()],
                ..good.clone()
            },
        ];
        for case in cases {
            assert!(entry_refusal(&case, &agent, &td).is_some(), "{case:?}");
        }
    }
}
