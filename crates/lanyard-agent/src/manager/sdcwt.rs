//! SD-CWTs: minted by the server for each request (`NewSdCwt`), bound to a holder key made
//! here, and checked before the workload sees them. Not cached: each fetch is a fresh
//! credential with a fresh key, counted against the caller's mint budget.
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
use crate::error::AgentError;

/// An SD-CWT for a workload, with its holder key.
#[derive(Clone)]
pub struct MintedSdCwt {
    /// The SD-CWT.
    pub token: Vec<u8>,
    /// The holder's private JWK (JSON).
    pub holder_key: String,
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
        let expires_at = standard
            .exp
            .and_then(|e| u64::try_from(e.0).ok())
            .map_or(self.now(), UnixTime);
        Ok(MintedSdCwt {
            token: response.token,
            holder_key: key.private_jwk()?.to_json(),
            expires_at,
        })
    }
}
