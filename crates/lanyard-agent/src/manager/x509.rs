//! The minter: X.509-SVIDs for every entry, signed ahead of any request. An entry gets
//! one as soon as it arrives, and a new one when its revision changes or the current one
//! is due for rotation; CSRs go to the server in batches. Each pass also refreshes the
//! WIT-SVIDs that are due.

use std::sync::Arc;
use std::time::Duration;

use lanyard_api::agent::v1 as pb;
use lanyard_x509::{X509Bundle, X509BundleSet};

use super::Manager;
use super::backoff::rotate_time;
use crate::error::AgentError;
use crate::state::{HeldSvid, Snapshot};
use crate::svid;

/// How many CSRs go into one `BatchNewX509Svid` call.
const BATCH: usize = 500;

impl Manager {
    /// Mints what is due, then sleeps until woken (new entries) or for a second.
    pub(super) async fn mint_loop(self: Arc<Self>) {
        loop {
            if let Err(e) = self.mint_due().await {
                tracing::warn!(error = %e, "minting SVIDs failed; retrying");
            }
            if let Err(e) = self.refresh_wits().await {
                tracing::warn!(error = %e, "refreshing WITs failed; retrying");
            }
            tokio::select! {
                () = self.wake_minter.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Mints SVIDs for entries without a current one.
    async fn mint_due(&self) -> Result<(), AgentError> {
        let now = self.now();
        let snap = self.store.current();
        let due: Vec<Arc<pb::Entry>> = snap
            .entries
            .values()
            .filter(|e| e.spiffe_id.starts_with("spiffe://"))
            .filter(|e| {
                snap.svids
                    .get(&e.id)
                    .is_none_or(|svid| svid.entry_revision != e.revision || now >= svid.rotate_at)
            })
            .cloned()
            .collect();
        for batch in due.chunks(BATCH) {
            self.mint_batch(batch, &snap).await?;
        }
        Ok(())
    }

    async fn mint_batch(&self, batch: &[Arc<pb::Entry>], snap: &Snapshot) -> Result<(), AgentError> {
        let Some(own) = &snap.bundle else {
            return Ok(());
        };
        let bundles = X509BundleSet::new().with(X509Bundle::from_spiffe_bundle(&own.bundle)?);
        let entries: Vec<Arc<pb::Entry>> = batch.to_vec();
        // Key generation and CSR signing are CPU work: keep them off the async threads.
        let prepared = tokio::task::spawn_blocking(move || {
            entries
                .into_iter()
                .map(|e| svid::key_and_csr(&e.spiffe_id, &e.dns_names).map(|(key, csr)| (e, key, csr)))
                .collect::<Result<Vec<_>, AgentError>>()
        })
        .await??;
        let request = pb::BatchNewX509SvidRequest {
            params: prepared
                .iter()
                .map(|(e, _, csr)| pb::X509SvidParams {
                    entry_id: e.id.clone(),
                    csr: csr.clone(),
                })
                .collect(),
        };
        let response = self
            .client()
            .batch_new_x509_svid(crate::link::timed(request))
            .await?
            .into_inner();
        if response.results.len() != prepared.len() {
            return Err(AgentError::InvalidFromServer(format!(
                "{} results for {} CSRs",
                response.results.len(),
                prepared.len()
            )));
        }
        let now = self.now();
        let crypto = Arc::clone(&self.crypto);
        let accepted = tokio::task::spawn_blocking(move || {
            let mut accepted = Vec::new();
            for ((entry, key, _), result) in prepared.into_iter().zip(response.results) {
                match result.result {
                    Some(pb::x509_svid_result::Result::Svid(svid)) if result.entry_id == entry.id => {
                        match svid::accept_svid(&svid, key.clone(), &entry.spiffe_id, &bundles, now) {
                            Ok((_, verified)) => accepted.push((
                                entry.id.clone(),
                                HeldSvid {
                                    spiffe_id: entry.spiffe_id.clone(),
                                    chain: svid.cert_chain,
                                    key_pkcs8: key,
                                    issued_at: verified.not_before,
                                    expires_at: verified.not_after,
                                    rotate_at: rotate_time(
                                        verified.not_before.max(now),
                                        verified.not_after,
                                        crypto.as_ref(),
                                    ),
                                    entry_revision: entry.revision,
                                },
                            )),
                            Err(e) => tracing::error!(entry_id = %entry.id, error = %e, "refusing an SVID"),
                        }
                    }
                    Some(pb::x509_svid_result::Result::Error(why)) => {
                        tracing::warn!(entry_id = %entry.id, reason = %why, "the server refused to sign an SVID");
                    }
                    _ => tracing::error!(entry_id = %entry.id, "malformed BatchNewX509Svid result"),
                }
            }
            accepted
        })
        .await?;
        if accepted.is_empty() {
            return Ok(());
        }
        tracing::debug!(count = accepted.len(), "X.509-SVIDs minted");
        self.store.update(|s| {
            for (id, svid) in accepted {
                // The entry may have gone while the request was in flight.
                if s.entries.contains_key(&id) {
                    s.svids.insert(id, Arc::new(svid));
                }
            }
            true
        });
        Ok(())
    }
}
