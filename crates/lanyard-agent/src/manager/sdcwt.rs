//! SD-CWTs: minted by the server (`NewSdCwt`), bound to a holder key made here, checked
//! before the workload sees them, and cached per workload identity (entry and revision)
//! with their holder key ([`MintCache`]): a fetch is answered from the cache while the
//! SD-CWT has more than half its lifetime left, so only the first fetch, and one per
//! half-life after it, reaches the server and counts against the caller's mint budget;
//! while the server cannot be reached or the budget is spent, the cached one is served
//! until shortly before it expires. A new entry revision (new claims) mints anew.
//! Workloads of one identity get the same SD-CWT and holder key, as they get the same
//! X.509-SVID and key.
//!
//! **Holder keys** are handled as for WIT-SVIDs: the agent generates an ES256 key per
//! credential, the server binds it in `cnf`, and the workload receives the private JWK
//! with the token (over the Workload API socket, never logged or stored).
//!
//! **The check** is the holder's validation (draft-ietf-spice-sd-cwt-08 §7.2) without the
//! issuer signature: the SD-CWT issuer keys are not SPIFFE trust anchors, so the agent
//! does not hold them; the server is authenticated by mTLS and verifiers check the
//! signature. Every other rule runs (structure, `cnf` = the key made here, times, every
//! redacted claim has exactly one disclosure), and `sub` must be the entry's identity.

use std::sync::Arc;

use lanyard_api::agent::v1 as pb;
use lanyard_core::cose::CoseKey;
use lanyard_core::spice::sd_cwt::{HolderSdCwt, SdCwtPolicy};
use lanyard_core::{Algorithm, SigningKey, UnixTime};

use super::Manager;
use super::mint_cache::{MintCache, Minted};
use crate::error::{AgentError, WorkloadApiError};

/// The most SD-CWTs the agent caches (one per entry).
const MAX_CACHED_SD_CWTS: usize = 10_000;

/// SD-CWTs by entry id and revision.
pub(super) type SdCwtCache = MintCache<(String, u64), MintedSdCwt>;

/// An empty SD-CWT cache.
pub(super) fn cache() -> SdCwtCache {
    MintCache::new(MAX_CACHED_SD_CWTS)
}

/// An SD-CWT for a workload, with its holder key.
#[derive(Clone)]
pub struct MintedSdCwt {
    /// The SD-CWT.
    pub token: Vec<u8>,
    /// The holder's private JWK (JSON).
    pub holder_key: String,
    /// `iat`.
    pub issued_at: UnixTime,
    /// `exp`.
    pub expires_at: UnixTime,
}

impl std::fmt::Debug for MintedSdCwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedSdCwt")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// The SD-CWT for `entry`: cached, or minted by the server once `budget` allows it
    /// (see the module documentation).
    pub async fn sd_cwt(
        &self,
        entry: &Arc<pb::Entry>,
        budget: impl FnOnce() -> Result<(), WorkloadApiError>,
    ) -> Result<MintedSdCwt, WorkloadApiError> {
        let key = (entry.id.clone(), entry.revision);
        let mint = async {
            let minted = self.mint_sd_cwt(entry).await.map_err(|e| {
                tracing::warn!(error = %e, "minting an SD-CWT failed");
                WorkloadApiError::from_mint("SD-CWT", e)
            })?;
            Ok(Minted {
                issued_at: minted.issued_at,
                expires_at: minted.expires_at,
                value: minted,
            })
        };
        self.sd_cwts.serve(key, self.now(), "SD-CWT", budget, mint).await
    }

    /// Has the server mint an SD-CWT for `entry`, bound to a new holder key, and checks it.
    pub async fn mint_sd_cwt(&self, entry: &Arc<pb::Entry>) -> Result<MintedSdCwt, AgentError> {
        let key = lanyard_crypto::KeyPair::generate(Algorithm::ES256)?;
        let response = self
            .client()
            .new_sd_cwt(crate::link::timed(pb::NewSdCwtRequest {
                entry_id: entry.id.clone(),
                cnf_jwk: key.public_jwk().to_json(),
            }))
            .await?
            .into_inner();
        let holder = CoseKey::from_jwk(&key.public_jwk())?;
        let held = HolderSdCwt::danger_receive_without_issuer_check(
            &response.token,
            &holder,
            self.crypto.as_ref(),
            &SdCwtPolicy::default(),
            self.now(),
        )?;
        let standard = held.standard_claims();
        if standard.sub.as_deref() != Some(entry.spiffe_id.as_str()) {
            return Err(AgentError::InvalidFromServer(format!(
                "SD-CWT for entry {} is about {:?}",
                entry.id, standard.sub
            )));
        }
        let time = |t: Option<lanyard_core::cwt::NumericDate>| t.and_then(|t| u64::try_from(t.0).ok()).map(UnixTime);
        let expires_at = time(standard.exp).unwrap_or(self.now());
        Ok(MintedSdCwt {
            token: response.token,
            holder_key: key.private_jwk()?.to_json(),
            issued_at: time(standard.iat).unwrap_or(self.now()),
            expires_at,
        })
    }
}
