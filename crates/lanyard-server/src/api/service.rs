//! The `AgentApi` RPCs: node attestation, agent SVID renewal, entry sync, and SVID / token
//! signing for the entries authorized for the calling agent.
//!
//! An entry is authorized for an agent when its `parent_id` is the agent's SPIFFE ID (node
//! aliases are not implemented yet). Every attestation attempt and every renewal is written
//! as an audit event (`target: "audit"`), with the join token's ID (the first 16 hex digits
//! of its SHA-256), never the token.

use std::collections::{BTreeMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine;
use lanyard_api::agent::v1 as pb;
use lanyard_api::agent::v1::agent_api_server::AgentApi;
use lanyard_api::node;
use lanyard_core::{Jwk, SpiffeBundle, SpiffeId, TrustDomain, UnixTime};
use lanyard_x509::{Usage, VerifiedSvid, VerifyOptions, X509Bundle, X509BundleSet, X509Svid, verify_svid_chain};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::api::PeerIdentity;
use crate::api::status::{AgentApiError, MAX_BATCH, NOT_AUTHORIZED};
use crate::api::sync::Hub;
use crate::datastore::{EntryFilter, TokenUse};
use crate::error::ServerError;
use crate::issue;
use crate::model::{Agent, Entry, Selector};
use crate::state::AppState;
use crate::x509pop::{self, X509Pop, X509PopError};

/// The stream type of `SyncEntries`.
pub type SyncStream = Pin<Box<dyn Stream<Item = Result<pb::SyncEntriesResponse, Status>> + Send + 'static>>;

/// The `AgentApi` implementation.
#[derive(Debug)]
pub struct AgentService {
    state: AppState,
    hub: Hub,
    x509pop: Option<Arc<X509Pop>>,
}

impl AgentService {
    /// A service over `state`, with `hub` feeding its `SyncEntries` streams; x509pop node
    /// attestation is enabled when `x509pop` is given.
    pub fn new(state: AppState, hub: Hub, x509pop: Option<Arc<X509Pop>>) -> AgentService {
        AgentService { state, hub, x509pop }
    }
}

fn audit(action: &'static str, outcome: &str, subject: &str, peer: Option<&PeerIdentity>) {
    let remote = peer
        .and_then(|p| p.remote_addr)
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(target: "audit", action, outcome, subject, remote, "agent API");
}

/// The agent ID a join token attests (`lanyard_api::node`) and the token's ID for logs.
fn join_token_agent_id(td: &TrustDomain, token: &str) -> Result<(SpiffeId, String), ServerError> {
    let crypto = lanyard_crypto::provider();
    let id = node::join_token_agent_id(td, token, &*crypto)?;
    Ok((id, node::join_token_id(token, &*crypto)))
}

/// SHA-256 hex of a join token, as the admin API stores it.
fn token_hash(token: &str) -> String {
    node::join_token_hash(token, &*lanyard_crypto::provider())
}

fn secs(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

fn ttl32(ttl: u64) -> u32 {
    u32::try_from(ttl).unwrap_or(u32::MAX)
}

fn nonzero(ttl: u64) -> Option<u64> {
    (ttl > 0).then_some(ttl)
}

/// `spiffe://<name>` for a trust domain given in either form.
fn trust_domain_key(td: &str) -> String {
    TrustDomain::parse(td).map_or_else(|_| td.to_owned(), |t| format!("spiffe://{}", t.name()))
}

/// A bundle on the wire.
pub(crate) fn wire_bundle(bundle: &SpiffeBundle) -> pb::Bundle {
    pb::Bundle {
        trust_domain: format!("spiffe://{}", bundle.trust_domain.name()),
        json: bundle.to_json().into_bytes(),
        sequence: bundle.sequence.unwrap_or(0),
    }
}

/// An entry on the wire. `revision` is the entry's own revision unless the caller knows
/// the server-wide one.
pub(crate) fn wire_entry(entry: &Entry, revision: Option<u64>) -> pb::Entry {
    pb::Entry {
        id: entry.id.clone(),
        spiffe_id: entry.spiffe_id.as_str().to_owned(),
        parent_id: entry.parent_id.as_str().to_owned(),
        selectors: entry
            .selectors
            .iter()
            .map(|s| pb::Selector {
                r#type: s.kind.clone(),
                value: s.value.clone(),
            })
            .collect(),
        x509_svid_ttl: ttl32(entry.x509_svid_ttl),
        jwt_svid_ttl: ttl32(entry.jwt_svid_ttl),
        wit_svid_ttl: ttl32(entry.wit_ttl),
        dns_names: entry.dns_names.clone(),
        federates_with: entry.federates_with.iter().map(|t| trust_domain_key(t)).collect(),
        hint: String::new(),
        revision: revision.unwrap_or(entry.revision),
    }
}

fn wire_svid(svid: &X509Svid, id: &SpiffeId) -> Result<pb::X509Svid, ServerError> {
    let expires_at = svid.not_after().map_err(|source| ServerError::X509 {
        context: "reading the issued SVID",
        source,
    })?;
    Ok(pb::X509Svid {
        spiffe_id: id.as_str().to_owned(),
        cert_chain: svid.chain.iter().map(|c| c.to_vec()).collect(),
        expires_at: secs(expires_at),
    })
}

/// The entries authorized for `agent`.
pub(crate) async fn authorized_entries(state: &AppState, agent: &SpiffeId) -> Result<Vec<Entry>, AgentApiError> {
    let filter = EntryFilter {
        parent_id: Some(agent.clone()),
        spiffe_id: None,
    };
    Ok(state.store.list_entries(&filter).await?)
}

/// The own bundle plus the federated bundles the agent's entries need.
pub(crate) async fn agent_bundles(state: &AppState, agent: &SpiffeId) -> Result<pb::Bundles, AgentApiError> {
    let own = state.keys.bundle().await.map_err(ServerError::from)?;
    let wanted: HashSet<String> = authorized_entries(state, agent)
        .await?
        .iter()
        .flat_map(|e| e.federates_with.iter().map(|t| trust_domain_key(t)))
        .collect();
    let mut federated = BTreeMap::new();
    for key in wanted {
        let name = key.trim_start_matches("spiffe://");
        if name == state.trust_domain.name() {
            continue;
        }
        let Some((json, _fetched_at)) = state.store.get_federated_bundle(name).await? else {
            continue;
        };
        let sequence = serde_json::from_str::<serde_json::Value>(&json)
            .ok()
            .and_then(|v| v.get("spiffe_sequence").and_then(serde_json::Value::as_u64))
            .unwrap_or(0);
        federated.insert(
            key.clone(),
            pb::Bundle {
                trust_domain: key,
                json: json.into_bytes(),
                sequence,
            },
        );
    }
    Ok(pb::Bundles {
        bundle: Some(wire_bundle(&own)),
        federated_bundles: federated.into_iter().collect(),
    })
}

/// `iat` and `exp` of a JWS compact token the server just minted.
fn token_times(token: &str) -> (i64, i64) {
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let get = |name: &str| {
        claims
            .as_ref()
            .and_then(|c| c.get(name))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0)
    };
    (get("iat"), get("exp"))
}

impl AgentService {
    /// The calling agent: a verified agent SVID, not expired, of a known, non-banned agent.
    async fn authenticate<T>(&self, request: &Request<T>) -> Result<Agent, AgentApiError> {
        let svid = request
            .extensions()
            .get::<PeerIdentity>()
            .and_then(|p| p.svid.as_ref())
            .ok_or(AgentApiError::NoAgentSvid)?;
        self.check_agent(svid).await
    }

    async fn check_agent(&self, svid: &VerifiedSvid) -> Result<Agent, AgentApiError> {
        if self.state.clock.now() >= svid.not_after {
            return Err(AgentApiError::AgentSvidExpired);
        }
        if !node::is_agent_id(&svid.spiffe_id) {
            return Err(AgentApiError::NotAnAgent(svid.spiffe_id.clone()));
        }
        match self.state.store.get_agent(&svid.spiffe_id).await? {
            None => Err(AgentApiError::UnknownAgent(svid.spiffe_id.clone())),
            Some(agent) if agent.banned => Err(AgentApiError::AgentBanned(svid.spiffe_id.clone())),
            // The current SVID. Its first use ends the grace of the one it replaced.
            Some(agent) if agent.svid_serial == svid.serial => {
                if agent.previous_svid_serial.is_empty() {
                    return Ok(agent);
                }
                self.state
                    .store
                    .clear_previous_svid_serial(&agent.id, &svid.serial)
                    .await?;
                Ok(Agent {
                    previous_svid_serial: String::new(),
                    ..agent
                })
            }
            // The SVID the last renewal replaced, until the new one has been used.
            Some(agent) if !agent.previous_svid_serial.is_empty() && agent.previous_svid_serial == svid.serial => {
                Ok(agent)
            }
            Some(_) => Err(AgentApiError::SupersededSvid(svid.spiffe_id.clone())),
        }
    }

    /// The entry `id` if it is authorized for `agent`.
    async fn authorized_entry(&self, agent: &SpiffeId, id: &str) -> Result<Option<Entry>, AgentApiError> {
        let entry = self.state.store.get_entry(id).await?;
        Ok(entry.filter(|e| e.parent_id == *agent))
    }

    /// Signs an X.509-SVID for `id` from `csr`; returns it with its verified details.
    async fn sign(
        &self,
        id: &SpiffeId,
        csr: &[u8],
        dns_names: &[String],
        ttl: Option<u64>,
    ) -> Result<X509Svid, ServerError> {
        if csr.is_empty() {
            return Err(ServerError::Invalid("csr is required".into()));
        }
        let pem = issue::sign_x509_svid(&self.state, id, csr, dns_names, ttl).await?;
        X509Svid::from_pem(&pem, None).map_err(|source| ServerError::X509 {
            context: "reading the issued SVID",
            source,
        })
    }

    /// The agent credentials for a freshly signed agent SVID, and the agent record to store.
    async fn credentials(
        &self,
        svid: &X509Svid,
        id: &SpiffeId,
    ) -> Result<(pb::AgentCredentials, VerifiedSvid), ServerError> {
        let bundle = self.state.keys.bundle().await?;
        let x509 = X509Bundle::from_spiffe_bundle(&bundle).map_err(|source| ServerError::X509 {
            context: "reading the trust bundle",
            source,
        })?;
        let verified = verify_svid_chain(
            &svid.chain,
            &X509BundleSet::new().with(x509),
            self.state.clock.now(),
            &VerifyOptions::for_usage(Usage::ClientAuth),
        )
        .map_err(|source| ServerError::X509 {
            context: "the new agent SVID does not verify",
            source,
        })?;
        let credentials = pb::AgentCredentials {
            svid: Some(wire_svid(svid, id)?),
            bundle: Some(wire_bundle(&bundle)),
        };
        Ok((credentials, verified))
    }

    async fn attest_join_token(
        &self,
        token: &str,
        csr: &[u8],
        peer: Option<&PeerIdentity>,
    ) -> Result<pb::AgentCredentials, AgentApiError> {
        const ACTION: &str = "agent.attest.join_token";
        if token.is_empty() {
            audit(ACTION, "invalid_request", "", peer);
            return Err(AgentApiError::NoJoinToken);
        }
        let (agent_id, token_id) = join_token_agent_id(&self.state.trust_domain, token)?;
        // Sign first, so that a bad CSR does not use the token up; the SVID is handed out
        // only once the token has been consumed.
        let svid = match self.sign(&agent_id, csr, &[], None).await {
            Ok(svid) => svid,
            Err(e) => {
                audit(ACTION, e.kind(), &token_id, peer);
                return Err(e.into());
            }
        };
        let now = self.state.clock.now();
        let token_use = self.state.store.consume_join_token(&token_hash(token), now).await?;
        match token_use {
            TokenUse::Consumed => {}
            TokenUse::Expired => {
                audit(ACTION, "token_expired", &token_id, peer);
                return Err(AgentApiError::JoinTokenExpired);
            }
            TokenUse::Unknown => {
                audit(ACTION, "token_unknown", &token_id, peer);
                return Err(AgentApiError::JoinTokenUnknown);
            }
        }
        self.complete_attestation(ACTION, "join_token", &agent_id, &svid, Vec::new(), peer)
            .await
    }

    /// The end of every attestation method: the credentials for the freshly signed agent
    /// SVID, the agent record (created, or updated on re-attestation; a ban is never
    /// lifted), and the audit line.
    async fn complete_attestation(
        &self,
        action: &'static str,
        attestation_type: &str,
        agent_id: &SpiffeId,
        svid: &X509Svid,
        selectors: Vec<Selector>,
        peer: Option<&PeerIdentity>,
    ) -> Result<pb::AgentCredentials, AgentApiError> {
        let (credentials, verified) = match self.credentials(svid, agent_id).await {
            Ok(done) => done,
            Err(e) => {
                audit(action, e.kind(), agent_id.as_str(), peer);
                return Err(e.into());
            }
        };
        let agent = Agent {
            id: agent_id.clone(),
            attestation_type: attestation_type.into(),
            svid_serial: verified.serial,
            previous_svid_serial: String::new(),
            svid_expires_at: verified.not_after,
            selectors,
            banned: false,
            created_at: self.state.clock.now(),
        };
        self.state.store.upsert_agent(&agent).await?;
        audit(action, "ok", agent_id.as_str(), peer);
        Ok(credentials)
    }

    /// x509pop, either step: a challenge (no `challenge_response`) or the credentials.
    async fn attest_x509pop(
        &self,
        evidence: &pb::X509PopAttestation,
        csr: &[u8],
        peer: Option<&PeerIdentity>,
    ) -> Result<pb::attest_agent_response::Step, AgentApiError> {
        const ACTION: &str = "agent.attest.x509pop";
        let fail = |e: X509PopError, subject: &str| {
            audit(ACTION, e.kind(), subject, peer);
            AgentApiError::X509Pop(e)
        };
        let Some(x509pop) = &self.x509pop else {
            return Err(fail(X509PopError::Disabled, ""));
        };
        let now = self.state.clock.now();
        let node = x509pop
            .verify_chain(&evidence.cert_chain, now)
            .map_err(|e| fail(e, ""))?;
        // verify_chain refused an empty chain.
        let leaf = evidence.cert_chain.first().map(Vec::as_slice).unwrap_or_default();
        let agent_id = x509pop::agent_id(&self.state.trust_domain, leaf).map_err(|e| fail(e, ""))?;
        let subject = agent_id.as_str();
        let Some(response) = &evidence.challenge_response else {
            let challenge = x509pop.challenge(leaf, now).map_err(|e| fail(e, subject))?;
            audit(ACTION, "challenged", subject, peer);
            return Ok(pb::attest_agent_response::Step::Challenge(challenge));
        };
        if csr.is_empty() {
            return Err(fail(X509PopError::Invalid("csr is required in step 2".into()), subject));
        }
        x509pop
            .check_response(leaf, response, csr, now)
            .map_err(|e| fail(e, subject))?;
        let known = self.state.store.get_agent(&agent_id).await?;
        if known.is_some_and(|a| a.banned) {
            return Err(fail(X509PopError::Banned(subject.to_owned()), subject));
        }
        let svid = match self.sign(&agent_id, csr, &[], None).await {
            Ok(svid) => svid,
            Err(e) => {
                audit(ACTION, e.kind(), subject, peer);
                return Err(e.into());
            }
        };
        let credentials = self
            .complete_attestation(
                ACTION,
                x509pop::ATTESTATION_TYPE,
                &agent_id,
                &svid,
                x509pop::selectors(leaf, &node),
                peer,
            )
            .await?;
        Ok(pb::attest_agent_response::Step::Credentials(credentials))
    }

    /// `AttestAgent`.
    async fn attest(&self, request: Request<pb::AttestAgentRequest>) -> Result<pb::AttestAgentResponse, AgentApiError> {
        let peer = request.extensions().get::<PeerIdentity>().cloned();
        let request = request.into_inner();
        let step = match request.attestation {
            Some(pb::attest_agent_request::Attestation::JoinToken(jt)) => pb::attest_agent_response::Step::Credentials(
                self.attest_join_token(&jt.token, &request.csr, peer.as_ref()).await?,
            ),
            Some(pb::attest_agent_request::Attestation::X509pop(evidence)) => {
                self.attest_x509pop(&evidence, &request.csr, peer.as_ref()).await?
            }
            None => {
                audit("agent.attest", "invalid_request", "", peer.as_ref());
                return Err(AgentApiError::NoAttestationMethod);
            }
        };
        Ok(pb::AttestAgentResponse { step: Some(step) })
    }

    /// `RenewAgent`.
    async fn renew(&self, request: Request<pb::RenewAgentRequest>) -> Result<pb::RenewAgentResponse, AgentApiError> {
        let peer = request.extensions().get::<PeerIdentity>().cloned();
        let agent = match self.authenticate(&request).await {
            Ok(agent) => agent,
            Err(e) => {
                let subject = peer
                    .as_ref()
                    .and_then(|p| p.svid.as_ref())
                    .map(|s| s.spiffe_id.to_string())
                    .unwrap_or_default();
                audit("agent.renew", &format!("{:?}", e.code()), &subject, peer.as_ref());
                return Err(e);
            }
        };
        let svid = self.sign(&agent.id, &request.get_ref().csr, &[], None).await?;
        let (credentials, verified) = self.credentials(&svid, &agent.id).await?;
        // The SVID this call came with keeps its grace (it may itself be the previous one,
        // if an earlier renewal's response was lost).
        let presented = request
            .extensions()
            .get::<PeerIdentity>()
            .and_then(|p| p.svid.as_ref())
            .map_or_else(|| agent.svid_serial.clone(), |s| s.serial.clone());
        let renewed = Agent {
            previous_svid_serial: presented,
            svid_serial: verified.serial,
            svid_expires_at: verified.not_after,
            ..agent
        };
        self.state.store.upsert_agent(&renewed).await?;
        audit("agent.renew", "ok", renewed.id.as_str(), peer.as_ref());
        Ok(pb::RenewAgentResponse {
            credentials: Some(credentials),
        })
    }

    /// `BatchNewX509Svid`.
    async fn sign_batch(
        &self,
        request: Request<pb::BatchNewX509SvidRequest>,
    ) -> Result<pb::BatchNewX509SvidResponse, AgentApiError> {
        let agent = self.authenticate(&request).await?;
        let params = request.into_inner().params;
        if params.len() > MAX_BATCH {
            return Err(AgentApiError::BatchTooLarge);
        }
        let mut seen = HashSet::new();
        let mut results = Vec::with_capacity(params.len());
        for item in params {
            let result = if seen.insert(item.entry_id.clone()) {
                self.sign_for_entry(&agent.id, &item.entry_id, &item.csr).await?
            } else {
                Err("duplicate entry id in this request".to_owned())
            };
            results.push(pb::X509SvidResult {
                entry_id: item.entry_id,
                result: Some(match result {
                    Ok(svid) => pb::x509_svid_result::Result::Svid(svid),
                    Err(message) => pb::x509_svid_result::Result::Error(message),
                }),
            });
        }
        Ok(pb::BatchNewX509SvidResponse { results })
    }

    /// One `BatchNewX509Svid` item: `Ok(Err(message))` is an item error, `Err` fails the
    /// whole call (the datastore or CA is unavailable).
    async fn sign_for_entry(
        &self,
        agent: &SpiffeId,
        entry_id: &str,
        csr: &[u8],
    ) -> Result<Result<pb::X509Svid, String>, AgentApiError> {
        let Some(entry) = self.authorized_entry(agent, entry_id).await? else {
            return Ok(Err(NOT_AUTHORIZED.to_owned()));
        };
        let Ok(id) = SpiffeId::parse(entry.spiffe_id.as_str()) else {
            return Ok(Err("the entry's identity is not a spiffe id".to_owned()));
        };
        match self
            .sign(&id, csr, &entry.dns_names, nonzero(entry.x509_svid_ttl))
            .await
        {
            Ok(svid) => Ok(wire_svid(&svid, &id).map_err(|e| e.to_string())),
            Err(ServerError::Invalid(m)) => Ok(Err(format!("invalid csr: {m}").to_lowercase())),
            Err(ServerError::Csr(e)) => Ok(Err(format!("invalid csr: {e}").to_lowercase())),
            Err(e @ ServerError::PermissionDenied(_)) => Ok(Err(e.to_string().to_lowercase())),
            Err(e) => Err(e.into()),
        }
    }

    /// `NewJwtSvid`.
    async fn mint_jwt_svid(
        &self,
        request: Request<pb::NewJwtSvidRequest>,
    ) -> Result<pb::NewJwtSvidResponse, AgentApiError> {
        let agent = self.authenticate(&request).await?;
        let request = request.into_inner();
        lanyard_core::spiffe::check_audiences(&request.audience).map_err(AgentApiError::Audience)?;
        let entry = self
            .authorized_entry(&agent.id, &request.entry_id)
            .await?
            .ok_or(AgentApiError::EntryNotAuthorized)?;
        let sub = SpiffeId::parse(entry.spiffe_id.as_str()).map_err(AgentApiError::EntryNotSpiffeId)?;
        let token = issue::mint_jwt_svid(&self.state, &sub, &request.audience, nonzero(entry.jwt_svid_ttl)).await?;
        let (issued_at, expires_at) = token_times(&token);
        Ok(pb::NewJwtSvidResponse {
            token,
            expires_at,
            issued_at,
        })
    }

    /// `NewWit`.
    async fn mint_wit(&self, request: Request<pb::NewWitRequest>) -> Result<pb::NewWitResponse, AgentApiError> {
        let agent = self.authenticate(&request).await?;
        let request = request.into_inner();
        if request.cnf_jwk.is_empty() {
            return Err(AgentApiError::NoCnfJwk);
        }
        let cnf: Jwk = serde_json::from_str(&request.cnf_jwk).map_err(AgentApiError::InvalidCnfJwk)?;
        let entry = self
            .authorized_entry(&agent.id, &request.entry_id)
            .await?
            .ok_or(AgentApiError::EntryNotAuthorized)?;
        let token = issue::mint_wit(&self.state, &entry.spiffe_id, &cnf, nonzero(entry.wit_ttl)).await?;
        let (issued_at, expires_at) = token_times(&token);
        Ok(pb::NewWitResponse {
            token,
            expires_at,
            issued_at,
        })
    }
}

#[tonic::async_trait]
impl AgentApi for AgentService {
    type SyncEntriesStream = SyncStream;

    async fn attest_agent(
        &self,
        request: Request<pb::AttestAgentRequest>,
    ) -> Result<Response<pb::AttestAgentResponse>, Status> {
        Ok(Response::new(self.attest(request).await?))
    }

    async fn renew_agent(
        &self,
        request: Request<pb::RenewAgentRequest>,
    ) -> Result<Response<pb::RenewAgentResponse>, Status> {
        Ok(Response::new(self.renew(request).await?))
    }

    async fn sync_entries(
        &self,
        request: Request<pb::SyncEntriesRequest>,
    ) -> Result<Response<Self::SyncEntriesStream>, Status> {
        let agent = self.authenticate(&request).await?;
        Ok(Response::new(self.hub.open_stream(self.state.clone(), agent.id)))
    }

    async fn batch_new_x509_svid(
        &self,
        request: Request<pb::BatchNewX509SvidRequest>,
    ) -> Result<Response<pb::BatchNewX509SvidResponse>, Status> {
        Ok(Response::new(self.sign_batch(request).await?))
    }

    async fn new_jwt_svid(
        &self,
        request: Request<pb::NewJwtSvidRequest>,
    ) -> Result<Response<pb::NewJwtSvidResponse>, Status> {
        Ok(Response::new(self.mint_jwt_svid(request).await?))
    }

    async fn new_wit(&self, request: Request<pb::NewWitRequest>) -> Result<Response<pb::NewWitResponse>, Status> {
        Ok(Response::new(self.mint_wit(request).await?))
    }

    async fn get_bundles(
        &self,
        request: Request<pb::GetBundlesRequest>,
    ) -> Result<Response<pb::GetBundlesResponse>, Status> {
        let agent = self.authenticate(&request).await?;
        let bundles = agent_bundles(&self.state, &agent.id).await?;
        Ok(Response::new(pb::GetBundlesResponse { bundles: Some(bundles) }))
    }
}
