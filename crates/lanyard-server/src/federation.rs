//! Federation: fetching foreign trust domains' bundles from their SPIFFE bundle endpoints
//! (SPIFFE Federation §4–§5; digest `shared/specs/spiffe.md` §4.2), configured by
//! `[[federation.trust_domains]]`.
//!
//! One background task per foreign trust domain ([`spawn`]) fetches its bundle at start,
//! then again after the bundle's `spiffe_refresh_hint`, bounded to
//! [`MIN_REFRESH`]..=[`MAX_REFRESH`] ([`DEFAULT_REFRESH`] without a hint). A fetched
//! document must parse as a SPIFFE bundle for that trust domain, with usable X.509
//! authorities; it is stored ([`FederatedBundleStore::put_federated_bundle`](crate::datastore::FederatedBundleStore::put_federated_bundle)) only when its
//! `spiffe_sequence` differs from the stored one (or, without sequences, its content).
//! A failure is logged and retried with exponential backoff from [`FIRST_RETRY`] up to
//! the refresh interval; the last good bundle stays stored and served meanwhile. The agent
//! API's sync hub notices stored changes and pushes a `Bundles` event to the streams of the
//! agents whose entries federate with that trust domain. At start, the stored bundles of
//! trust domains no longer configured are deleted ([`forget_unconfigured`]), and so stop
//! reaching agents and workloads.
//!
//! Profiles (never inferred, no fallback):
//! - `https_web`: Web PKI server authentication of the URL's host, against the system's
//!   roots or the configured `ca_bundle_path`;
//! - `https_spiffe`: the endpoint must present an X.509-SVID with `endpoint_spiffe_id`,
//!   validated with the bundle of the endpoint's trust domain: for a self-serving endpoint
//!   the last fetched bundle (the bootstrap bundle before the first fetch); for an endpoint
//!   of this trust domain its own bundle; otherwise that trust domain's stored federated
//!   bundle (or the bootstrap bundle).
//!
//! Redirects are followed (at most [`MAX_REDIRECTS`], `https` only) with the same checks.
//! The endpoint needs no client authentication (§5.2); with `https_spiffe` the client
//! presents the server's own SVID only if the endpoint asks for one.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lanyard_core::{SpiffeBundle, SpiffeId, TrustDomain};
use lanyard_x509::{Authorizer, SvidSource, X509Bundle, X509BundleSet};
use tokio::task::JoinSet;

use crate::config::{BundleEndpointProfile, FederatedTrustDomain};
use crate::state::AppState;

/// The shortest refresh interval, whatever the hint says.
pub const MIN_REFRESH: Duration = Duration::from_secs(30);
/// The longest refresh interval, whatever the hint says.
pub const MAX_REFRESH: Duration = Duration::from_secs(3600);
/// The refresh interval of a bundle without `spiffe_refresh_hint`.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
/// The first retry delay after a failed fetch (doubling up to the refresh interval).
pub const FIRST_RETRY: Duration = Duration::from_secs(5);
/// The most redirects followed.
pub const MAX_REDIRECTS: usize = 3;
/// The largest bundle document accepted.
pub const MAX_BUNDLE_BYTES: usize = 1 << 20;
/// Timeout of one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a fetch failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// The relationship's configuration is unusable.
    #[error("federation with {trust_domain}: {message}")]
    Config {
        /// The foreign trust domain.
        trust_domain: String,
        /// What is wrong.
        message: String,
    },
    /// The endpoint could not be reached, refused the TLS checks, or answered an error.
    #[error("fetching the bundle of {trust_domain}: {message}")]
    Fetch {
        /// The foreign trust domain.
        trust_domain: String,
        /// What failed.
        message: String,
    },
    /// The document is not a valid SPIFFE bundle for the trust domain.
    #[error("the bundle of {trust_domain} is invalid: {source}")]
    InvalidBundle {
        /// The foreign trust domain.
        trust_domain: String,
        /// Why (a bundle parse or X.509 error).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The datastore or the server's own keys failed.
    #[error("federation with {trust_domain}: {source}")]
    Server {
        /// The foreign trust domain.
        trust_domain: String,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// How the endpoint is authenticated.
#[derive(Debug)]
enum Profile {
    Web {
        roots: Option<Vec<rustls::pki_types::CertificateDer<'static>>>,
    },
    Spiffe {
        endpoint_id: SpiffeId,
        bootstrap: Option<X509Bundle>,
    },
}

/// One configured federation relationship, ready to fetch.
#[derive(Debug)]
pub struct Relationship {
    trust_domain: TrustDomain,
    url: String,
    profile: Profile,
}

/// What one successful fetch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refreshed {
    /// Whether the stored bundle changed.
    pub changed: bool,
    /// The fetched bundle's `spiffe_sequence`.
    pub sequence: Option<u64>,
    /// When to fetch again: the bundle's refresh hint, bounded.
    pub next: Duration,
}

impl Relationship {
    /// Reads one `[[federation.trust_domains]]` table (and its bootstrap or CA files).
    pub fn from_config(config: &FederatedTrustDomain) -> Result<Relationship, FederationError> {
        let bad = |message: String| FederationError::Config {
            trust_domain: config.trust_domain.clone(),
            message,
        };
        let trust_domain = TrustDomain::parse(&config.trust_domain).map_err(|e| bad(e.to_string()))?;
        let read =
            |path: &Path| std::fs::read_to_string(path).map_err(|e| bad(format!("reading {}: {e}", path.display())));
        let profile = match config.profile {
            BundleEndpointProfile::HttpsWeb => Profile::Web {
                roots: match &config.ca_bundle_path {
                    None => None,
                    Some(path) => Some(
                        X509Bundle::from_pem(trust_domain.clone(), &read(path)?)
                            .map_err(|e| bad(format!("{}: {e}", path.display())))?
                            .authorities()
                            .to_vec(),
                    ),
                },
            },
            BundleEndpointProfile::HttpsSpiffe => {
                let endpoint_id = config
                    .endpoint_spiffe_id
                    .as_deref()
                    .ok_or_else(|| bad("the https_spiffe profile needs endpoint_spiffe_id".into()))?;
                let endpoint_id = SpiffeId::parse(endpoint_id).map_err(|e| bad(e.to_string()))?;
                let bootstrap = match &config.bootstrap_bundle_path {
                    None => None,
                    Some(path) => Some(
                        parse_bootstrap(endpoint_id.trust_domain(), &read(path)?)
                            .map_err(|e| bad(format!("{}: {e}", path.display())))?,
                    ),
                };
                Profile::Spiffe { endpoint_id, bootstrap }
            }
        };
        Ok(Relationship {
            trust_domain,
            url: config.bundle_endpoint_url.clone(),
            profile,
        })
    }

    /// The foreign trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    fn fetch_err(&self, message: impl std::fmt::Display) -> FederationError {
        FederationError::Fetch {
            trust_domain: self.trust_domain.name().to_owned(),
            message: message.to_string(),
        }
    }

    fn server_err(&self, source: impl std::error::Error + Send + Sync + 'static) -> FederationError {
        FederationError::Server {
            trust_domain: self.trust_domain.name().to_owned(),
            source: Box::new(source),
        }
    }

    /// The HTTP client for one fetch (its TLS settings depend on the current bundles).
    async fn client(&self, state: &AppState) -> Result<reqwest::Client, FederationError> {
        let builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(Duration::from_secs(10));
        let builder = match &self.profile {
            Profile::Web { roots: None } => builder,
            Profile::Web { roots: Some(roots) } => {
                let mut store = rustls::RootCertStore::empty();
                for root in roots {
                    store.add(root.clone()).map_err(|e| self.fetch_err(e))?;
                }
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(lanyard_crypto::rustls_provider()))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| self.fetch_err(e))?
                    .with_root_certificates(store)
                    .with_no_client_auth();
                builder.use_preconfigured_tls(config)
            }
            Profile::Spiffe { endpoint_id, .. } => {
                let bundles = self.endpoint_bundles(state, endpoint_id).await?;
                let svid = crate::api::tls::server_svid(state)
                    .await
                    .map_err(|e| self.server_err(e))?;
                let source = Arc::new(SvidSource::new(&svid, bundles).map_err(|e| self.server_err(e))?);
                let config = lanyard_x509::client_config(source, Authorizer::Exact(endpoint_id.clone()))
                    .map_err(|e| self.fetch_err(e))?;
                builder.use_preconfigured_tls(config)
            }
        };
        builder.build().map_err(|e| self.fetch_err(e))
    }

    /// The bundle that authenticates an `https_spiffe` endpoint (see the module docs).
    async fn endpoint_bundles(
        &self,
        state: &AppState,
        endpoint_id: &SpiffeId,
    ) -> Result<X509BundleSet, FederationError> {
        let endpoint_td = endpoint_id.trust_domain();
        let bootstrap = match &self.profile {
            Profile::Spiffe { bootstrap, .. } => bootstrap.clone(),
            Profile::Web { .. } => None,
        };
        let bundle = if endpoint_td == state.trust_domain {
            let own = state.keys.bundle().await.map_err(|e| self.server_err(e))?;
            Some(X509Bundle::from_spiffe_bundle(&own).map_err(|e| self.server_err(e))?)
        } else {
            match state
                .stores
                .federated_bundles
                .get_federated_bundle(endpoint_td.name())
                .await
                .map_err(|e| self.server_err(e))?
            {
                Some((json, _)) => {
                    let parsed =
                        SpiffeBundle::parse(endpoint_td.clone(), json.as_bytes()).map_err(|e| self.server_err(e))?;
                    Some(X509Bundle::from_spiffe_bundle(&parsed).map_err(|e| self.server_err(e))?)
                }
                None => bootstrap,
            }
        };
        let bundle = bundle.ok_or_else(|| {
            self.fetch_err(format!(
                "no bundle of {} to authenticate the endpoint {endpoint_id} (configure bootstrap_bundle_path)",
                endpoint_td.name()
            ))
        })?;
        Ok(X509BundleSet::new().with(bundle))
    }

    /// GETs the bundle document (at most [`MAX_BUNDLE_BYTES`]).
    async fn fetch(&self, state: &AppState) -> Result<Vec<u8>, FederationError> {
        let client = self.client(state).await?;
        let mut response = client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| self.fetch_err(error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(self.fetch_err(format!("the endpoint answered {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.fetch_err(error_chain(&e)))? {
            if body.len() + chunk.len() > MAX_BUNDLE_BYTES {
                return Err(self.fetch_err(format!("the bundle is larger than {MAX_BUNDLE_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// An error and its sources on one line (reqwest hides the TLS reason in a source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A bootstrap bundle: PEM certificates, or a SPIFFE bundle document.
fn parse_bootstrap(trust_domain: TrustDomain, text: &str) -> Result<X509Bundle, String> {
    if text.trim_start().starts_with("-----BEGIN") {
        X509Bundle::from_pem(trust_domain, text).map_err(|e| e.to_string())
    } else {
        let bundle = SpiffeBundle::parse(trust_domain, text.as_bytes()).map_err(|e| e.to_string())?;
        X509Bundle::from_spiffe_bundle(&bundle).map_err(|e| e.to_string())
    }
}

/// The refresh interval for a bundle's hint (seconds), bounded.
pub fn refresh_interval(hint: Option<u64>) -> Duration {
    hint.map_or(DEFAULT_REFRESH, Duration::from_secs)
        .clamp(MIN_REFRESH, MAX_REFRESH)
}

/// Fetches, validates and (if it changed) stores one foreign bundle.
pub async fn refresh_once(state: &AppState, relationship: &Relationship) -> Result<Refreshed, FederationError> {
    let td = &relationship.trust_domain;
    let body = relationship.fetch(state).await?;
    let invalid = |source: Box<dyn std::error::Error + Send + Sync>| FederationError::InvalidBundle {
        trust_domain: td.name().to_owned(),
        source,
    };
    let bundle = SpiffeBundle::parse(td.clone(), &body).map_err(|e| invalid(e.into()))?;
    X509Bundle::from_spiffe_bundle(&bundle).map_err(|e| invalid(e.into()))?;
    let json = bundle.to_json();
    let stored = state
        .stores
        .federated_bundles
        .get_federated_bundle(td.name())
        .await
        .map_err(|e| relationship.server_err(e))?;
    let changed = match &stored {
        None => true,
        Some((old_json, _)) => {
            let old_sequence = SpiffeBundle::parse(td.clone(), old_json.as_bytes())
                .ok()
                .and_then(|b| b.sequence);
            match (old_sequence, bundle.sequence) {
                (None, None) => *old_json != json,
                (old, new) => old != new,
            }
        }
    };
    if changed {
        state
            .stores
            .federated_bundles
            .put_federated_bundle(td.name(), &json, state.clock.now())
            .await
            .map_err(|e| relationship.server_err(e))?;
        tracing::info!(trust_domain = td.name(), sequence = ?bundle.sequence, "federated bundle updated");
    }
    Ok(Refreshed {
        changed,
        sequence: bundle.sequence,
        next: refresh_interval(bundle.refresh_hint),
    })
}

/// Deletes the stored bundles of foreign trust domains that are not among `configured`
/// (removed from `[federation]`), so that agents, and through them workloads, stop
/// receiving them: the agent API's sync hub notices the change and pushes the remaining
/// bundles. Returns the trust domains whose bundles were deleted. Replicas sharing a
/// datastore must share the federation configuration, or each deletes the others' bundles.
pub async fn forget_unconfigured(
    state: &AppState,
    configured: &[Arc<Relationship>],
) -> Result<Vec<String>, crate::datastore::StoreError> {
    let mut forgotten = Vec::new();
    for stored in state.stores.federated_bundles.list_federated_bundles().await? {
        let kept = configured.iter().any(|r| r.trust_domain.name() == stored);
        if !kept && state.stores.federated_bundles.delete_federated_bundle(&stored).await? {
            tracing::info!(trust_domain = %stored, "no longer federated with: its stored bundle is deleted");
            forgotten.push(stored);
        }
    }
    Ok(forgotten)
}

/// Starts federation in `tasks`: one refresh task per relationship keeps that trust
/// domain's bundle current (the composition root has already run [`forget_unconfigured`]
/// before anything is served, so no agent sees a bundle of a dropped trust domain). Each ends when `stop`
/// completes (with `Ok`: these tasks never fail, they log and retry).
pub fn spawn<E: Send + 'static>(
    state: &AppState,
    relationships: Vec<Arc<Relationship>>,
    stop: &tokio::sync::watch::Receiver<bool>,
    tasks: &mut JoinSet<Result<(), E>>,
) {
    for relationship in relationships {
        let state = state.clone();
        let mut stop = stop.clone();
        tasks.spawn(async move {
            let mut failures: u32 = 0;
            let mut interval = DEFAULT_REFRESH;
            loop {
                let delay = match refresh_once(&state, &relationship).await {
                    Ok(done) => {
                        failures = 0;
                        interval = done.next;
                        done.next
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "federated bundle refresh failed; keeping the last good bundle");
                        let backoff = FIRST_RETRY.saturating_mul(2u32.saturating_pow(failures.min(16)));
                        failures = failures.saturating_add(1);
                        backoff.min(interval)
                    }
                };
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s) => return Ok(()),
                }
            }
        });
    }
}
