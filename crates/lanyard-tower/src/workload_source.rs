//! [`WorkloadApiCredentialSource`]: credentials from the SPIFFE Workload API's WIT-SVID
//! stream (`FetchWITSVID`), kept current by a background task and served synchronously.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use lanyard_core::{Clock, CryptoProvider, SpiffeId, SystemClock};
use lanyard_workload::{ClientError, Watch, WitSvidEntry, WorkloadApiClient};
use tokio_stream::StreamExt;

use crate::credentials::{CredentialSource, WorkloadCredentials};
use crate::error::Error;

/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A [`CredentialSource`] fed by the Workload API: it watches `FetchWITSVID` in a
/// background tokio task, keeps the latest WIT-SVID and its private key as
/// [`WorkloadCredentials`], and reconnects (immediately, then with a linear backoff up to
/// 30 s) whenever the stream ends or fails. The task stops when the source is dropped.
///
/// [`credentials`](CredentialSource::credentials) returns the latest credentials, or an
/// error once they have expired without a replacement.
pub struct WorkloadApiCredentialSource {
    current: Arc<RwLock<Arc<WorkloadCredentials>>>,
    spiffe_id: Option<SpiffeId>,
    endpoint: String,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for WorkloadApiCredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadApiCredentialSource")
            .field("endpoint", &self.endpoint)
            .field("spiffe_id", &self.spiffe_id)
            .field("current", &*self.current.read().unwrap_or_else(PoisonError::into_inner))
            .finish_non_exhaustive()
    }
}

impl Drop for WorkloadApiCredentialSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn endpoint_name(client: &WorkloadApiClient) -> String {
    client
        .address()
        .map_or_else(|| "the Workload API".to_owned(), ToString::to_string)
}

fn source_error(endpoint: &str, reason: impl fmt::Display) -> Error {
    Error::CredentialSource {
        path: endpoint.to_owned(),
        reason: reason.to_string(),
    }
}

/// Picks the WIT-SVID for `spiffe_id` (or the default, first one) and pairs it with its key.
fn build(
    svids: &[WitSvidEntry],
    spiffe_id: Option<&SpiffeId>,
    provider: &dyn CryptoProvider,
    endpoint: &str,
) -> Result<WorkloadCredentials, Error> {
    let entry = match spiffe_id {
        Some(id) => svids.iter().find(|s| &s.spiffe_id == id),
        None => svids.first(),
    }
    .ok_or_else(|| source_error(endpoint, "no WIT-SVID for the requested identity"))?;
    let jwk = entry.key().map_err(|e| source_error(endpoint, e))?;
    let key = lanyard_crypto::KeyPair::from_jwk(&jwk).map_err(|e| source_error(endpoint, e))?;
    WorkloadCredentials::new(entry.token.clone(), Arc::new(key), provider)
}

impl WorkloadApiCredentialSource {
    /// Starts watching the WIT-SVIDs of `client` (for `spiffe_id`, or the default identity)
    /// and waits for the first usable one. Fails if the stream cannot be opened or its first
    /// message is an error or unusable (e.g. `PermissionDenied` before the workload is
    /// registered, or `Unimplemented` from an endpoint without the WIT profile); callers may
    /// retry. Must be called within a tokio runtime.
    pub async fn start(client: WorkloadApiClient, spiffe_id: Option<SpiffeId>) -> Result<Self, Error> {
        let provider = lanyard_crypto::provider();
        let endpoint = endpoint_name(&client);
        let fail = |e: ClientError| source_error(&endpoint, e);
        let mut stream = client.watch_wit_svids(spiffe_id.as_ref()).await.map_err(fail)?;
        let first = match stream.next().await {
            Some(update) => build(&update.map_err(fail)?, spiffe_id.as_ref(), provider.as_ref(), &endpoint)?,
            None => return Err(fail(ClientError::StreamClosed)),
        };
        tracing::info!(id = %first.id, endpoint = %endpoint, "WIT-SVID received from the Workload API");
        let current = Arc::new(RwLock::new(Arc::new(first)));
        let task = tokio::spawn(watch_loop(
            client,
            spiffe_id.clone(),
            stream,
            Arc::clone(&current),
            provider,
            endpoint.clone(),
        ));
        Ok(WorkloadApiCredentialSource {
            current,
            spiffe_id,
            endpoint,
            task,
        })
    }

    /// The identity this source was asked for (`None`: the endpoint's default one).
    pub fn spiffe_id(&self) -> Option<&SpiffeId> {
        self.spiffe_id.as_ref()
    }
}

impl CredentialSource for WorkloadApiCredentialSource {
    fn credentials(&self) -> Result<Arc<WorkloadCredentials>, Error> {
        let current = Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner));
        if current.expires <= SystemClock.now() {
            return Err(source_error(
                &self.endpoint,
                format!(
                    "the WIT-SVID of {} expired at {} and no new one has arrived",
                    current.id, current.expires.0
                ),
            ));
        }
        Ok(current)
    }
}

async fn watch_loop(
    client: WorkloadApiClient,
    spiffe_id: Option<SpiffeId>,
    first: Watch<Vec<WitSvidEntry>>,
    current: Arc<RwLock<Arc<WorkloadCredentials>>>,
    provider: Arc<dyn CryptoProvider>,
    endpoint: String,
) {
    let mut stream = Some(first);
    let mut failures: u32 = 0;
    loop {
        if let Some(mut updates) = stream.take() {
            while let Some(update) = updates.next().await {
                let built = update
                    .map_err(|e| source_error(&endpoint, e))
                    .and_then(|svids| build(&svids, spiffe_id.as_ref(), provider.as_ref(), &endpoint));
                match built {
                    Ok(creds) => {
                        tracing::debug!(id = %creds.id, expires = creds.expires.0, "WIT-SVID rotated");
                        *current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(creds);
                        failures = 0;
                    }
                    Err(error) => tracing::warn!(%error, "WIT-SVID update failed; keeping the previous one"),
                }
            }
            tracing::info!(endpoint = %endpoint, "WIT-SVID stream ended; reconnecting");
        }
        // Immediately after a stream that worked, then 1 s, 2 s, … up to 30 s.
        tokio::time::sleep(Duration::from_secs(failures.into()).min(MAX_BACKOFF)).await;
        failures = failures.saturating_add(1);
        match client.watch_wit_svids(spiffe_id.as_ref()).await {
            Ok(updates) => stream = Some(updates),
            Err(error) => tracing::warn!(%error, endpoint = %endpoint, "cannot watch WIT-SVIDs; will retry"),
        }
    }
}
