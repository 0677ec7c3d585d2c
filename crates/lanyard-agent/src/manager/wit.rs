//! WIT-SVIDs: minted when a workload first asks for one (with a key made here, bound by
//! the token's `cnf` claim), checked before any workload sees it, then kept fresh by the
//! minter while the entry lasts.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use lanyard_api::agent::v1 as pb;
use lanyard_core::{Algorithm, SigningKey, UnixTime, WitPolicy, WitVerifier};

use super::Manager;
use super::backoff::rotate_time;
use crate::error::AgentError;
use crate::state::{HeldWit, Snapshot};

impl Manager {
    /// Makes sure each of `entry_ids` has a current WIT-SVID (minting the missing ones).
    /// From then on the minter keeps them fresh.
    pub async fn ensure_wits(&self, entry_ids: &[String]) -> Result<(), AgentError> {
        let snap = self.store.current();
        let now = self.now();
        for id in entry_ids {
            let Some(entry) = snap.entries.get(id) else { continue };
            if !wit_is_current(&snap, entry, now) {
                self.mint_wit(entry).await?;
            }
        }
        Ok(())
    }

    /// Mints a new WIT for every entry whose WIT is due for rotation or was issued for
    /// an earlier revision.
    pub(super) async fn refresh_wits(&self) -> Result<(), AgentError> {
        let snap = self.store.current();
        let now = self.now();
        for (id, wit) in &snap.wits {
            let Some(entry) = snap.entries.get(id) else { continue };
            if now >= wit.rotate_at || wit.entry_revision != entry.revision {
                self.mint_wit(entry).await?;
            }
        }
        Ok(())
    }

    /// Mints a WIT for `entry` unless one is already being minted (that one will be
    /// published for every stream waiting on it).
    async fn mint_wit(&self, entry: &Arc<pb::Entry>) -> Result<(), AgentError> {
        if !self
            .wits_in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(entry.id.clone())
        {
            return Ok(());
        }
        // Removed on drop too: the caller's future may be cancelled mid-mint (a workload
        // hanging up), and the entry must not stay "in flight" forever.
        let _in_flight = InFlight {
            set: &self.wits_in_flight,
            id: entry.id.clone(),
        };
        self.mint_wit_now(entry).await
    }

    async fn mint_wit_now(&self, entry: &Arc<pb::Entry>) -> Result<(), AgentError> {
        let key = lanyard_crypto::KeyPair::generate(Algorithm::ES256)?;
        let public = key.public_jwk().to_json();
        let response = self
            .client()
            .new_wit(crate::link::timed(pb::NewWitRequest {
                entry_id: entry.id.clone(),
                cnf_jwk: public,
            }))
            .await?
            .into_inner();
        // Check what the server sent before handing it to a workload.
        let verifier = WitVerifier::new(Arc::clone(&self.trust), WitPolicy::wimse());
        let verified = verifier.verify(&response.token, self.now())?;
        let crypto = self.crypto.as_ref();
        let bound = verified.cnf_jwk.thumbprint(crypto)? == key.public_jwk().thumbprint(crypto)?;
        if verified.sub.as_str() != entry.spiffe_id || !bound {
            return Err(AgentError::InvalidFromServer(format!(
                "WIT for entry {} names {} or binds another key",
                entry.id, verified.sub
            )));
        }
        let issued_at = verified.iat.unwrap_or(self.now());
        let held = HeldWit {
            token: response.token,
            private_jwk: key.private_jwk()?.to_json(),
            issued_at,
            expires_at: verified.exp,
            rotate_at: rotate_time(issued_at.max(self.now()), verified.exp, crypto),
            entry_revision: entry.revision,
        };
        let id = entry.id.clone();
        self.store.update(|s| {
            if s.entries.contains_key(&id) {
                s.wits.insert(id, Arc::new(held));
                true
            } else {
                false
            }
        });
        Ok(())
    }

    /// The entries among `entry_ids` that have no current WIT-SVID (each costs a mint).
    pub fn wits_to_mint(&self, entry_ids: &[String]) -> usize {
        let snap = self.store.current();
        let now = self.now();
        entry_ids
            .iter()
            .filter_map(|id| snap.entries.get(id))
            .filter(|entry| !wit_is_current(&snap, entry, now))
            .count()
    }
}

/// Whether `entry` has a WIT-SVID minted for its current revision and not yet expired.
fn wit_is_current(snap: &Snapshot, entry: &pb::Entry, now: UnixTime) -> bool {
    snap.wits
        .get(&entry.id)
        .is_some_and(|w| w.entry_revision == entry.revision && w.expires_at > now)
}

/// Takes an entry id out of an in-flight set when dropped.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<String>>,
    id: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}
