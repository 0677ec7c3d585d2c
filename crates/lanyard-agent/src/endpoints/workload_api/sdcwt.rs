//! Lanyard's Workload API extension for SD-CWTs (`lanyard.spice.v1.SdCwt`, see
//! `lanyard-api/proto/lanyard/spice/v1/sdcwt.proto`), served on the Workload API socket by
//! the same [`WorkloadApi`]: the same security header, the same caller attestation and
//! entry matching, the same per-uid mint budget (spent only when the server mints). The
//! agent fetches the SD-CWT from the server on the workload's behalf (`NewSdCwt`) and
//! caches it per identity until half its lifetime; see `manager/sdcwt.rs` for the holder
//! key and the cache.

use lanyard_api::spice::v1 as sp;
use lanyard_api::spice::v1::sd_cwt_server::SdCwt;
use tonic::{Request, Response, Status};

use super::{WorkloadApi, select};
use crate::error::WorkloadApiError;

#[tonic::async_trait]
impl SdCwt for WorkloadApi {
    async fn fetch_sd_cwt(
        &self,
        request: Request<sp::FetchSdCwtRequest>,
    ) -> Result<Response<sp::FetchSdCwtResponse>, Status> {
        let caller = self.caller(&request).await?;
        let wanted = request.into_inner().spiffe_id;
        let snapshot = self.manager.store().current();
        let entries = select(&snapshot, &caller, &wanted)?;
        let Some(entry) = entries.first() else {
            return Err(WorkloadApiError::NoIdentity.into());
        };
        let minted = self.manager.sd_cwt(entry, || self.spend(&caller, 1)).await?;
        Ok(Response::new(sp::FetchSdCwtResponse {
            spiffe_id: entry.spiffe_id.clone(),
            sd_cwt: minted.token,
            holder_key: minted.holder_key,
            expires_at: i64::try_from(minted.expires_at.as_secs()).unwrap_or(i64::MAX),
        }))
    }
}
