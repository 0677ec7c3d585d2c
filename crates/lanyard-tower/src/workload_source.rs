//! What a service takes from the SPIFFE Workload API, each kept current by a background
//! task that follows a Workload API stream and reconnects when it ends:
//!
//! - [`WorkloadApiCredentialSource`]: its WIT-SVID and key (`FetchWITSVID`), for the client
//!   middleware and signed responses;
//! - [`WorkloadApiTrust`]: a [`TrustStore`] with the WIT and JWT-SVID keys of every trust
//!   domain it should trust (`FetchWITBundles`, `FetchJWTBundles`), for the server layer;
//! - [`WorkloadApiX509Source`]: its X.509-SVID and the X.509 bundles as an
//!   [`SvidSource`], for mTLS with `lanyard_x509::server_config` / `client_config`;
//! - [`WorkloadApiClientCredentials`]: JWT-SVIDs (or the X.509-SVID, over mutual TLS) to
//!   authenticate the OAuth client middleware at a token endpoint.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use std::future::Future;

use lanyard_core::{Clock, CryptoProvider, JwkSet, KeyUse, SpiffeId, SystemClock, TrustStore};
use lanyard_workload::{ClientError, Watch, WitSvidEntry, WorkloadApiClient, X509Context};
use lanyard_x509::SvidSource;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;

use crate::credentials::{CredentialSource, WorkloadCredentials};
use crate::error::Error;
use crate::oauth::{ClientCredential, ClientCredentialSource};

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
    let key = provider.signing_key(&jwk).map_err(|e| source_error(endpoint, e))?;
    WorkloadCredentials::new(entry.token.clone(), key, provider)
}

impl WorkloadApiCredentialSource {
    /// Starts watching the WIT-SVIDs of `client` (for `spiffe_id`, or the default identity)
    /// and waits for the first usable one. Fails if the stream cannot be opened or its first
    /// message is an error or unusable (e.g. `PermissionDenied` before the workload is
    /// registered, or `Unimplemented` from an endpoint without the WIT profile); callers may
    /// retry. Must be called within a tokio runtime.
    pub async fn start(client: WorkloadApiClient, spiffe_id: Option<SpiffeId>) -> Result<Self, Error> {
        Self::start_with_provider(client, spiffe_id, crate::default_provider()).await
    }

    /// [`WorkloadApiCredentialSource::start`], parsing keys and signing proofs with
    /// `provider` instead of the process default.
    pub async fn start_with_provider(
        client: WorkloadApiClient,
        spiffe_id: Option<SpiffeId>,
        provider: Arc<dyn CryptoProvider>,
    ) -> Result<Self, Error> {
        let endpoint = endpoint_name(&client);
        let fail = |e: ClientError| source_error(&endpoint, e);
        let mut stream = client.watch_wit_svids(spiffe_id.as_ref()).await.map_err(fail)?;
        let first = match stream.next().await {
            Some(update) => build(&update.map_err(fail)?, spiffe_id.as_ref(), provider.as_ref(), &endpoint)?,
            None => return Err(fail(ClientError::StreamClosed)),
        };
        tracing::info!(id = %first.id, endpoint = %endpoint, "WIT-SVID received from the Workload API");
        let current = Arc::new(RwLock::new(Arc::new(first)));
        let task = {
            let (current, wanted, endpoint) = (Arc::clone(&current), spiffe_id.clone(), endpoint.clone());
            let open_id = spiffe_id.clone();
            tokio::spawn(follow(
                endpoint.clone(),
                stream,
                move || {
                    let (client, id) = (client.clone(), open_id.clone());
                    async move { client.watch_wit_svids(id.as_ref()).await }
                },
                move |svids: Vec<WitSvidEntry>| {
                    let creds = build(&svids, wanted.as_ref(), provider.as_ref(), &endpoint)?;
                    tracing::debug!(id = %creds.id, expires = creds.expires.0, "WIT-SVID rotated");
                    *current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(creds);
                    Ok(())
                },
            ))
        };
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

/// Follows a Workload API watch until the task is aborted: applies every update (a
/// failed update is logged and the previous state kept), and reopens the stream when it
/// ends or fails: at once after a stream that worked, then after 1 s, 2 s, … up to 30 s.
async fn follow<T, O, F>(
    endpoint: String,
    first: Watch<T>,
    open: O,
    mut apply: impl FnMut(T) -> Result<(), Error> + Send,
) where
    O: Fn() -> F + Send,
    F: Future<Output = Result<Watch<T>, ClientError>> + Send,
    T: Send,
{
    let mut stream = Some(first);
    let mut failures: u32 = 0;
    loop {
        if let Some(mut updates) = stream.take() {
            while let Some(update) = updates.next().await {
                match update.map_err(|e| source_error(&endpoint, e)).and_then(&mut apply) {
                    Ok(()) => failures = 0,
                    Err(error) => tracing::warn!(%error, "Workload API update failed; keeping the previous state"),
                }
            }
            tracing::info!(endpoint = %endpoint, "Workload API stream ended; reconnecting");
        }
        tokio::time::sleep(Duration::from_secs(failures.into()).min(MAX_BACKOFF)).await;
        failures = failures.saturating_add(1);
        match open().await {
            Ok(updates) => stream = Some(updates),
            Err(error) => {
                tracing::warn!(%error, endpoint = %endpoint, "cannot reopen the Workload API stream; will retry")
            }
        }
    }
}

/// Opens a watch and waits for its first update.
async fn first_update<T>(endpoint: &str, watch: Result<Watch<T>, ClientError>) -> Result<(T, Watch<T>), Error> {
    let mut stream = watch.map_err(|e| source_error(endpoint, e))?;
    match stream.next().await {
        Some(update) => Ok((update.map_err(|e| source_error(endpoint, e))?, stream)),
        None => Err(source_error(endpoint, ClientError::StreamClosed)),
    }
}

/// The WIT-SVID and JWT-SVID keys the Workload API says to trust, in a [`TrustStore`] kept
/// current from `FetchWITBundles` and `FetchJWTBundles` (keys that disappear from a bundle
/// are removed). The tasks stop when this is dropped.
#[derive(Debug)]
pub struct WorkloadApiTrust {
    store: Arc<TrustStore>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for WorkloadApiTrust {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

/// Replaces the `key_use` keys of every trust domain in `sets` (and drops those of trust
/// domains no longer listed).
fn replace_keys(store: &TrustStore, key_use: KeyUse, sets: &[(String, JwkSet)], known: &mut Vec<String>) {
    for td in known.iter() {
        if !sets.iter().any(|(name, _)| name == td) {
            for key in store.keys(td, key_use) {
                store.remove_key(td, key_use, key.kid.as_deref().unwrap_or_default());
            }
        }
    }
    for (td, set) in sets {
        let old = store.keys(td, key_use);
        for key in &set.keys {
            // JWT-SVID and WIT bundle keys must carry a `kid` (SPIFFE bundle §4.2.2; the
            // Workload API's WIT bundles say the same); keys are replaced by it.
            if key.kid.is_none() {
                tracing::warn!(trust_domain = %td, "ignoring a bundle key without a kid");
                continue;
            }
            if let Err(error) = store.add_key(td, key_use, key) {
                tracing::warn!(%error, trust_domain = %td, "ignoring a bundle key");
            }
        }
        for stale in old.iter().filter(|k| !set.keys.iter().any(|n| n.kid == k.kid)) {
            store.remove_key(td, key_use, stale.kid.as_deref().unwrap_or_default());
        }
    }
    *known = sets.iter().map(|(td, _)| td.clone()).collect();
}

impl WorkloadApiTrust {
    /// Fetches the WIT and JWT bundles of `client` (waiting for the first of each) and keeps
    /// following them. Must be called within a tokio runtime.
    pub async fn start(client: WorkloadApiClient) -> Result<Self, Error> {
        Self::start_with_provider(client, crate::default_provider()).await
    }

    /// [`WorkloadApiTrust::start`], its trust store checking signatures with `provider`
    /// instead of the process default.
    pub async fn start_with_provider(
        client: WorkloadApiClient,
        provider: Arc<dyn CryptoProvider>,
    ) -> Result<Self, Error> {
        let endpoint = endpoint_name(&client);
        let store = Arc::new(TrustStore::new(provider));
        let mut tasks = Vec::new();

        let (first, stream) = first_update(&endpoint, client.watch_wit_bundles().await).await?;
        let mut known = Vec::new();
        let mut apply_wit = {
            let (store, endpoint) = (Arc::clone(&store), endpoint.clone());
            move |bundles: lanyard_workload::WitBundles| {
                let mut sets = Vec::new();
                for td in bundles.bundles.keys() {
                    if let Some(set) = bundles.jwk_set(td) {
                        sets.push((td.name().to_owned(), set.map_err(|e| source_error(&endpoint, e))?));
                    }
                }
                replace_keys(&store, KeyUse::WitSvid, &sets, &mut known);
                Ok(())
            }
        };
        apply_wit(first)?;
        let wit_client = client.clone();
        tasks.push(tokio::spawn(follow(
            endpoint.clone(),
            stream,
            move || {
                let client = wit_client.clone();
                async move { client.watch_wit_bundles().await }
            },
            apply_wit,
        )));

        let (first, stream) = first_update(&endpoint, client.watch_jwt_bundles().await).await?;
        let mut known = Vec::new();
        let mut apply_jwt = {
            let (store, endpoint) = (Arc::clone(&store), endpoint.clone());
            move |bundles: lanyard_workload::JwtBundles| {
                let mut sets = Vec::new();
                for td in bundles.bundles.keys() {
                    if let Some(set) = bundles.jwk_set(td) {
                        sets.push((td.name().to_owned(), set.map_err(|e| source_error(&endpoint, e))?));
                    }
                }
                replace_keys(&store, KeyUse::JwtSvid, &sets, &mut known);
                Ok(())
            }
        };
        apply_jwt(first)?;
        tasks.push(tokio::spawn(follow(
            endpoint,
            stream,
            move || {
                let client = client.clone();
                async move { client.watch_jwt_bundles().await }
            },
            apply_jwt,
        )));
        Ok(WorkloadApiTrust { store, tasks })
    }

    /// The trust store (shared; it changes as bundles rotate).
    pub fn store(&self) -> Arc<TrustStore> {
        Arc::clone(&self.store)
    }
}

/// An X.509-SVID and the X.509 bundles from `FetchX509SVID`, as an [`SvidSource`] that
/// rustls configs read on every handshake, so rotation needs no restart. The task stops
/// when this is dropped.
#[derive(Debug)]
pub struct WorkloadApiX509Source {
    source: Arc<SvidSource>,
    task: JoinHandle<()>,
}

impl Drop for WorkloadApiX509Source {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The SVID for `spiffe_id` (or the default one) out of `context`, with all its bundles.
fn pick(
    context: &X509Context,
    spiffe_id: Option<&SpiffeId>,
    endpoint: &str,
) -> Result<(lanyard_x509::X509Svid, lanyard_x509::X509BundleSet), Error> {
    let svid = match spiffe_id {
        Some(id) => context.svid_for(id),
        None => context.default_svid(),
    }
    .ok_or_else(|| source_error(endpoint, "no X.509-SVID for the requested identity"))?;
    let bundles = context.bundle_set().map_err(|e| source_error(endpoint, e))?;
    Ok((svid.to_x509_svid(), bundles))
}

impl WorkloadApiX509Source {
    /// Waits for the first X.509 context of `client` and keeps following it, serving the
    /// SVID of `spiffe_id` (or the default one). Must be called within a tokio runtime.
    pub async fn start(client: WorkloadApiClient, spiffe_id: Option<SpiffeId>) -> Result<Self, Error> {
        let endpoint = endpoint_name(&client);
        let (first, stream) = first_update(&endpoint, client.watch_x509_context().await).await?;
        let (svid, bundles) = pick(&first, spiffe_id.as_ref(), &endpoint)?;
        let source = Arc::new(SvidSource::new(&svid, bundles).map_err(|e| source_error(&endpoint, e))?);
        let task = {
            let (source, endpoint) = (Arc::clone(&source), endpoint.clone());
            let wanted = spiffe_id.clone();
            tokio::spawn(follow(
                endpoint.clone(),
                stream,
                move || {
                    let client = client.clone();
                    async move { client.watch_x509_context().await }
                },
                move |context: X509Context| {
                    let (svid, bundles) = pick(&context, wanted.as_ref(), &endpoint)?;
                    source.update_svid(&svid).map_err(|e| source_error(&endpoint, e))?;
                    source.update_bundles(bundles);
                    Ok(())
                },
            ))
        };
        Ok(WorkloadApiX509Source { source, task })
    }

    /// The source to build rustls configs from.
    pub fn source(&self) -> Arc<SvidSource> {
        Arc::clone(&self.source)
    }
}

/// Renew an agent JWT-SVID this long before it expires, in seconds.
const JWT_SVID_MARGIN: u64 = 30;

/// A [`ClientCredentialSource`] fed by the agent through the Workload API, for the OAuth
/// client middleware: a JWT-SVID whose only audience is the authorization server's issuer
/// (`FetchJWTSVID`), used as a `jwt-spiffe` client assertion and reused until shortly
/// before it expires; or, built with [`WorkloadApiClientCredentials::x509`], mutual TLS
/// with the X.509-SVID of a [`WorkloadApiX509Source`] (rotations apply to new connections).
pub struct WorkloadApiClientCredentials {
    client: WorkloadApiClient,
    spiffe_id: Option<SpiffeId>,
    /// The last JWT-SVID: issuer it was fetched for, token, `exp`.
    cached: tokio::sync::Mutex<Option<(String, String, lanyard_core::UnixTime)>>,
    mtls: Option<reqwest::Client>,
}

impl fmt::Debug for WorkloadApiClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadApiClientCredentials")
            .field("endpoint", &endpoint_name(&self.client))
            .field("spiffe_id", &self.spiffe_id)
            .field("mtls", &self.mtls.is_some())
            .finish_non_exhaustive()
    }
}

impl WorkloadApiClientCredentials {
    /// JWT-SVIDs of `client` (for `spiffe_id`, or the default identity).
    pub fn jwt_svid(client: WorkloadApiClient, spiffe_id: Option<SpiffeId>) -> Self {
        WorkloadApiClientCredentials {
            client,
            spiffe_id,
            cached: tokio::sync::Mutex::new(None),
            mtls: None,
        }
    }

    /// Mutual TLS with the X.509-SVID of `x509`, accepting a token endpoint whose SVID
    /// `server` allows (the authorization server's mutual-TLS listener serves its own SVID).
    pub fn x509(
        client: WorkloadApiClient,
        x509: &WorkloadApiX509Source,
        server: lanyard_x509::tls::Authorizer,
    ) -> Result<Self, Error> {
        let endpoint = endpoint_name(&client);
        let tls = lanyard_x509::tls::client_config(x509.source(), server).map_err(|e| source_error(&endpoint, e))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| source_error(&endpoint, e))?;
        Ok(WorkloadApiClientCredentials {
            client,
            spiffe_id: None,
            cached: tokio::sync::Mutex::new(None),
            mtls: Some(http),
        })
    }
}

#[async_trait::async_trait]
impl ClientCredentialSource for WorkloadApiClientCredentials {
    async fn credential(&self, issuer: &str) -> Result<ClientCredential, Error> {
        if self.mtls.is_some() {
            return Ok(ClientCredential::Mtls);
        }
        let mut cached = self.cached.lock().await;
        let now = SystemClock.now();
        if let Some((for_issuer, token, exp)) = cached.as_ref()
            && for_issuer == issuer
            && now.plus(JWT_SVID_MARGIN) < *exp
        {
            return Ok(ClientCredential::JwtSvid(token.clone()));
        }
        let endpoint = endpoint_name(&self.client);
        let svids = self
            .client
            .fetch_jwt_svid(&[issuer], self.spiffe_id.as_ref())
            .await
            .map_err(|e| source_error(&endpoint, e))?;
        let svid = svids
            .into_iter()
            .next()
            .ok_or_else(|| source_error(&endpoint, "no JWT-SVID for the requested identity"))?;
        let exp = svid
            .expires_at()
            .ok_or_else(|| source_error(&endpoint, "the JWT-SVID has no exp"))?;
        tracing::debug!(id = %svid.spiffe_id, exp = exp.0, "JWT-SVID received for OAuth client authentication");
        *cached = Some((issuer.to_owned(), svid.token.clone(), exp));
        Ok(ClientCredential::JwtSvid(svid.token))
    }

    fn mtls_client(&self) -> Option<reqwest::Client> {
        self.mtls.clone()
    }
}
