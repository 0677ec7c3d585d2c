//! The SPIFFE Workload API served to workloads (SPIFFE_Workload_API.md, with the WIT-SVID
//! RPCs of the current proto).
//!
//! Every call must carry the `workload.spiffe.io: true` metadata (else `InvalidArgument`).
//! The caller is attested from the socket's peer credentials; a caller that matches no
//! entry gets `PermissionDenied`. Streams send the caller's full state at once and again
//! whenever it changes; bundle maps are keyed `spiffe://<trust domain>`.
//!
//! The same service also serves Lanyard's SD-CWT extension (`lanyard.spice.v1.SdCwt`,
//! submodule `sdcwt`) on the same socket, with the same header and attestation.
//!
//! Every refusal is a [`WorkloadApiError`]; its gRPC status is chosen in one place
//! (`From<WorkloadApiError> for tonic::Status` in `error.rs`), never here.

mod sdcwt;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use lanyard_api::agent::v1 as pb;
use lanyard_api::workload as wl;
use lanyard_api::workload::spiffe_workload_api_server::SpiffeWorkloadApi;
use lanyard_core::{JwtSvidPolicy, JwtSvidVerifier};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::attestor::workload::{self as attestor, PeerCredentials, Selector, WorkloadAttestor};
use crate::endpoints::connection::WorkloadPeer;
use crate::endpoints::mint_budget::MintBudget;
use crate::error::WorkloadApiError;
use crate::manager::Manager;
use crate::state::{BundleView, Snapshot};

/// The metadata key every Workload API request must carry, with the value `true`.
pub const SECURITY_HEADER: &str = "workload.spiffe.io";

type Streamed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The Workload API service.
#[derive(Clone, Debug)]
pub struct WorkloadApi {
    manager: Arc<Manager>,
    attestors: Arc<Vec<Box<dyn WorkloadAttestor>>>,
    first_svid_timeout: Duration,
    budget: Arc<MintBudget>,
}

impl WorkloadApi {
    /// The service over `manager`'s state, attesting callers with `attestors`; the
    /// credentials the server mints for them on demand are limited by `budget`.
    pub fn new(
        manager: Arc<Manager>,
        attestors: Vec<Box<dyn WorkloadAttestor>>,
        first_svid_timeout: Duration,
        budget: MintBudget,
    ) -> WorkloadApi {
        WorkloadApi {
            manager,
            attestors: Arc::new(attestors),
            first_svid_timeout,
            budget: Arc::new(budget),
        }
    }

    /// Draws `n` server mints from `caller`'s budget.
    fn spend(&self, caller: &Caller, n: usize) -> Result<(), WorkloadApiError> {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.budget
            .take(caller.uid, n, std::time::Instant::now())
            .map_err(|retry_after| {
                tracing::info!(uid = caller.uid, "refusing new credentials over the uid's mint budget");
                WorkloadApiError::RateLimited { retry_after }
            })
    }

    /// Checks the security header and attests the caller.
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, WorkloadApiError> {
        let header = request.metadata().get(SECURITY_HEADER).and_then(|v| v.to_str().ok());
        if header != Some("true") {
            return Err(WorkloadApiError::MissingSecurityHeader);
        }
        let connection = request.extensions().get::<WorkloadPeer>();
        let cred = connection
            .and_then(|c| c.uds.peer_cred)
            .ok_or(WorkloadApiError::NoPeerCredentials)?;
        let peer = PeerCredentials {
            pid: cred.pid().unwrap_or(0),
            uid: cred.uid(),
            gid: cred.gid(),
            process: connection.map(|c| c.process.clone()).unwrap_or_default(),
        };
        // Inline, not on a blocking thread: attestation reads a few small /proc and /etc
        // files (the thread handoff would cost more). Only the slow step, hashing an
        // executable not seen before, moves to a blocking thread.
        let selectors = match attestor::attest_all(&self.attestors, &peer, false) {
            Err(attestor::AttestError::WouldBlock) => {
                let (attestors, peer) = (Arc::clone(&self.attestors), peer.clone());
                tokio::task::spawn_blocking(move || attestor::attest_all(&attestors, &peer, true))
                    .await
                    .map_err(WorkloadApiError::AttestationTask)?
            }
            done => done,
        }
        .map_err(|e| {
            tracing::info!(pid = peer.pid, error = %e, "workload attestation failed");
            WorkloadApiError::Attestation(e)
        })?;
        Ok(Caller {
            pid: peer.pid,
            uid: peer.uid,
            selectors,
        })
    }

    /// Attests the caller of `request`, refuses one that matches no entry, and streams
    /// `build` for it (see [`WorkloadApi::stream`]).
    async fn watch<R, T, F>(&self, request: &Request<R>, build: F) -> Result<Response<Streamed<T>>, Status>
    where
        R: Sync,
        T: Clone + PartialEq + Send + 'static,
        F: FnMut(&Snapshot, &Caller) -> Result<Option<T>, WorkloadApiError> + Send + 'static,
    {
        let caller = self.caller(request).await?;
        caller.identities(&self.manager.store().current())?;
        Ok(Response::new(self.stream(caller, build)))
    }

    /// Streams `build(snapshot)` now and on every change of what it returns.
    ///
    /// `build` returns `Ok(Some(_))` to send, `Ok(None)` when the caller's credentials
    /// are not minted yet (wait, at most `first_svid_timeout` for the first message), or
    /// an error that ends the stream (e.g. the caller no longer matches any entry).
    fn stream<T, F>(&self, caller: Caller, mut build: F) -> Streamed<T>
    where
        T: Clone + PartialEq + Send + 'static,
        F: FnMut(&Snapshot, &Caller) -> Result<Option<T>, WorkloadApiError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(4);
        let mut changes = self.manager.store().subscribe();
        let first_timeout = self.first_svid_timeout;
        tokio::spawn(async move {
            let mut last: Option<T> = None;
            let started = tokio::time::Instant::now();
            loop {
                let snapshot = changes.borrow_and_update().clone();
                match build(&snapshot, &caller) {
                    Ok(Some(message)) => {
                        if last.as_ref() != Some(&message) {
                            if tx.send(Ok(message.clone())).await.is_err() {
                                return;
                            }
                            last = Some(message);
                        }
                    }
                    Ok(None) if last.is_none() && started.elapsed() >= first_timeout => {
                        let _ = tx.send(Err(WorkloadApiError::NotReady.into())).await;
                        return;
                    }
                    Ok(None) => {}
                    Err(refused) => {
                        tracing::info!(pid = caller.pid, reason = %refused, "closing a Workload API stream");
                        let _ = tx.send(Err(refused.into())).await;
                        return;
                    }
                }
                let deadline = if last.is_none() {
                    first_timeout.saturating_sub(started.elapsed())
                } else {
                    Duration::from_secs(3600)
                };
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    () = tx.closed() => return,
                    () = tokio::time::sleep(deadline) => {}
                }
            }
        });
        Box::pin(ReceiverStream::new(rx))
    }
}

/// An attested caller.
#[derive(Clone, Debug)]
struct Caller {
    pid: i32,
    uid: u32,
    selectors: BTreeSet<Selector>,
}

impl Caller {
    /// The entries this caller matches, ordered by identity then entry id (the first is
    /// the default SVID).
    fn entries<'s>(&self, snapshot: &'s Snapshot) -> Vec<&'s Arc<pb::Entry>> {
        // Candidates share at least one selector with the caller (the snapshot's index);
        // each is then checked in full.
        let mut candidates: Vec<&str> = self
            .selectors
            .iter()
            .filter_map(|s| snapshot.by_selector.get(&s.to_string()))
            .flatten()
            .map(String::as_str)
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let mut matched: Vec<&Arc<pb::Entry>> = candidates
            .into_iter()
            .filter_map(|id| snapshot.entries.get(id))
            .filter(|e| {
                attestor::entry_matches(
                    e.selectors.iter().map(|s| (s.r#type.as_str(), s.value.as_str())),
                    &self.selectors,
                )
            })
            .collect();
        matched.sort_by(|a, b| (&a.spiffe_id, &a.id).cmp(&(&b.spiffe_id, &b.id)));
        matched
    }

    /// The matched entries, or `PermissionDenied` if there are none.
    fn identities<'s>(&self, snapshot: &'s Snapshot) -> Result<Vec<&'s Arc<pb::Entry>>, WorkloadApiError> {
        let entries = self.entries(snapshot);
        if entries.is_empty() {
            return Err(WorkloadApiError::NoIdentity);
        }
        Ok(entries)
    }
}

/// The federated trust domains (`spiffe://...`) of `entries` that the agent has bundles for.
fn federated_of<'s>(snapshot: &'s Snapshot, entries: &[&Arc<pb::Entry>]) -> BTreeMap<&'s str, &'s BundleView> {
    let mut out = BTreeMap::new();
    for entry in entries {
        for td in &entry.federates_with {
            if let Some((key, view)) = snapshot.federated.get_key_value(td) {
                out.insert(key.as_str(), view.as_ref());
            }
        }
    }
    out
}

fn x509_response(snapshot: &Snapshot, caller: &Caller) -> Result<Option<wl::X509svidResponse>, WorkloadApiError> {
    let entries = caller.identities(snapshot)?;
    let Some(own) = &snapshot.bundle else {
        return Ok(None);
    };
    let now = lanyard_core::Clock::now(&lanyard_core::SystemClock);
    let svids: Vec<wl::X509svid> = entries
        .iter()
        .filter_map(|e| {
            let held = snapshot.svids.get(&e.id).filter(|h| h.expires_at > now)?;
            Some(wl::X509svid {
                spiffe_id: held.spiffe_id.clone(),
                x509_svid: held.chain.concat(),
                x509_svid_key: held.key_pkcs8.clone(),
                bundle: own.x509_der.clone(),
                hint: e.hint.clone(),
            })
        })
        .collect();
    if svids.is_empty() {
        return Ok(None);
    }
    Ok(Some(wl::X509svidResponse {
        svids,
        crl: Vec::new(),
        federated_bundles: federated_of(snapshot, &entries)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.x509_der.clone()))
            .collect(),
    }))
}

/// The caller's bundles, keyed `spiffe://<trust domain>`: its own trust domain's and those
/// its entries federate with, each as `pick` encodes it; `None` until the agent has its
/// own bundle.
fn bundles_of<V>(
    snapshot: &Snapshot,
    caller: &Caller,
    pick: impl Fn(&BundleView) -> V,
) -> Result<Option<HashMap<String, V>>, WorkloadApiError> {
    let entries = caller.identities(snapshot)?;
    let Some(own) = &snapshot.bundle else {
        return Ok(None);
    };
    let mut bundles: HashMap<String, V> = federated_of(snapshot, &entries)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), pick(v)))
        .collect();
    bundles.insert(own.key.clone(), pick(own));
    Ok(Some(bundles))
}

fn x509_bundles(snapshot: &Snapshot, caller: &Caller) -> Result<Option<wl::X509BundlesResponse>, WorkloadApiError> {
    let bundles = bundles_of(snapshot, caller, |b| b.x509_der.clone())?;
    Ok(bundles.map(|bundles| wl::X509BundlesResponse {
        crl: Vec::new(),
        bundles,
    }))
}

fn jwt_bundles(snapshot: &Snapshot, caller: &Caller) -> Result<Option<wl::JwtBundlesResponse>, WorkloadApiError> {
    let bundles = bundles_of(snapshot, caller, |b| b.jwt_jwks.clone())?;
    Ok(bundles.map(|bundles| wl::JwtBundlesResponse { bundles }))
}

fn wit_bundles(snapshot: &Snapshot, caller: &Caller) -> Result<Option<wl::WitBundlesResponse>, WorkloadApiError> {
    let bundles = bundles_of(snapshot, caller, |b| b.wit_jwks.clone())?;
    Ok(bundles.map(|bundles| wl::WitBundlesResponse { bundles }))
}

/// The entries of `caller` with identity `wanted` (all when empty); `PermissionDenied` if
/// the caller is not entitled to it.
fn select(snapshot: &Snapshot, caller: &Caller, wanted: &str) -> Result<Vec<Arc<pb::Entry>>, WorkloadApiError> {
    let entries = caller.identities(snapshot)?;
    if wanted.is_empty() {
        return Ok(entries.into_iter().cloned().collect());
    }
    let chosen: Vec<Arc<pb::Entry>> = entries.into_iter().filter(|e| e.spiffe_id == wanted).cloned().collect();
    if chosen.is_empty() {
        return Err(WorkloadApiError::NotEntitled(wanted.to_owned()));
    }
    Ok(chosen)
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for WorkloadApi {
    type FetchX509SVIDStream = Streamed<wl::X509svidResponse>;
    type FetchX509BundlesStream = Streamed<wl::X509BundlesResponse>;
    type FetchJWTBundlesStream = Streamed<wl::JwtBundlesResponse>;
    type FetchWITSVIDStream = Streamed<wl::WitsvidResponse>;
    type FetchWITBundlesStream = Streamed<wl::WitBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        request: Request<wl::X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        self.watch(&request, x509_response).await
    }

    async fn fetch_x509_bundles(
        &self,
        request: Request<wl::X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        self.watch(&request, x509_bundles).await
    }

    async fn fetch_jwtsvid(
        &self,
        request: Request<wl::JwtsvidRequest>,
    ) -> Result<Response<wl::JwtsvidResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        if request.audience.iter().all(String::is_empty) {
            return Err(WorkloadApiError::InvalidRequest("audience must be specified").into());
        }
        let audience: Vec<String> = request.audience.into_iter().filter(|a| !a.is_empty()).collect();
        // Bounded before anything is minted (or attested further).
        lanyard_core::spiffe::check_audiences(&audience).map_err(WorkloadApiError::InvalidAudience)?;
        let snapshot = self.manager.store().current();
        let entries = select(&snapshot, &caller, &request.spiffe_id)?;
        let mut svids = Vec::new();
        let mut seen = BTreeSet::new();
        for entry in entries.iter().filter(|e| e.spiffe_id.starts_with("spiffe://")) {
            if !seen.insert(entry.spiffe_id.clone()) {
                continue;
            }
            let token = self
                .manager
                .jwt_svid(entry, &audience, || self.spend(&caller, 1))
                .await?;
            svids.push(wl::Jwtsvid {
                spiffe_id: entry.spiffe_id.clone(),
                svid: token,
                hint: entry.hint.clone(),
            });
        }
        if svids.is_empty() {
            return Err(WorkloadApiError::NoJwtIdentity.into());
        }
        Ok(Response::new(wl::JwtsvidResponse { svids }))
    }

    async fn fetch_jwt_bundles(
        &self,
        request: Request<wl::JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        self.watch(&request, jwt_bundles).await
    }

    async fn validate_jwtsvid(
        &self,
        request: Request<wl::ValidateJwtsvidRequest>,
    ) -> Result<Response<wl::ValidateJwtsvidResponse>, Status> {
        self.caller(&request).await?;
        let request = request.into_inner();
        if request.audience.is_empty() {
            return Err(WorkloadApiError::InvalidRequest("audience must be specified").into());
        }
        if request.svid.is_empty() {
            return Err(WorkloadApiError::InvalidRequest("svid must be specified").into());
        }
        let verifier = JwtSvidVerifier::new(Arc::clone(self.manager.trust()), JwtSvidPolicy::default());
        let verified = verifier
            .verify(&request.svid, &request.audience, self.manager.now())
            .map_err(WorkloadApiError::InvalidJwtSvid)?;
        Ok(Response::new(wl::ValidateJwtsvidResponse {
            spiffe_id: verified.sub.to_string(),
            claims: Some(to_struct(verified.claims)),
        }))
    }

    async fn fetch_witsvid(
        &self,
        request: Request<wl::WitsvidRequest>,
    ) -> Result<Response<Self::FetchWITSVIDStream>, Status> {
        let caller = self.caller(&request).await?;
        let wanted = request.into_inner().spiffe_id;
        let snapshot = self.manager.store().current();
        let ids: Vec<String> = select(&snapshot, &caller, &wanted)?
            .iter()
            .map(|e| e.id.clone())
            .collect();
        self.spend(&caller, self.manager.wits_to_mint(&ids))?;
        self.manager.ensure_wits(&ids).await.map_err(|e| {
            tracing::warn!(error = %e, "minting a WIT-SVID failed");
            WorkloadApiError::from_mint("WIT-SVID", e)
        })?;
        let manager = Arc::clone(&self.manager);
        Ok(Response::new(self.stream(caller, move |snapshot, caller| {
            let entries = select(snapshot, caller, &wanted)?;
            let svids: Vec<wl::Witsvid> = entries
                .iter()
                .filter_map(|e| {
                    let now = lanyard_core::Clock::now(&lanyard_core::SystemClock);
                    let held = snapshot.wits.get(&e.id).filter(|h| h.expires_at > now)?;
                    Some(wl::Witsvid {
                        spiffe_id: e.spiffe_id.clone(),
                        wit_svid: held.token.clone(),
                        wit_svid_key: held.private_jwk.clone(),
                        hint: e.hint.clone(),
                    })
                })
                .collect();
            if svids.len() < entries.len() {
                // A new entry matched after the stream opened: have its WIT minted.
                let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
                let manager = Arc::clone(&manager);
                tokio::spawn(async move {
                    if let Err(e) = manager.ensure_wits(&ids).await {
                        tracing::warn!(error = %e, "minting a WIT-SVID failed");
                    }
                });
            }
            Ok((!svids.is_empty()).then_some(wl::WitsvidResponse { svids }))
        })))
    }

    async fn fetch_wit_bundles(
        &self,
        request: Request<wl::WitBundlesRequest>,
    ) -> Result<Response<Self::FetchWITBundlesStream>, Status> {
        self.watch(&request, wit_bundles).await
    }
}

/// JSON claims as a `google.protobuf.Struct`.
fn to_struct(claims: serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: claims.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
    }
}

fn to_value(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(to_value).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}
