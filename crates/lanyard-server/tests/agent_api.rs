//! The server↔agent gRPC API end to end: an in-process server (tempdir, SQLite, agent API
//! on 127.0.0.1:0) called with the generated client over TLS 1.3, anonymously for
//! `AttestAgent` and with the agent SVID (mTLS) for everything else.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use lanyard_api::agent::v1 as pb;
use lanyard_api::agent::v1::agent_api_client::AgentApiClient;
use lanyard_core::{
    Algorithm, JwtSvidPolicy, JwtSvidVerifier, SpiffeBundle, SpiffeId, TrustDomain, TrustStore, UnixTime, WitPolicy,
    WitVerifier, WorkloadId,
};
use lanyard_server::ServerConfig;
use lanyard_server::model::{EntrySpec, Selector};
use lanyard_x509::{
    Authorizer, SpiffeServerCertVerifier, SubjectKey, SvidSource, Usage, VerifyOptions, X509Authority, X509Bundle,
    X509BundleSet, X509Svid, verify_svid_chain,
};
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::Code;
use tonic::transport::{Channel, Endpoint, Uri};

const TD: &str = "example.org";
const SERVER_ID: &str = "spiffe://example.org/lanyard/server";

/// lanyard-testing's in-process server, with what these tests add: agent-API clients,
/// attestation, stored records.
struct Harness(lanyard_testing::harness::Harness);

impl std::ops::Deref for Harness {
    type Target = lanyard_testing::harness::Harness;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Harness {
    async fn start() -> Harness {
        Harness(lanyard_testing::harness::Harness::start().await)
    }

    /// A server whose configuration `adjust` may change (it gets the temporary directory).
    async fn start_with(adjust: impl FnOnce(&mut ServerConfig, &std::path::Path)) -> Harness {
        Harness(lanyard_testing::harness::Harness::start_with(adjust).await)
    }

    /// Stops the server and starts it again on the same data, configured by `adjust`.
    async fn restart_with(self, adjust: impl FnOnce(&mut ServerConfig, &std::path::Path)) -> Harness {
        Harness(self.0.restart_with(adjust).await)
    }

    /// The stored record of the agent `id` (which must exist).
    async fn stored_agent(&self, id: &str) -> lanyard_server::model::Agent {
        let id = SpiffeId::parse(id).unwrap();
        self.server.state.stores.agents.get_agent(&id).await.unwrap().unwrap()
    }

    fn td(&self) -> TrustDomain {
        TrustDomain::parse(TD).unwrap()
    }

    async fn x509_bundles(&self) -> X509BundleSet {
        X509BundleSet::new().with(X509Bundle::from_spiffe_bundle(&self.bundle().await).unwrap())
    }

    /// Creates a join token valid for `ttl` seconds (negative: already expired).
    async fn join_token(&self, ttl: i64) -> String {
        let mut secret = [0u8; 16];
        lanyard_crypto::provider().fill_random(&mut secret).unwrap();
        let token = lanyard_core::hex::encode(&secret);
        let expires_at = UnixTime(self.now().as_secs().checked_add_signed(ttl).unwrap());
        self.server
            .state
            .stores
            .join_tokens
            .create_join_token(&sha256_hex(&token), expires_at)
            .await
            .unwrap();
        token
    }

    async fn entry(&self, spiffe_id: &str, parent: &str) -> String {
        let spec = EntrySpec {
            spiffe_id: WorkloadId::parse(spiffe_id).unwrap(),
            parent_id: SpiffeId::parse(parent).unwrap(),
            selectors: vec![Selector::parse("unix:uid:1000").unwrap()],
            x509_svid_ttl: 600,
            jwt_svid_ttl: 120,
            wit_ttl: 900,
            dns_names: vec!["web.example.org".into()],
            federates_with: Vec::new(),
            admin: false,
            claims: Default::default(),
        };
        self.server
            .state
            .stores
            .entries
            .create_entry(&spec, self.now())
            .await
            .unwrap()
            .id
    }

    /// An entry `spiffe://example.org/web` under `agent` that federates with `trust_domains`.
    async fn federating_entry(&self, agent: &AgentCreds, trust_domains: &[&str]) {
        let spec = EntrySpec {
            spiffe_id: WorkloadId::parse("spiffe://example.org/web").unwrap(),
            parent_id: SpiffeId::parse(&agent.id).unwrap(),
            selectors: vec![Selector::parse("unix:uid:1000").unwrap()],
            x509_svid_ttl: 0,
            jwt_svid_ttl: 0,
            wit_ttl: 0,
            dns_names: Vec::new(),
            federates_with: trust_domains.iter().map(|td| (*td).to_owned()).collect(),
            admin: false,
            claims: Default::default(),
        };
        self.server
            .state
            .stores
            .entries
            .create_entry(&spec, self.now())
            .await
            .unwrap();
    }

    /// A client without a certificate (for `AttestAgent`), pinning the server's ID.
    async fn anonymous(&self) -> AgentApiClient<Channel> {
        // The verifier needs a source for the bundles; its SVID (of an unrelated trust
        // domain) is never presented.
        let other = TrustDomain::parse("unrelated.invalid").unwrap();
        let ca = X509Authority::new_root(lanyard_crypto::provider(), &other, None, 3600, self.now()).unwrap();
        let id = SpiffeId::parse("spiffe://unrelated.invalid/placeholder").unwrap();
        let svid = ca.issue_svid(&id, SubjectKey::Generate, 600, &[], self.now()).unwrap();
        let source = Arc::new(SvidSource::new(&svid, self.x509_bundles().await).unwrap());
        let verifier = SpiffeServerCertVerifier::new(Arc::clone(&source), server_authorizer());
        let mut config = ClientConfig::builder_with_provider(Arc::clone(source.provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        connect(self.server.agent_addr, config).await
    }

    /// A client presenting `agent`'s SVID.
    async fn as_agent(&self, agent: &AgentCreds) -> AgentApiClient<Channel> {
        let source = Arc::new(SvidSource::new(&agent.svid, self.x509_bundles().await).unwrap());
        let mut config = lanyard_x509::client_config(source, server_authorizer()).unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        connect(self.server.agent_addr, config).await
    }

    /// Attests with a fresh join token; returns the agent's credentials.
    async fn attest(&self) -> AgentCreds {
        let token = self.join_token(600).await;
        let id = agent_id_for(&token);
        let (key, csr) = csr_for(&id);
        let response = self
            .anonymous()
            .await
            .attest_agent(join_token_request(&token, csr))
            .await
            .unwrap()
            .into_inner();
        creds_from(response_credentials(response), key)
    }
}

struct AgentCreds {
    id: String,
    svid: X509Svid,
    bundle: pb::Bundle,
}

fn server_authorizer() -> Authorizer {
    Authorizer::Exact(SpiffeId::parse(SERVER_ID).unwrap())
}

async fn connect(addr: SocketAddr, config: ClientConfig) -> AgentApiClient<Channel> {
    let connector = TlsConnector::from(Arc::new(config));
    let channel = Endpoint::try_from(format!("http://{addr}"))
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let connector = connector.clone();
            async move {
                let tcp = TcpStream::connect(addr).await?;
                // Without it, Nagle and delayed ACKs add ~40 ms to a request.
                tcp.set_nodelay(true)?;
                let name = ServerName::try_from("lanyard-server").unwrap();
                let tls = connector.connect(name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await
        .unwrap();
    AgentApiClient::new(channel)
}

fn sha256_hex(s: &str) -> String {
    lanyard_core::hex::encode(&lanyard_crypto::provider().sha256(s.as_bytes()))
}

fn agent_id_for(token: &str) -> String {
    format!("spiffe://{TD}/lanyard/agent/join_token/{}", &sha256_hex(token)[..16])
}

/// A fresh P-256 key and a CSR (DER) requesting `uri`.
fn csr_for(uri: &str) -> (rcgen::KeyPair, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![rcgen::SanType::URI(rcgen::string::Ia5String::try_from(uri).unwrap())];
    let csr = params.serialize_request(&key).unwrap();
    (key, csr.der().to_vec())
}

fn join_token_request(token: &str, csr: Vec<u8>) -> pb::AttestAgentRequest {
    pb::AttestAgentRequest {
        attestation: Some(pb::attest_agent_request::Attestation::JoinToken(
            pb::JoinTokenAttestation { token: token.into() },
        )),
        csr,
    }
}

fn response_credentials(response: pb::AttestAgentResponse) -> pb::AgentCredentials {
    match response.step {
        Some(pb::attest_agent_response::Step::Credentials(c)) => c,
        other => panic!("expected credentials, got {other:?}"),
    }
}

fn creds_from(credentials: pb::AgentCredentials, key: rcgen::KeyPair) -> AgentCreds {
    let svid = credentials.svid.unwrap();
    AgentCreds {
        id: svid.spiffe_id.clone(),
        svid: X509Svid {
            chain: svid.cert_chain.into_iter().map(CertificateDer::from).collect(),
            key: Some(PrivatePkcs8KeyDer::from(key.serialize_der())),
        },
        bundle: credentials.bundle.unwrap(),
    }
}

fn verify_with_bundle(
    chain: &[CertificateDer<'static>],
    bundle: &pb::Bundle,
    now: UnixTime,
) -> lanyard_x509::VerifiedSvid {
    let td = TrustDomain::parse(&bundle.trust_domain).unwrap();
    let parsed = SpiffeBundle::parse(td, &bundle.json).unwrap();
    let set = X509BundleSet::new().with(X509Bundle::from_spiffe_bundle(&parsed).unwrap());
    verify_svid_chain(chain, &set, now, &VerifyOptions::for_usage(Usage::ClientAuth)).unwrap()
}

type Events = tonic::Streaming<pb::SyncEntriesResponse>;

/// Opens a `SyncEntries` stream from the beginning (the call itself must succeed).
async fn open_sync(client: &mut AgentApiClient<Channel>) -> Events {
    client
        .sync_entries(pb::SyncEntriesRequest::default())
        .await
        .unwrap()
        .into_inner()
}

async fn next_event(stream: &mut Events, within: Duration) -> pb::sync_entries_response::Event {
    tokio::time::timeout(within, stream.message())
        .await
        .expect("no SyncEntries message in time")
        .unwrap()
        .expect("stream ended")
        .event
        .unwrap()
}

#[tokio::test]
async fn join_token_attestation_renewal_and_refusals() {
    let h = Harness::start().await;

    // Attestation succeeds and yields an SVID that verifies against the returned bundle.
    let token = h.join_token(600).await;
    let id = agent_id_for(&token);
    let (key, csr) = csr_for(&id);

    // A CSR for another identity is refused, and does not use the token up.
    let (_, wrong_csr) = csr_for("spiffe://example.org/lanyard/agent/join_token/0000000000000000");
    let err = h
        .anonymous()
        .await
        .attest_agent(join_token_request(&token, wrong_csr))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    let mut anon = h.anonymous().await;
    let credentials = response_credentials(
        anon.attest_agent(join_token_request(&token, csr.clone()))
            .await
            .unwrap()
            .into_inner(),
    );
    let agent = creds_from(credentials, key);
    assert_eq!(agent.id, id);
    assert_eq!(agent.bundle.trust_domain, "spiffe://example.org");
    let verified = verify_with_bundle(&agent.svid.chain, &agent.bundle, h.now());
    assert_eq!(verified.spiffe_id.as_str(), id);
    let stored = h.stored_agent(&id).await;
    assert_eq!(stored.attestation_type, "join_token");
    assert_eq!(stored.svid_serial, verified.serial);
    assert!(!stored.banned);

    // The same token again, an expired token and an unknown token are refused.
    let again = anon.attest_agent(join_token_request(&token, csr)).await.unwrap_err();
    assert_eq!(again.code(), Code::PermissionDenied);
    assert_eq!(again.message(), "join token unknown or already used");
    let expired = h.join_token(-10).await;
    let (_, csr) = csr_for(&agent_id_for(&expired));
    let err = anon.attest_agent(join_token_request(&expired, csr)).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::PermissionDenied, "join token expired")
    );
    let (_, csr) = csr_for(&agent_id_for("never-issued"));
    let err = anon
        .attest_agent(join_token_request("never-issued", csr))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // x509pop is not implemented yet, and says so.
    let err = anon
        .attest_agent(pb::AttestAgentRequest {
            attestation: Some(pb::attest_agent_request::Attestation::X509pop(
                pb::X509PopAttestation::default(),
            )),
            csr: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);

    // Without a client certificate, every other RPC is Unauthenticated.
    let (_, renew_csr) = csr_for(&id);
    let err = anon
        .renew_agent(pb::RenewAgentRequest { csr: renew_csr.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(
        anon.get_bundles(pb::GetBundlesRequest {}).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        anon.sync_entries(pb::SyncEntriesRequest::default())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let err = anon
        .batch_new_x509_svid(pb::BatchNewX509SvidRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = anon.new_wit(pb::NewWitRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = anon.new_jwt_svid(pb::NewJwtSvidRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // Renewal over mTLS: same identity, new key and serial.
    let (new_key, renew_csr) = csr_for(&id);
    let mut client = h.as_agent(&agent).await;
    let renewed = client
        .renew_agent(pb::RenewAgentRequest { csr: renew_csr })
        .await
        .unwrap()
        .into_inner()
        .credentials
        .unwrap();
    let renewed = creds_from(renewed, new_key);
    assert_eq!(renewed.id, id);
    let verified2 = verify_with_bundle(&renewed.svid.chain, &renewed.bundle, h.now());
    assert_ne!(verified2.serial, verified.serial);
    let stored = h.stored_agent(&id).await;
    assert_eq!(stored.svid_serial, verified2.serial);
    assert_eq!(stored.previous_svid_serial, verified.serial);
    // Until the renewed SVID is used, the old one still works (a lost renewal response
    // does not lock the agent out), even to renew again, after which it keeps its grace.
    client.get_bundles(pb::GetBundlesRequest {}).await.unwrap();
    // (As if the response above had been lost: renew again with the old SVID.)
    let (again_key, again_csr) = csr_for(&id);
    let again = client
        .renew_agent(pb::RenewAgentRequest { csr: again_csr })
        .await
        .unwrap()
        .into_inner()
        .credentials
        .unwrap();
    let renewed = creds_from(again, again_key);
    assert_eq!(h.stored_agent(&id).await.previous_svid_serial, verified.serial);
    client.get_bundles(pb::GetBundlesRequest {}).await.unwrap();
    // The renewed SVID works for the next connection...
    let mut renewed_client = h.as_agent(&renewed).await;
    renewed_client.get_bundles(pb::GetBundlesRequest {}).await.unwrap();
    assert_eq!(h.stored_agent(&id).await.previous_svid_serial, "");
    // ... and from then on the old one is refused.
    let err = client.get_bundles(pb::GetBundlesRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("superseded"), "{err:?}");
    // A renewal CSR for another identity is refused.
    let (_, other_csr) = csr_for("spiffe://example.org/lanyard/agent/join_token/ffffffffffffffff");
    let err = renewed_client
        .renew_agent(pb::RenewAgentRequest { csr: other_csr })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    h.0.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn sync_entries_streams_a_snapshot_then_changes() {
    let h = Harness::start().await;
    let agent = h.attest().await;
    let other_agent = "spiffe://example.org/lanyard/agent/join_token/aaaaaaaaaaaaaaaa";
    let before = h.entry("spiffe://example.org/before", &agent.id).await;
    h.entry("spiffe://example.org/not-mine", other_agent).await;

    let mut client = h.as_agent(&agent).await;
    let mut stream = open_sync(&mut client).await;
    let pb::sync_entries_response::Event::Bundles(bundles) = next_event(&mut stream, Duration::from_secs(5)).await
    else {
        panic!("the stream must start with bundles");
    };
    assert_eq!(bundles.bundle.unwrap().trust_domain, "spiffe://example.org");
    let pb::sync_entries_response::Event::Snapshot(snapshot) = next_event(&mut stream, Duration::from_secs(5)).await
    else {
        panic!("bundles must be followed by a snapshot");
    };
    assert!(snapshot.complete);
    let ids: Vec<&str> = snapshot.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [before.as_str()]);
    assert_eq!(snapshot.entries[0].x509_svid_ttl, 600);
    assert_eq!(snapshot.entries[0].dns_names, ["web.example.org"]);

    // Entries for another agent never appear; new ones for this agent do, quickly.
    let mut latencies = Vec::new();
    let mut revision = snapshot.revision;
    let mut created = Vec::new();
    for i in 0..3 {
        h.entry(&format!("spiffe://example.org/elsewhere-{i}"), other_agent)
            .await;
        let started = Instant::now();
        let id = h.entry(&format!("spiffe://example.org/new-{i}"), &agent.id).await;
        let event = next_event(&mut stream, Duration::from_secs(1)).await;
        latencies.push(started.elapsed());
        let pb::sync_entries_response::Event::Delta(delta) = event else {
            panic!("expected a delta, got {event:?}");
        };
        let upserted: Vec<&str> = delta.upserts.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(upserted, [id.as_str()], "only this agent's new entry");
        assert!(delta.deleted_entry_ids.is_empty());
        assert!(delta.revision > revision);
        revision = delta.revision;
        created.push(id);
    }
    let worst = latencies.iter().max().unwrap();
    eprintln!("entry → agent latencies: {latencies:?}");
    assert!(*worst < Duration::from_secs(1), "{latencies:?}");

    // Deletion, and moving an entry to another agent, arrive as deletions.
    h.server.state.stores.entries.delete_entry(&before).await.unwrap();
    let pb::sync_entries_response::Event::Delta(delta) = next_event(&mut stream, Duration::from_secs(2)).await else {
        panic!("expected a delta");
    };
    assert_eq!(delta.deleted_entry_ids, [before]);
    assert!(delta.upserts.is_empty());

    let moved = &created[0];
    let mut spec = h.server.state.stores.entries.get_entry(moved).await.unwrap().unwrap();
    spec.parent_id = SpiffeId::parse(other_agent).unwrap();
    let spec = EntrySpec {
        spiffe_id: spec.spiffe_id,
        parent_id: spec.parent_id,
        selectors: spec.selectors,
        x509_svid_ttl: spec.x509_svid_ttl,
        jwt_svid_ttl: spec.jwt_svid_ttl,
        wit_ttl: spec.wit_ttl,
        dns_names: spec.dns_names,
        federates_with: spec.federates_with,
        admin: spec.admin,
        claims: Default::default(),
    };
    h.server
        .state
        .stores
        .entries
        .update_entry(moved, &spec, None)
        .await
        .unwrap();
    let pb::sync_entries_response::Event::Delta(delta) = next_event(&mut stream, Duration::from_secs(2)).await else {
        panic!("expected a delta");
    };
    assert_eq!(&delta.deleted_entry_ids, std::slice::from_ref(moved));
    assert!(delta.upserts.is_empty());

    h.0.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn signing_is_limited_to_the_agents_entries() {
    let h = Harness::start().await;
    let agent = h.attest().await;
    let mine = h.entry("spiffe://example.org/web", &agent.id).await;
    let theirs = h
        .entry(
            "spiffe://example.org/db",
            "spiffe://example.org/lanyard/agent/join_token/bbbbbbbbbbbbbbbb",
        )
        .await;
    let mut client = h.as_agent(&agent).await;

    // X.509-SVIDs: the authorized entry gets its identity, DNS names and TTL; the other
    // agent's entry and an unknown one get item errors.
    let (_, csr_web) = csr_for("spiffe://example.org/web");
    let (_, csr_db) = csr_for("spiffe://example.org/db");
    let results = client
        .batch_new_x509_svid(pb::BatchNewX509SvidRequest {
            params: vec![
                pb::X509SvidParams {
                    entry_id: mine.clone(),
                    csr: csr_web,
                },
                pb::X509SvidParams {
                    entry_id: theirs.clone(),
                    csr: csr_db.clone(),
                },
                pb::X509SvidParams {
                    entry_id: "no-such-entry".into(),
                    csr: csr_db,
                },
            ],
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].entry_id, mine);
    let Some(pb::x509_svid_result::Result::Svid(svid)) = &results[0].result else {
        panic!("expected an SVID, got {:?}", results[0]);
    };
    assert_eq!(svid.spiffe_id, "spiffe://example.org/web");
    let chain: Vec<CertificateDer<'static>> = svid.cert_chain.iter().cloned().map(CertificateDer::from).collect();
    let verified = verify_with_bundle(&chain, &agent.bundle, h.now());
    assert_eq!(verified.spiffe_id.as_str(), "spiffe://example.org/web");
    assert_eq!(verified.dns_names, ["web.example.org"]);
    assert_eq!(verified.not_after.as_secs(), u64::try_from(svid.expires_at).unwrap());
    assert!(verified.not_after.as_secs() <= h.now().as_secs() + 600);
    for item in &results[1..] {
        assert_eq!(
            item.result,
            Some(pb::x509_svid_result::Result::Error(
                "entry not authorized for this agent".into()
            )),
            "{item:?}"
        );
    }

    // WIT: verifies with the bundle's wit-svid keys, bound to the given key.
    let bundle = SpiffeBundle::parse(h.td(), &agent.bundle.json).unwrap();
    let store = Arc::new(TrustStore::new(lanyard_crypto::provider()));
    store.set_bundle(&bundle).unwrap();
    let workload = lanyard_crypto::provider().generate_key(Algorithm::ES256).unwrap();
    let cnf = serde_json::to_string(&workload.public_jwk()).unwrap();
    let wit = client
        .new_wit(pb::NewWitRequest {
            entry_id: mine.clone(),
            cnf_jwk: cnf.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let verified = WitVerifier::new(Arc::clone(&store), WitPolicy::wit_svid())
        .verify(&wit.token, h.now())
        .unwrap();
    assert_eq!(verified.sub.as_str(), "spiffe://example.org/web");
    assert_eq!(wit.expires_at - wit.issued_at, 900);
    let err = client
        .new_wit(pb::NewWitRequest {
            entry_id: theirs.clone(),
            cnf_jwk: cnf,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // JWT-SVID likewise.
    let jwt = client
        .new_jwt_svid(pb::NewJwtSvidRequest {
            entry_id: mine.clone(),
            audience: vec!["db".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let verified = JwtSvidVerifier::new(Arc::clone(&store), JwtSvidPolicy::default())
        .verify(&jwt.token, "db", h.now())
        .unwrap();
    assert_eq!(verified.sub.as_str(), "spiffe://example.org/web");
    assert_eq!(jwt.expires_at - jwt.issued_at, 120);
    // Several audiences (JWT-SVID.md §3.2): one token valid for each of them.
    let multi = client
        .new_jwt_svid(pb::NewJwtSvidRequest {
            entry_id: mine.clone(),
            audience: vec!["db".into(), "cache".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let jwt_verifier = JwtSvidVerifier::new(Arc::clone(&store), JwtSvidPolicy::default());
    for aud in ["db", "cache"] {
        let v = jwt_verifier.verify(&multi.token, aud, h.now()).unwrap();
        assert_eq!(v.aud, ["db", "cache"]);
    }
    // Unbounded audiences are refused before anything is signed, as InvalidArgument.
    for audience in [
        vec!["a".repeat(100_000)],
        (0..17).map(|i| format!("aud{i}")).collect(),
        vec![String::new()],
        vec![],
    ] {
        let err = client
            .new_jwt_svid(pb::NewJwtSvidRequest {
                entry_id: mine.clone(),
                audience,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
    let err = client
        .new_jwt_svid(pb::NewJwtSvidRequest {
            entry_id: theirs,
            audience: vec!["db".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // GetBundles: the trust domain's current bundle.
    let bundles = client
        .get_bundles(pb::GetBundlesRequest {})
        .await
        .unwrap()
        .into_inner()
        .bundles
        .unwrap();
    assert_eq!(bundles.bundle.unwrap().json, h.bundle().await.to_json().into_bytes());
    assert!(bundles.federated_bundles.is_empty());

    h.0.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_banned_agent_is_cut_off() {
    let h = Harness::start().await;
    let agent = h.attest().await;
    let mut client = h.as_agent(&agent).await;
    let mut stream = open_sync(&mut client).await;
    next_event(&mut stream, Duration::from_secs(5)).await; // bundles
    next_event(&mut stream, Duration::from_secs(5)).await; // snapshot

    let id = SpiffeId::parse(&agent.id).unwrap();
    assert!(h.server.state.stores.agents.ban_agent(&id).await.unwrap());

    let err = client.get_bundles(pb::GetBundlesRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let (_, csr) = csr_for(&agent.id);
    let err = client.renew_agent(pb::RenewAgentRequest { csr }).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let ended = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("the stream did not end after the ban");
    assert_eq!(ended.unwrap_err().code(), Code::PermissionDenied);

    h.0.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let h = Harness::start().await;
    let agent = h.attest().await;
    let mut client = h.as_agent(&agent).await;
    let mut stream = open_sync(&mut client).await;
    next_event(&mut stream, Duration::from_secs(5)).await;
    tokio::time::timeout(Duration::from_secs(10), h.0.server.shutdown())
        .await
        .expect("shutdown hung on an open stream")
        .unwrap();
}

// ---------------------------------------------------------------------------
// x509pop
// ---------------------------------------------------------------------------

/// A CA for node certificates (not a SPIFFE CA).
struct NodeCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

fn node_ca() -> NodeCa {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    params.distinguished_name.push(rcgen::DnType::CommonName, "node CA");
    let cert = params.self_signed(&key).unwrap();
    NodeCa {
        pem: cert.pem(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

/// A node certificate: its DER and its key (as the agent would load it).
struct NodeCert {
    der: Vec<u8>,
    key: lanyard_crypto::KeyPair,
}

fn node_cert(ca: &NodeCa, alg: &'static rcgen::SignatureAlgorithm, key_usage: rcgen::KeyUsagePurpose) -> NodeCert {
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["node-1.example.org".to_owned()]).unwrap();
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![key_usage];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    NodeCert {
        der: cert.der().to_vec(),
        key: lanyard_crypto::KeyPair::from_pkcs8_der(&key.serialize_der(), None).unwrap(),
    }
}

fn x509pop_request(
    chain: Vec<Vec<u8>>,
    response: Option<pb::X509PopChallengeResponse>,
    csr: Vec<u8>,
) -> pb::AttestAgentRequest {
    pb::AttestAgentRequest {
        attestation: Some(pb::attest_agent_request::Attestation::X509pop(pb::X509PopAttestation {
            cert_chain: chain,
            challenge_response: response,
        })),
        csr,
    }
}

fn x509pop_agent_id(node: &NodeCert) -> String {
    let hash = lanyard_core::hex::encode(&lanyard_crypto::provider().sha256(&node.der));
    format!("spiffe://{TD}/lanyard/agent/x509pop/{hash}")
}

impl Harness {
    /// A server trusting `ca` for x509pop.
    async fn with_x509pop(ca: &NodeCa) -> Harness {
        let pem = ca.pem.clone();
        Harness::start_with(move |config, dir| {
            let path = dir.join("node-ca.pem");
            std::fs::write(&path, pem).unwrap();
            config.node_attestation.x509pop = Some(lanyard_server::config::X509PopConfig { ca_bundle_path: path });
        })
        .await
    }

    /// x509pop step 1: the challenge.
    async fn x509pop_challenge(&self, node: &NodeCert) -> Result<pb::X509PopChallenge, tonic::Status> {
        let response = self
            .anonymous()
            .await
            .attest_agent(x509pop_request(vec![node.der.clone()], None, Vec::new()))
            .await?
            .into_inner();
        match response.step {
            Some(pb::attest_agent_response::Step::Challenge(c)) => Ok(c),
            other => panic!("expected a challenge, got {other:?}"),
        }
    }

    /// x509pop step 2 with a response signed as the agent would.
    async fn x509pop_answer(
        &self,
        node: &NodeCert,
        challenge: &[u8],
        csr: Vec<u8>,
    ) -> Result<pb::AgentCredentials, tonic::Status> {
        let answer =
            lanyard_api::node::x509pop_challenge_response(&node.key, challenge, &csr, &*lanyard_crypto::provider())
                .unwrap();
        self.x509pop_step2(node, answer, csr).await
    }

    async fn x509pop_step2(
        &self,
        node: &NodeCert,
        answer: pb::X509PopChallengeResponse,
        csr: Vec<u8>,
    ) -> Result<pb::AgentCredentials, tonic::Status> {
        let response = self
            .anonymous()
            .await
            .attest_agent(x509pop_request(vec![node.der.clone()], Some(answer), csr))
            .await?
            .into_inner();
        Ok(response_credentials(response))
    }
}

#[tokio::test]
async fn x509pop_attestation_issues_an_agent_svid_and_allows_reattestation() {
    let ca = node_ca();
    let h = Harness::with_x509pop(&ca).await;
    for alg in [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_ED25519,
    ] {
        let node = node_cert(&ca, alg, rcgen::KeyUsagePurpose::DigitalSignature);
        let id = x509pop_agent_id(&node);
        let challenge = h.x509pop_challenge(&node).await.unwrap();
        assert_eq!(
            challenge.challenge.len(),
            lanyard_server::attest::x509pop::CHALLENGE_LEN
        );
        let now = i64::try_from(h.now().as_secs()).unwrap();
        assert!(challenge.expires_at > now && challenge.expires_at <= now + 61);
        let (key, csr) = csr_for(&id);
        let credentials = h.x509pop_answer(&node, &challenge.challenge, csr).await.unwrap();
        let agent = creds_from(credentials, key);
        assert_eq!(agent.id, id);
        let verified = verify_with_bundle(&agent.svid.chain, &agent.bundle, h.now());
        assert_eq!(verified.spiffe_id.as_str(), id);
        let stored = h.stored_agent(&id).await;
        assert_eq!(stored.attestation_type, "x509pop");
        let selectors: Vec<String> = stored.selectors.iter().map(ToString::to_string).collect();
        assert!(
            selectors.iter().any(|s| s.starts_with("x509pop:serialnumber:")),
            "{selectors:?}"
        );
        assert!(
            selectors.contains(&format!("x509pop:leaf:fingerprint:{}", &id[id.len() - 64..])),
            "{selectors:?}"
        );

        // The new agent SVID authenticates the agent.
        let bundles = h
            .as_agent(&agent)
            .await
            .get_bundles(pb::GetBundlesRequest {})
            .await
            .unwrap()
            .into_inner();
        assert!(bundles.bundles.unwrap().bundle.is_some());

        // The same node may attest again (a fresh challenge and a new key).
        let challenge = h.x509pop_challenge(&node).await.unwrap();
        let (_, csr) = csr_for(&id);
        let again = h.x509pop_answer(&node, &challenge.challenge, csr).await.unwrap();
        assert_eq!(again.svid.unwrap().spiffe_id, id);
    }
    h.0.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn x509pop_refusals() {
    let ca = node_ca();
    let h = Harness::with_x509pop(&ca).await;
    let node = node_cert(
        &ca,
        &rcgen::PKCS_ECDSA_P256_SHA256,
        rcgen::KeyUsagePurpose::DigitalSignature,
    );
    let id = x509pop_agent_id(&node);

    // A node certificate from another CA, or without digitalSignature: no challenge.
    let stranger = node_cert(
        &node_ca(),
        &rcgen::PKCS_ECDSA_P256_SHA256,
        rcgen::KeyUsagePurpose::DigitalSignature,
    );
    assert_eq!(
        h.x509pop_challenge(&stranger).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let no_signing = node_cert(
        &ca,
        &rcgen::PKCS_ECDSA_P256_SHA256,
        rcgen::KeyUsagePurpose::KeyAgreement,
    );
    assert_eq!(
        h.x509pop_challenge(&no_signing).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // Nor without a chain.
    let err = h
        .anonymous()
        .await
        .attest_agent(x509pop_request(Vec::new(), None, Vec::new()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let challenge = h.x509pop_challenge(&node).await.unwrap().challenge;

    // A tampered challenge.
    let mut tampered = challenge.clone();
    tampered[5] ^= 1;
    let (_, csr) = csr_for(&id);
    let err = h.x509pop_answer(&node, &tampered, csr.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("not authentic"), "{}", err.message());

    // An expired challenge (made with the server's own key, so only the expiry is wrong).
    let key = lanyard_server::attest::x509pop::ChallengeKey::load(
        &*h.server.state.stores.secrets,
        lanyard_crypto::provider(),
    )
    .await
    .unwrap();
    let expired = key.issue(&node.der, UnixTime(h.now().as_secs() - 1)).unwrap();
    let err = h.x509pop_answer(&node, &expired, csr.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("expired"), "{}", err.message());

    // A challenge issued for another node certificate.
    let other_node = node_cert(
        &ca,
        &rcgen::PKCS_ECDSA_P256_SHA256,
        rcgen::KeyUsagePurpose::DigitalSignature,
    );
    let other_challenge = h.x509pop_challenge(&other_node).await.unwrap().challenge;
    let err = h
        .x509pop_answer(&node, &other_challenge, csr.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // A signature by another key.
    let forged =
        lanyard_api::node::x509pop_challenge_response(&other_node.key, &challenge, &csr, &*lanyard_crypto::provider())
            .unwrap();
    let err = h.x509pop_step2(&node, forged, csr.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // The CSR swapped after signing.
    let signed =
        lanyard_api::node::x509pop_challenge_response(&node.key, &challenge, &csr, &*lanyard_crypto::provider())
            .unwrap();
    let (_, swapped) = csr_for(&id);
    let err = h.x509pop_step2(&node, signed.clone(), swapped).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // An algorithm that does not fit the key, an unknown one, and no CSR.
    let mut wrong_alg = signed.clone();
    wrong_alg.signature_algorithm = "ES384".into();
    let err = h.x509pop_step2(&node, wrong_alg, csr.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut hmac_alg = signed.clone();
    hmac_alg.signature_algorithm = "HS256".into();
    let err = h.x509pop_step2(&node, hmac_alg, csr.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = h.x509pop_step2(&node, signed.clone(), Vec::new()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // The genuine answer works; once the agent is banned, the node cannot attest again.
    h.x509pop_step2(&node, signed, csr).await.unwrap();
    assert!(
        h.server
            .state
            .stores
            .agents
            .ban_agent(&SpiffeId::parse(&id).unwrap())
            .await
            .unwrap()
    );
    let challenge = h.x509pop_challenge(&node).await.unwrap().challenge;
    let (_, csr) = csr_for(&id);
    let err = h.x509pop_answer(&node, &challenge, csr).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    h.0.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn x509pop_is_disabled_without_a_ca_bundle() {
    let h = Harness::start().await;
    let node = node_cert(
        &node_ca(),
        &rcgen::PKCS_ECDSA_P256_SHA256,
        rcgen::KeyUsagePurpose::DigitalSignature,
    );
    assert_eq!(
        h.x509pop_challenge(&node).await.unwrap_err().code(),
        Code::Unimplemented
    );
    h.0.server.shutdown().await.unwrap();
}

#[test]
fn x509pop_signed_message_layout() {
    let message = lanyard_api::node::x509pop_signed_message(b"chal", b"csr", &*lanyard_crypto::provider());
    let mut expected = b"lanyard-x509pop-v1\0chal".to_vec();
    expected.extend_from_slice(&lanyard_crypto::provider().sha256(b"csr"));
    assert_eq!(message, expected);
}

/// With `[ca] upstream_*`, agents attest, authenticate (their SVID chains carry the
/// server's intermediate) and receive a bundle holding only the upstream root.
#[tokio::test]
async fn upstream_ca_end_to_end() {
    let start = lanyard_core::Clock::now(&lanyard_core::SystemClock).minus(60);
    let root = X509Authority::new_root(
        lanyard_crypto::provider(),
        &TrustDomain::parse(TD).unwrap(),
        None,
        48 * 3600,
        start,
    )
    .unwrap();
    let (cert_pem, key_pem) = (root.cert_pem(), root.key_pem());
    let h = Harness::start_with(move |config, dir| {
        let (cert, key) = (dir.join("upstream.pem"), dir.join("upstream.key"));
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        config.ca.upstream_cert_path = Some(cert);
        config.ca.upstream_key_path = Some(key);
    })
    .await;
    let agent = h.attest().await;
    assert_eq!(agent.svid.chain.len(), 2);
    let only_root = X509BundleSet::new().with(X509Bundle::from_pem(h.td(), &root.cert_pem()).unwrap());
    verify_svid_chain(
        &agent.svid.chain,
        &only_root,
        h.now(),
        &VerifyOptions::for_usage(Usage::ClientAuth),
    )
    .unwrap();
    let bundle = SpiffeBundle::parse(h.td(), &agent.bundle.json).unwrap();
    assert_eq!(bundle.x509_authorities, vec![root.bundle_jwk().unwrap()]);
    h.as_agent(&agent)
        .await
        .get_bundles(pb::GetBundlesRequest {})
        .await
        .unwrap();
    h.0.server.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------
// Federation
// ---------------------------------------------------------------------------

const FOREIGN_TD: &str = "other.org";

/// A foreign bundle document with these X.509 authorities and sequence.
fn foreign_bundle(roots: &[&X509Authority], sequence: u64) -> String {
    let mut bundle = SpiffeBundle::new(TrustDomain::parse(FOREIGN_TD).unwrap());
    bundle.sequence = Some(sequence);
    bundle.refresh_hint = Some(1);
    bundle.x509_authorities = roots.iter().map(|r| r.bundle_jwk().unwrap()).collect();
    bundle.to_json()
}

/// A minimal HTTPS server (Web PKI certificate for 127.0.0.1 from its own CA) answering
/// every request with the current `(status, body)`.
struct WebEndpoint {
    url: String,
    ca_pem: String,
    answer: Arc<std::sync::Mutex<(u16, String)>>,
}

impl WebEndpoint {
    async fn start(body: String) -> WebEndpoint {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let ca = node_ca();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        let cert = params.signed_by(&key, &ca.issuer).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(lanyard_crypto::rustls_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://127.0.0.1:{}/", listener.local_addr().unwrap().port());
        let answer = Arc::new(std::sync::Mutex::new((200, body)));
        let current = Arc::clone(&answer);
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let (acceptor, current) = (acceptor.clone(), Arc::clone(&current));
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let (status, body) = current.lock().unwrap().clone();
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        WebEndpoint {
            url,
            ca_pem: ca.pem,
            answer,
        }
    }

    fn serve(&self, status: u16, body: String) {
        *self.answer.lock().unwrap() = (status, body);
    }
}

async fn stored_foreign(h: &Harness, td: &str, within: Duration) -> SpiffeBundle {
    let deadline = Instant::now() + within;
    loop {
        if let Some((json, _)) = h
            .server
            .state
            .stores
            .federated_bundles
            .get_federated_bundle(td)
            .await
            .unwrap()
        {
            return SpiffeBundle::parse(TrustDomain::parse(td).unwrap(), json.as_bytes()).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the federated bundle of {td} was not fetched in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The federated bundle sequence of `td` in a `Bundles` event.
fn federated_sequence(event: &pb::sync_entries_response::Event, td: &str) -> Option<u64> {
    match event {
        pb::sync_entries_response::Event::Bundles(b) => {
            b.federated_bundles.get(&format!("spiffe://{td}")).map(|b| b.sequence)
        }
        other => panic!("expected bundles, got {other:?}"),
    }
}

#[tokio::test]
async fn federation_fetches_stores_refreshes_and_keeps_the_last_good_bundle() {
    use lanyard_server::config::{BundleEndpointProfile, FederatedTrustDomain};
    use lanyard_server::federation::{self, Relationship};

    let foreign_td = TrustDomain::parse(FOREIGN_TD).unwrap();
    let now = lanyard_core::Clock::now(&lanyard_core::SystemClock);
    let root1 = X509Authority::new_root(lanyard_crypto::provider(), &foreign_td, None, 3600, now).unwrap();
    let root2 = X509Authority::new_root(lanyard_crypto::provider(), &foreign_td, None, 3600, now).unwrap();
    let endpoint = WebEndpoint::start(foreign_bundle(&[&root1], 1)).await;
    let (url, ca_pem) = (endpoint.url.clone(), endpoint.ca_pem.clone());
    let h = Harness::start_with(move |config, dir| {
        let ca = dir.join("web-ca.pem");
        std::fs::write(&ca, ca_pem).unwrap();
        config.federation.trust_domains = vec![FederatedTrustDomain {
            trust_domain: FOREIGN_TD.into(),
            bundle_endpoint_url: url,
            profile: BundleEndpointProfile::HttpsWeb,
            endpoint_spiffe_id: None,
            bootstrap_bundle_path: None,
            ca_bundle_path: Some(ca),
        }];
    })
    .await;

    // Fetched and stored at start.
    let stored = stored_foreign(&h, FOREIGN_TD, Duration::from_secs(10)).await;
    assert_eq!(stored.sequence, Some(1));
    assert_eq!(stored.x509_authorities, vec![root1.bundle_jwk().unwrap()]);

    // An agent whose entry federates with the foreign trust domain gets the bundle.
    let agent = h.attest().await;
    h.federating_entry(&agent, &[FOREIGN_TD]).await;
    let mut client = h.as_agent(&agent).await;
    let mut stream = open_sync(&mut client).await;
    let first = next_event(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(federated_sequence(&first, FOREIGN_TD), Some(1));
    next_event(&mut stream, Duration::from_secs(5)).await; // snapshot

    // A changed bundle is stored and pushed to the open stream.
    let relationship = Relationship::from_config(&h.server.state.config.federation.trust_domains[0]).unwrap();
    endpoint.serve(200, foreign_bundle(&[&root1, &root2], 2));
    let refreshed = federation::refresh_once(&h.server.state, &relationship).await.unwrap();
    assert!(refreshed.changed);
    assert_eq!(refreshed.sequence, Some(2));
    assert_eq!(
        refreshed.next,
        federation::MIN_REFRESH,
        "a 1 s hint is raised to the minimum"
    );
    let pushed = next_event(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(federated_sequence(&pushed, FOREIGN_TD), Some(2));
    assert_eq!(
        stored_foreign(&h, FOREIGN_TD, Duration::ZERO)
            .await
            .x509_authorities
            .len(),
        2
    );

    // The same sequence again: nothing stored.
    assert!(
        !federation::refresh_once(&h.server.state, &relationship)
            .await
            .unwrap()
            .changed
    );

    // Bad documents and errors are refused; the last good bundle stays.
    let bad_x5c = foreign_bundle(&[&root1], 3).replace(&root1.bundle_jwk().unwrap().x5c.unwrap()[0], "AAAA");
    for (status, body) in [
        (200, "{\"keys\": 5}".to_owned()),
        (200, "not json".to_owned()),
        (200, bad_x5c),
        (500, foreign_bundle(&[&root1], 4)),
    ] {
        endpoint.serve(status, body.clone());
        let err = federation::refresh_once(&h.server.state, &relationship)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                federation::FederationError::InvalidBundle { .. } | federation::FederationError::Fetch { .. }
            ),
            "{err}"
        );
        let kept = stored_foreign(&h, FOREIGN_TD, Duration::ZERO).await;
        assert_eq!(kept.sequence, Some(2), "after {body:?}");
    }

    // Without the private CA, Web PKI validation fails.
    let mut untrusted = h.server.state.config.federation.trust_domains[0].clone();
    untrusted.ca_bundle_path = None;
    let err = federation::refresh_once(&h.server.state, &Relationship::from_config(&untrusted).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, federation::FederationError::Fetch { .. }), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");

    assert_eq!(federation::refresh_interval(None), federation::DEFAULT_REFRESH);
    assert_eq!(federation::refresh_interval(Some(1 << 40)), federation::MAX_REFRESH);
    assert_eq!(federation::refresh_interval(Some(600)), Duration::from_secs(600));
    h.0.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn trust_domains_removed_from_the_configuration_are_no_longer_served() {
    use lanyard_server::config::{BundleEndpointProfile, FederatedTrustDomain};
    const KEPT_TD: &str = "kept.example";

    // Bundles stored while the server federated with both trust domains.
    let h = Harness::start().await;
    for td in [FOREIGN_TD, KEPT_TD] {
        let mut bundle = SpiffeBundle::new(TrustDomain::parse(td).unwrap());
        bundle.sequence = Some(7);
        h.server
            .state
            .stores
            .federated_bundles
            .put_federated_bundle(td, &bundle.to_json(), h.now())
            .await
            .unwrap();
    }

    // Restarted with only KEPT_TD configured (its endpoint unreachable, so its stored
    // bundle stays as the last good one): FOREIGN_TD's bundle is deleted.
    let h = h
        .restart_with(|config, _| {
            config.federation.trust_domains = vec![FederatedTrustDomain {
                trust_domain: KEPT_TD.into(),
                bundle_endpoint_url: "https://127.0.0.1:9/".into(),
                profile: BundleEndpointProfile::HttpsWeb,
                endpoint_spiffe_id: None,
                bootstrap_bundle_path: None,
                ca_bundle_path: None,
            }];
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while h
        .server
        .state
        .stores
        .federated_bundles
        .get_federated_bundle(FOREIGN_TD)
        .await
        .unwrap()
        .is_some()
    {
        assert!(Instant::now() < deadline, "the bundle of {FOREIGN_TD} is still stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        h.server
            .state
            .stores
            .federated_bundles
            .list_federated_bundles()
            .await
            .unwrap(),
        vec![KEPT_TD.to_owned()]
    );

    // An agent whose entry federates with both receives only the configured one.
    let agent = h.attest().await;
    h.federating_entry(&agent, &[FOREIGN_TD, KEPT_TD]).await;
    let mut client = h.as_agent(&agent).await;
    let mut stream = open_sync(&mut client).await;
    let bundles = next_event(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(federated_sequence(&bundles, KEPT_TD), Some(7));
    assert_eq!(federated_sequence(&bundles, FOREIGN_TD), None);
    h.0.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn https_spiffe_federation_between_two_servers() {
    use lanyard_server::config::{BundleEndpointProfile, FederatedTrustDomain};
    use lanyard_server::federation::{self, Relationship};

    // Server B (other.org) serves its bundle on an https_spiffe endpoint.
    let b = Harness::start_with(|config, _| {
        config.trust_domain = FOREIGN_TD.into();
        config.bundle_endpoint_address = Some("127.0.0.1:0".into());
    })
    .await;
    let b_addr = b.server.bundle_endpoint_addr.unwrap();
    let b_bundle = b.server.state.keys.bundle().await.unwrap();
    // B's discovery document advertises the endpoint where it is bound (port 0 resolved).
    let discovery = lanyard_server::endpoints::public::router(b.server.state.clone(), None);
    let response = tower::ServiceExt::oneshot(
        discovery,
        http::Request::get("/.well-known/lanyard-configuration")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["spiffe_bundle_endpoint"], format!("https://{b_addr}/"), "{doc}");

    // Server A (example.org) federates with it, bootstrapped with B's bundle.
    let bootstrap = b_bundle.to_json();
    let a = Harness::start_with(move |config, dir| {
        let path = dir.join("other.org.bundle.json");
        std::fs::write(&path, bootstrap).unwrap();
        config.federation.trust_domains = vec![FederatedTrustDomain {
            trust_domain: FOREIGN_TD.into(),
            bundle_endpoint_url: format!("https://{b_addr}/"),
            profile: BundleEndpointProfile::HttpsSpiffe,
            endpoint_spiffe_id: Some(format!("spiffe://{FOREIGN_TD}/lanyard/server")),
            bootstrap_bundle_path: Some(path),
            ca_bundle_path: None,
        }];
    })
    .await;
    let fetched = stored_foreign(&a, FOREIGN_TD, Duration::from_secs(10)).await;
    assert_eq!(fetched.x509_authorities, b_bundle.x509_authorities);
    assert_eq!(fetched.jwt_authorities, b_bundle.jwt_authorities);
    assert_eq!(fetched.sequence, b_bundle.sequence);

    // Later fetches authenticate B with the bundle fetched last.
    let config = a.server.state.config.federation.trust_domains[0].clone();
    let refreshed = federation::refresh_once(&a.server.state, &Relationship::from_config(&config).unwrap())
        .await
        .unwrap();
    assert!(!refreshed.changed);

    // The endpoint must present the configured SPIFFE ID.
    let mut wrong_id = config.clone();
    wrong_id.endpoint_spiffe_id = Some(format!("spiffe://{FOREIGN_TD}/somebody-else"));
    let err = federation::refresh_once(&a.server.state, &Relationship::from_config(&wrong_id).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, federation::FederationError::Fetch { .. }), "{err}");

    // An endpoint claiming to be A's own server is checked against A's own bundle: B's
    // SVID does not validate there.
    let mut own_td = config.clone();
    own_td.endpoint_spiffe_id = Some(SERVER_ID.into());
    own_td.bootstrap_bundle_path = None;
    let err = federation::refresh_once(&a.server.state, &Relationship::from_config(&own_td).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, federation::FederationError::Fetch { .. }), "{err}");

    a.0.server.shutdown().await.unwrap();
    b.0.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn https_web_federation_against_a_public_tls_endpoint() {
    use lanyard_server::config::{BundleEndpointProfile, FederatedTrustDomain, PublicTlsConfig};

    // A Web PKI stand-in: a CA and a certificate for 127.0.0.1 that server B presents on
    // its public endpoints.
    let ca = node_ca();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let (cert_pem, key_pem, ca_pem) = (cert.pem(), key.serialize_pem(), ca.pem.clone());
    let b = Harness::start_with(move |config, dir| {
        config.trust_domain = FOREIGN_TD.into();
        std::fs::write(dir.join("web.pem"), cert_pem).unwrap();
        std::fs::write(dir.join("web-key.pem"), key_pem).unwrap();
        config.public_tls = Some(PublicTlsConfig {
            cert_path: dir.join("web.pem"),
            key_path: dir.join("web-key.pem"),
        });
    })
    .await;
    assert!(b.server.public_url.starts_with("https://"), "{}", b.server.public_url);
    let b_bundle = b.server.state.keys.bundle().await.unwrap();

    // Server A fetches B's bundle from B's public endpoint over https_web.
    let url = format!("{}/bundle", b.server.public_url);
    let a = Harness::start_with(move |config, dir| {
        std::fs::write(dir.join("web-ca.pem"), ca_pem).unwrap();
        config.federation.trust_domains = vec![FederatedTrustDomain {
            trust_domain: FOREIGN_TD.into(),
            bundle_endpoint_url: url,
            profile: BundleEndpointProfile::HttpsWeb,
            endpoint_spiffe_id: None,
            bootstrap_bundle_path: None,
            ca_bundle_path: Some(dir.join("web-ca.pem")),
        }];
    })
    .await;
    let fetched = stored_foreign(&a, FOREIGN_TD, Duration::from_secs(10)).await;
    assert_eq!(fetched.x509_authorities, b_bundle.x509_authorities);
    assert_eq!(fetched.sequence, b_bundle.sequence);

    a.0.server.shutdown().await.unwrap();
    b.0.server.shutdown().await.unwrap();
}

/// `NewSdCwt`: an SD-CWT about the entry's workload, bound to the given key, with the
/// entry's claims and the server's facts redacted by the entry's policy, signed by a key
/// that is not in the SPIFFE bundle; only for the agent's own entries.
#[tokio::test]
async fn sd_cwt_issuance_follows_the_entry_policy() {
    use lanyard_core::cbor::Value;
    use lanyard_core::cose::{CoseKey, CoseKeySet};
    use lanyard_core::spice::sd_cwt::{
        DisclosureKind, HolderSdCwt, IssuerKey, KbtParams, PresentationContext, SdCwtPolicy, SdCwtVerifier,
    };
    use lanyard_server::model::{AuthorityKind, EntryClaims};

    let h = Harness::start().await;
    let agent = h.attest().await;
    let claims: EntryClaims = serde_json::from_value(serde_json::json!({
        "claims": {"env": "prod", "region": "eu-west-1", "email": "payments@example.org"},
        "always_disclosed": ["env"],
    }))
    .unwrap();
    let spec = EntrySpec {
        spiffe_id: WorkloadId::parse("spiffe://example.org/payments").unwrap(),
        parent_id: SpiffeId::parse(&agent.id).unwrap(),
        selectors: vec![Selector::parse("unix:uid:1000").unwrap()],
        x509_svid_ttl: 0,
        jwt_svid_ttl: 0,
        wit_ttl: 600,
        dns_names: Vec::new(),
        federates_with: Vec::new(),
        admin: false,
        claims,
    };
    let state = &h.server.state;
    let mine = state.stores.entries.create_entry(&spec, h.now()).await.unwrap().id;
    let theirs = h
        .entry(
            "spiffe://example.org/db",
            "spiffe://example.org/lanyard/agent/join_token/bbbbbbbbbbbbbbbb",
        )
        .await;
    let mut client = h.as_agent(&agent).await;
    let provider = lanyard_crypto::provider();
    let holder = lanyard_crypto::KeyPair::generate(Algorithm::ESP256).unwrap();
    let cnf = serde_json::to_string(&lanyard_core::SigningKey::public_jwk(&holder)).unwrap();

    let issued = client
        .new_sd_cwt(pb::NewSdCwtRequest {
            entry_id: mine.clone(),
            cnf_jwk: cnf.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(issued.expires_at - issued.issued_at, 600);

    // The issuer key: an SD-CWT authority, not in the SPIFFE bundle.
    let jwks = state.keys.jwks(AuthorityKind::SdCwt).await.unwrap();
    assert_eq!(jwks.keys.len(), 1);
    let kid = jwks.keys[0].kid.clone().unwrap();
    let bundle = SpiffeBundle::parse(h.td(), &agent.bundle.json).unwrap();
    let in_bundle = bundle
        .jwt_authorities
        .iter()
        .chain(&bundle.wit_authorities)
        .any(|k| k.kid.as_deref() == Some(kid.as_str()));
    assert!(!in_bundle, "the SD-CWT key must not be a SPIFFE trust anchor");
    let set = CoseKeySet::from_jwk_set(&jwks).unwrap();
    let issuer_public = set.keys[0].verifying_key(provider.as_ref(), Algorithm::ES256).unwrap();

    // The holder sees everything: env and trust_domain in the clear, four disclosures.
    let held = HolderSdCwt::receive(
        &issued.token,
        issuer_public.as_ref(),
        &CoseKey::from_jwk(&lanyard_core::SigningKey::public_jwk(&holder)).unwrap(),
        provider.as_ref(),
        &SdCwtPolicy::default(),
        h.now(),
    )
    .unwrap();
    let names: Vec<&str> = held
        .disclosures()
        .iter()
        .filter_map(|d| match d.kind() {
            DisclosureKind::Claim { key, .. } => key.as_text(),
            _ => None,
        })
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["node", "region", "selectors"]);
    // `email` is an OIDC-CWT claim: redacted under its label.
    let decoys = usize::from(lanyard_server::sdcwt::DEFAULT_DECOYS);
    assert_eq!(held.disclosures().len(), 4 + decoys, "and the decoys");
    assert_eq!(
        held.standard_claims().sub.as_deref(),
        Some("spiffe://example.org/payments")
    );
    assert_eq!(held.standard_claims().iss.as_deref(), Some(state.public_url.as_str()));

    // A presentation of `region` only: the verifier sees it and the always-disclosed claims.
    let region =
        held.select(|d| matches!(d.kind(), DisclosureKind::Claim { key, .. } if key.as_text() == Some("region")));
    let kbt = held
        .present(
            &region,
            &KbtParams {
                audience: "https://inventory.example.org",
                issued_at: Some(h.now()),
                ..KbtParams::default()
            },
            &holder,
        )
        .unwrap();
    let verifier = SdCwtVerifier::new(provider.clone(), SdCwtPolicy::default()).with_issuer(
        IssuerKey::new(issuer_public)
            .with_kid(kid.into_bytes())
            .with_issuer(state.public_url.clone()),
    );
    let seen = verifier
        .verify(
            &kbt,
            &PresentationContext {
                audience: "https://inventory.example.org",
                nonce: None,
            },
            h.now(),
        )
        .unwrap();
    let text = |name: &str| seen.claims.get(&Value::text(name)).and_then(Value::as_text);
    assert_eq!(text("env"), Some("prod"));
    assert_eq!(text("region"), Some("eu-west-1"));
    assert_eq!(text("trust_domain"), Some("spiffe://example.org"));
    assert!(text("node").is_none() && seen.claims.get(&Value::text("selectors")).is_none());
    assert!(seen.claims.get_int(179).is_none(), "email stays undisclosed");

    // Refusals: another agent's entry, no key, a private key.
    let err = client
        .new_sd_cwt(pb::NewSdCwtRequest {
            entry_id: theirs,
            cnf_jwk: cnf,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = client
        .new_sd_cwt(pb::NewSdCwtRequest {
            entry_id: mine.clone(),
            cnf_jwk: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let private = holder.private_jwk().unwrap();
    let err = client
        .new_sd_cwt(pb::NewSdCwtRequest {
            entry_id: mine,
            cnf_jwk: serde_json::to_string(&private).unwrap(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}
