//! The `AgentApi` RPCs: node attestation, agent SVID renewal, entry sync, and SVID / token
//! signing for the entries authorized for the calling agent.
//!
//! Each RPC extracts its request, calls the domain ([`crate::attest`], [`crate::issue`],
//! [`crate::entries`]) and fails with an [`AgentApiError`], which `api/status.rs` maps to a
//! gRPC status. Every attestation attempt and every renewal is written as an audit event
//! (`target: "audit"`), with the join token's ID (the first 16 hex digits of its SHA-256),
//! never the token.

use std::collections::HashSet;
use std::sync::Arc;

use lanyard_api::agent::v1 as pb;
use lanyard_api::agent::v1::agent_api_server::AgentApi;
use lanyard_api::node;
use lanyard_core::{Jwk, SpiffeId};
use lanyard_x509::VerifiedSvid;
use tonic::{Request, Response, Status};

use crate::api::status::{AgentApiError, MAX_BATCH, NOT_AUTHORIZED};
use crate::api::sync::{Hub, SyncStream};
use crate::api::{PeerIdentity, bundles, wire};
use crate::attest::{self, Attestation, JoinTokenAttestor, NodeAttestor, X509Pop, X509PopError};
use crate::audit;
use crate::entries;
use crate::error::ServerError;
use crate::issue;
use crate::model::{Agent, Entry};
use crate::sdcwt;
use crate::state::AppState;

/// The node attestors the agent API offers.
#[derive(Debug)]
pub struct Attestors {
    /// Join tokens (always on).
    pub join_token: JoinTokenAttestor,
    /// x509pop, when `[node_attestation.x509pop]` is configured.
    pub x509pop: Option<X509Pop>,
}

/// The `AgentApi` implementation.
#[derive(Debug)]
pub struct AgentService {
    state: AppState,
    hub: Hub,
    attestors: Arc<Attestors>,
}

impl AgentService {
    /// A service over `state`, with `hub` feeding its `SyncEntries` streams and
    /// `attestors` answering `AttestAgent`.
    pub fn new(state: AppState, hub: Hub, attestors: Arc<Attestors>) -> AgentService {
        AgentService { state, hub, attestors }
    }
}

fn audit(action: &str, outcome: &str, subject: &str, peer: Option<&PeerIdentity>) {
    let remote = peer.and_then(|p| p.remote_addr);
    audit::record(audit::Source::AgentApi, action, outcome, subject, remote);
}

/// A time as the agent API's `int64` seconds.
fn wire_time(t: lanyard_core::UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

fn nonzero(ttl: u64) -> Option<u64> {
    (ttl > 0).then_some(ttl)
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
        match self.state.stores.agents.get_agent(&svid.spiffe_id).await? {
            None => Err(AgentApiError::UnknownAgent(svid.spiffe_id.clone())),
            Some(agent) if agent.banned => Err(AgentApiError::AgentBanned(svid.spiffe_id.clone())),
            // The current SVID. Its first use ends the grace of the one it replaced.
            Some(agent) if agent.svid_serial == svid.serial => {
                if agent.previous_svid_serial.is_empty() {
                    return Ok(agent);
                }
                self.state
                    .stores
                    .agents
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
        let entry = self.state.stores.entries.get_entry(id).await?;
        Ok(entry.filter(|e| entries::is_authorized(e, agent)))
    }

    /// One attestation through `attestor`, in wire form.
    async fn attest_with<A: NodeAttestor>(
        &self,
        attestor: &A,
        evidence: &A::Evidence,
        csr: &[u8],
        peer: Option<&PeerIdentity>,
    ) -> Result<pb::attest_agent_response::Step, AgentApiError> {
        let audit = |outcome: &str, subject: &str| audit(A::AUDIT_ACTION, outcome, subject, peer);
        let step = match attest::attest(&self.state, attestor, evidence, csr, &audit).await? {
            Attestation::Challenge(challenge) => pb::attest_agent_response::Step::Challenge(wire::challenge(challenge)),
            Attestation::Attested(done) => {
                let credentials = wire::credentials(&done.svid, &done.agent.id, &done.bundle)?;
                pb::attest_agent_response::Step::Credentials(credentials)
            }
        };
        Ok(step)
    }

    /// `AttestAgent`.
    async fn attest(&self, request: Request<pb::AttestAgentRequest>) -> Result<pb::AttestAgentResponse, AgentApiError> {
        let peer = request.extensions().get::<PeerIdentity>().cloned();
        let peer = peer.as_ref();
        let request = request.into_inner();
        let csr = &request.csr;
        let step = match &request.attestation {
            Some(pb::attest_agent_request::Attestation::JoinToken(token)) => {
                self.attest_with(&self.attestors.join_token, token, csr, peer).await?
            }
            Some(pb::attest_agent_request::Attestation::X509pop(evidence)) => match &self.attestors.x509pop {
                Some(x509pop) => self.attest_with(x509pop, evidence, csr, peer).await?,
                None => {
                    let e = X509PopError::Disabled;
                    audit(X509Pop::AUDIT_ACTION, e.kind(), "", peer);
                    return Err(attest::AttestError::from(e).into());
                }
            },
            None => {
                audit("agent.attest", "invalid_request", "", peer);
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
        let svid = issue::agent_svid(&self.state, &agent.id, &request.get_ref().csr).await?;
        let (verified, bundle) = issue::check_agent_svid(&self.state, &svid).await?;
        let credentials = wire::credentials(&svid, &agent.id, &bundle)?;
        // The SVID this call came with keeps its grace (it may itself be the previous one,
        // if an earlier renewal's response was lost).
        let presented = peer
            .as_ref()
            .and_then(|p| p.svid.as_ref())
            .map_or_else(|| agent.svid_serial.clone(), |s| s.serial.clone());
        let renewed = Agent {
            previous_svid_serial: presented,
            svid_serial: verified.serial,
            svid_expires_at: verified.not_after,
            ..agent
        };
        self.state.stores.agents.upsert_agent(&renewed).await?;
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
        match issue::x509_svid(&self.state, &id, csr, &entry.dns_names, nonzero(entry.x509_svid_ttl)).await {
            Ok(svid) => Ok(wire::svid(&svid, &id).map_err(|e| e.to_string())),
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
        let minted = issue::mint_jwt_svid(&self.state, &sub, &request.audience, nonzero(entry.jwt_svid_ttl)).await?;
        Ok(pb::NewJwtSvidResponse {
            expires_at: wire_time(minted.expires_at),
            issued_at: wire_time(minted.issued_at),
            token: minted.token,
        })
    }

    /// What a key-bound credential (a WIT, an SD-CWT) is minted from: the calling agent's
    /// authorized entry `entry_id` and the public key `cnf_jwk` (JSON) it binds.
    async fn bound_entry(&self, agent: &Agent, entry_id: &str, cnf_jwk: &str) -> Result<(Entry, Jwk), AgentApiError> {
        if cnf_jwk.is_empty() {
            return Err(AgentApiError::NoCnfJwk);
        }
        let cnf: Jwk = serde_json::from_str(cnf_jwk).map_err(AgentApiError::InvalidCnfJwk)?;
        let entry = self
            .authorized_entry(&agent.id, entry_id)
            .await?
            .ok_or(AgentApiError::EntryNotAuthorized)?;
        Ok((entry, cnf))
    }

    /// `NewWit`.
    async fn mint_wit(&self, request: Request<pb::NewWitRequest>) -> Result<pb::NewWitResponse, AgentApiError> {
        let agent = self.authenticate(&request).await?;
        let request = request.into_inner();
        let (entry, cnf) = self.bound_entry(&agent, &request.entry_id, &request.cnf_jwk).await?;
        let minted = issue::mint_wit(&self.state, &entry.spiffe_id, &cnf, nonzero(entry.wit_ttl)).await?;
        Ok(pb::NewWitResponse {
            expires_at: wire_time(minted.expires_at),
            issued_at: wire_time(minted.issued_at),
            token: minted.token,
        })
    }

    /// `NewSdCwt`: authorized like `NewWit`; the SD-CWT lives as long as the entry's WITs.
    async fn mint_sd_cwt(&self, request: Request<pb::NewSdCwtRequest>) -> Result<pb::NewSdCwtResponse, AgentApiError> {
        let agent = self.authenticate(&request).await?;
        let request = request.into_inner();
        let (entry, cnf) = self.bound_entry(&agent, &request.entry_id, &request.cnf_jwk).await?;
        let minted = sdcwt::mint_sd_cwt(&self.state, &entry, &cnf, nonzero(entry.wit_ttl)).await?;
        Ok(pb::NewSdCwtResponse {
            expires_at: wire_time(minted.expires_at),
            issued_at: wire_time(minted.issued_at),
            token: minted.token,
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

    async fn new_sd_cwt(
        &self,
        request: Request<pb::NewSdCwtRequest>,
    ) -> Result<Response<pb::NewSdCwtResponse>, Status> {
        Ok(Response::new(self.mint_sd_cwt(request).await?))
    }

    async fn get_bundles(
        &self,
        request: Request<pb::GetBundlesRequest>,
    ) -> Result<Response<pb::GetBundlesResponse>, Status> {
        let agent = self.authenticate(&request).await?;
        let bundles = bundles::for_agent(&self.state, &agent.id).await?;
        Ok(Response::new(pb::GetBundlesResponse { bundles: Some(bundles) }))
    }
}
