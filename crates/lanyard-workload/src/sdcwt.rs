//! Lanyard's Workload API extension for SD-CWTs (`lanyard.spice.v1.SdCwt/FetchSdCwt`,
//! `lanyard-api/proto/lanyard/spice/v1/sdcwt.proto`): an SD-CWT
//! (draft-ietf-spice-sd-cwt-08) about the workload, issued by the server and fetched by
//! the agent (which keeps it until half its lifetime has passed), with the holder key its
//! `cnf` names. Present it with
//! `lanyard_core::spice::sd_cwt::HolderSdCwt`.

use lanyard_core::{Jwk, SpiffeId, UnixTime};

use crate::client::WorkloadApiClient;
use crate::error::ClientError;

/// An SD-CWT and its holder key. `Debug` shows neither the token nor the key.
#[derive(Clone)]
pub struct SdCwtEntry {
    /// The identity the SD-CWT is about (`sub`).
    pub spiffe_id: SpiffeId,
    /// The SD-CWT, with every disclosure.
    pub token: Vec<u8>,
    /// The holder's private key, a JWK JSON document. Secret.
    pub key_jwk: String,
    /// `exp`.
    pub expires_at: UnixTime,
}

impl std::fmt::Debug for SdCwtEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdCwtEntry")
            .field("spiffe_id", &self.spiffe_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl SdCwtEntry {
    /// The holder key parsed as a [`Jwk`]. Secret.
    pub fn key(&self) -> Result<Jwk, ClientError> {
        Jwk::from_json(self.key_jwk.as_bytes()).map_err(|e| ClientError::malformed(format!("SD-CWT holder key: {e}")))
    }
}

impl WorkloadApiClient {
    /// Fetches a new SD-CWT for `spiffe_id`, or for the default identity.
    pub async fn fetch_sd_cwt(&self, spiffe_id: Option<&SpiffeId>) -> Result<SdCwtEntry, ClientError> {
        let request = lanyard_api::spice::v1::FetchSdCwtRequest {
            spiffe_id: spiffe_id.map(|id| id.as_str().to_owned()).unwrap_or_default(),
        };
        let response = self.sd_cwt.clone().fetch_sd_cwt(request).await?.into_inner();
        let id = SpiffeId::parse(&response.spiffe_id)
            .map_err(|e| ClientError::malformed(format!("SD-CWT identity: {e}")))?;
        if spiffe_id.is_some_and(|wanted| *wanted != id) {
            return Err(ClientError::malformed(format!(
                "asked for an SD-CWT for another identity and got {id}"
            )));
        }
        if response.sd_cwt.is_empty() || response.holder_key.is_empty() {
            return Err(ClientError::malformed("an SD-CWT response without a token or key"));
        }
        Ok(SdCwtEntry {
            spiffe_id: id,
            token: response.sd_cwt,
            key_jwk: response.holder_key,
            expires_at: UnixTime(u64::try_from(response.expires_at).unwrap_or(0)),
        })
    }
}
