//! The agent end to end: a real server (in process, SQLite in a tempdir), a real agent
//! attested with a join token, and this test process as the workload, calling the SPIFFE
//! Workload API over the agent's Unix socket with the generated client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_agent::{AgentConfig, RunningAgent};
use lanyard_api::workload as wl;
use lanyard_api::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use lanyard_core::{
    JwtSvidPolicy, JwtSvidVerifier, SpiffeBundle, TrustDomain, TrustStore, UnixTime, WitPolicy, WitVerifier,
};
use lanyard_server::ServerConfig;
use lanyard_server::model::EntrySpec;
use lanyard_testing::harness::{self, Harness, TRUST_DOMAIN as TD, entry_spec, wait_for};
use lanyard_x509::{Usage, VerifyOptions, X509Bundle, X509BundleSet, verify_svid_chain};
use rustls::pki_types::CertificateDer;
use tonic::Code;
use tonic::transport::Channel;

/// The one agent of each test: its files under `agent/`, health on an ephemeral port.
const AGENT: &str = "agent";

fn agent_config(world: &Harness, join_token: Option<String>) -> AgentConfig {
    AgentConfig {
        health_address: "127.0.0.1:0".into(),
        ..world.agent_config(AGENT, join_token)
    }
}

async fn client(socket: &Path) -> SpiffeWorkloadApiClient<Channel> {
    let address = lanyard_workload::EndpointAddress::Unix(socket.to_owned());
    SpiffeWorkloadApiClient::new(lanyard_workload::connect_channel(&address).await.unwrap())
}

fn jwt_request(audience: &[&str], spiffe_id: &str) -> tonic::Request<wl::JwtsvidRequest> {
    with_header(wl::JwtsvidRequest {
        audience: audience.iter().map(|a| (*a).to_owned()).collect(),
        spiffe_id: spiffe_id.to_owned(),
    })
}

fn with_header<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("workload.spiffe.io", "true".parse().unwrap());
    request
}

fn split_der(mut bytes: &[u8]) -> Vec<CertificateDer<'static>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (rest, _) = x509_parser::parse_x509_certificate(bytes).unwrap();
        out.push(CertificateDer::from(bytes[..bytes.len() - rest.len()].to_vec()));
        bytes = rest;
    }
    out
}

/// Opens a FetchX509SVID stream (the call itself must succeed).
async fn x509_stream(api: &mut SpiffeWorkloadApiClient<Channel>) -> tonic::Streaming<wl::X509svidResponse> {
    api.fetch_x509svid(with_header(wl::X509svidRequest {}))
        .await
        .unwrap()
        .into_inner()
}

async fn next_x509(stream: &mut tonic::Streaming<wl::X509svidResponse>, within: Duration) -> wl::X509svidResponse {
    tokio::time::timeout(within, stream.message())
        .await
        .expect("no FetchX509SVID message in time")
        .unwrap()
        .expect("stream ended")
}

async fn start_agent(world: &Harness, join_token: Option<String>) -> RunningAgent {
    harness::start_agent(agent_config(world, join_token)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_api_end_to_end() {
    let world = Harness::start().await;
    let (token, agent_id, uid_selector) = world.enroll().await;
    let web = world
        .entry("spiffe://example.org/web", &agent_id, &[&uid_selector])
        .await;
    // An entry this process does not match.
    world
        .entry("spiffe://example.org/other", &agent_id, &["unix:uid:4294967294"])
        .await;

    let agent = start_agent(&world, Some(token)).await;
    assert_eq!(agent.manager.agent_id().as_str(), agent_id);
    wait_for(&agent, "the first SVID", |s| s.svids.contains_key(&web)).await;
    let mut api = client(&world.socket(AGENT)).await;

    // The security header is required on every call.
    let err = api.fetch_x509svid(wl::X509svidRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = api
        .fetch_jwtsvid(wl::JwtsvidRequest {
            audience: vec!["a".into()],
            spiffe_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    // X.509-SVID: only the matching entry, verifiable against the server's bundle, with
    // a key that belongs to the leaf.
    let bundle = world.bundle().await;
    let x509_bundles = X509BundleSet::new().with(X509Bundle::from_spiffe_bundle(&bundle).unwrap());
    let mut stream = x509_stream(&mut api).await;
    let first = next_x509(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(first.svids.len(), 1, "{first:?}");
    let svid = &first.svids[0];
    assert_eq!(svid.spiffe_id, "spiffe://example.org/web");
    let chain = split_der(&svid.x509_svid);
    let verified = verify_svid_chain(
        &chain,
        &x509_bundles,
        world.now(),
        &VerifyOptions::for_usage(Usage::Any),
    )
    .unwrap();
    assert_eq!(verified.spiffe_id.as_str(), "spiffe://example.org/web");
    let held = lanyard_x509::X509Svid {
        chain: chain.clone(),
        key: Some(rustls::pki_types::PrivatePkcs8KeyDer::from(svid.x509_svid_key.clone())),
    };
    held.check().unwrap();
    // The `bundle` field is the trust domain's X.509 authorities, as concatenated DER.
    assert_eq!(
        split_der(&svid.bundle),
        x509_bundles
            .get(&TrustDomain::parse(TD).unwrap())
            .unwrap()
            .authorities()
    );

    // A new entry reaches the open stream in well under a second.
    let created = Instant::now();
    let api2 = world
        .entry("spiffe://example.org/api", &agent_id, &[&uid_selector])
        .await;
    let second = next_x509(&mut stream, Duration::from_secs(2)).await;
    let elapsed = created.elapsed();
    assert_eq!(second.svids.len(), 2, "{second:?}");
    assert!(elapsed < Duration::from_secs(1), "propagation took {elapsed:?}");
    let ids: Vec<&str> = second.svids.iter().map(|s| s.spiffe_id.as_str()).collect();
    assert_eq!(ids, ["spiffe://example.org/api", "spiffe://example.org/web"]);

    // Bundles, keyed by the trust domain's SPIFFE ID.
    let mut bundles = api
        .fetch_x509_bundles(with_header(wl::X509BundlesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let x509 = bundles.message().await.unwrap().unwrap();
    assert_eq!(x509.bundles.keys().collect::<Vec<_>>(), ["spiffe://example.org"]);
    let mut jwt_bundles = api
        .fetch_jwt_bundles(with_header(wl::JwtBundlesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let jwks = jwt_bundles.message().await.unwrap().unwrap();
    let jwks: serde_json::Value = serde_json::from_slice(&jwks.bundles["spiffe://example.org"]).unwrap();
    assert!(!jwks["keys"].as_array().unwrap().is_empty(), "{jwks}");

    // JWT-SVIDs: one per identity, verifiable, cached per audience.
    let jwt = api
        .fetch_jwtsvid(jwt_request(&["payments"], "spiffe://example.org/web"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(jwt.svids.len(), 1);
    let store = Arc::new(TrustStore::new(lanyard_crypto::provider()));
    store.set_bundle(&bundle).unwrap();
    let verifier = JwtSvidVerifier::new(Arc::clone(&store), JwtSvidPolicy::default());
    let checked = verifier.verify(&jwt.svids[0].svid, "payments", world.now()).unwrap();
    assert_eq!(checked.sub.as_str(), "spiffe://example.org/web");
    let again = api
        .fetch_jwtsvid(jwt_request(&["payments"], "spiffe://example.org/web"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.svids[0].svid, jwt.svids[0].svid, "served from the cache");
    let all = api
        .fetch_jwtsvid(jwt_request(&["payments"], ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.svids.len(), 2);
    // Asking for an identity the caller is not entitled to is refused.
    let err = api
        .fetch_jwtsvid(jwt_request(&["payments"], "spiffe://example.org/other"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err = api.fetch_jwtsvid(jwt_request(&[], "")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    // ValidateJWTSVID accepts the token for its audience and refuses another audience.
    let validated = api
        .validate_jwtsvid(with_header(wl::ValidateJwtsvidRequest {
            audience: "payments".into(),
            svid: jwt.svids[0].svid.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(validated.spiffe_id, "spiffe://example.org/web");
    assert!(validated.claims.unwrap().fields.contains_key("exp"));
    let err = api
        .validate_jwtsvid(with_header(wl::ValidateJwtsvidRequest {
            audience: "elsewhere".into(),
            svid: jwt.svids[0].svid.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    // WIT-SVIDs: a token bound to the private key handed out with it.
    let mut wits = api
        .fetch_witsvid(with_header(wl::WitsvidRequest {
            spiffe_id: "spiffe://example.org/web".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let wit = tokio::time::timeout(Duration::from_secs(5), wits.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(wit.svids.len(), 1);
    let wit_verifier = WitVerifier::new(Arc::clone(&store), WitPolicy::wimse());
    let checked = wit_verifier.verify(&wit.svids[0].wit_svid, world.now()).unwrap();
    assert_eq!(checked.sub.as_str(), "spiffe://example.org/web");
    let private = lanyard_core::Jwk::from_json(wit.svids[0].wit_svid_key.as_bytes()).unwrap();
    let key = lanyard_crypto::KeyPair::from_jwk(&private).unwrap();
    let provider = lanyard_crypto::provider();
    assert_eq!(
        lanyard_core::SigningKey::public_jwk(&key)
            .thumbprint(provider.as_ref())
            .unwrap(),
        checked.cnf_jwk.thumbprint(provider.as_ref()).unwrap()
    );
    let mut wit_bundles = api
        .fetch_wit_bundles(with_header(wl::WitBundlesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let wb = wit_bundles.message().await.unwrap().unwrap();
    assert!(wb.bundles["spiffe://example.org"].contains("\"keys\""));

    // Renewing the agent SVID stores it, reconnects with it, and reopens the entry
    // stream: a new entry still reaches the workload.
    let svid_file = world.dir.path().join("agent/data/agent_svid.pem");
    let before = std::fs::read(&svid_file).unwrap();
    agent.manager.renew_once().await.unwrap();
    assert_ne!(std::fs::read(&svid_file).unwrap(), before, "the renewed SVID is stored");
    let api3 = world
        .entry("spiffe://example.org/after-renewal", &agent_id, &[&uid_selector])
        .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let update = next_x509(&mut stream, Duration::from_secs(5)).await;
        if update
            .svids
            .iter()
            .any(|s| s.spiffe_id == "spiffe://example.org/after-renewal")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no update after renewal");
    }

    // Health: ready.
    let health = agent.health_addr.unwrap();
    let body = reqwest_like_get(health, "/readyz").await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");

    // Deleting the caller's entries closes its stream with PermissionDenied.
    world.server.state.stores.entries.delete_entry(&web).await.unwrap();
    world.server.state.stores.entries.delete_entry(&api2).await.unwrap();
    world.server.state.stores.entries.delete_entry(&api3).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match tokio::time::timeout(Duration::from_secs(3), stream.message())
            .await
            .unwrap()
        {
            Ok(Some(update)) => assert!(update.svids.len() < 3, "{update:?}"),
            Err(status) => {
                assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
                break;
            }
            Ok(None) => panic!("stream ended without an error"),
        }
        assert!(Instant::now() < deadline);
    }
    // And a new call without identity is refused.
    let err = api
        .fetch_x509svid(with_header(wl::X509svidRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // A restarted agent resumes with its stored SVID (the join token is spent).
    drop(stream);
    agent.run_until(async {}).await;
    let again = start_agent(&world, None).await;
    assert_eq!(again.manager.agent_id().as_str(), agent_id);
    again.run_until(async {}).await;
}

/// A minimal HTTP/1.1 GET, returning the raw response.
async fn reqwest_like_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    out
}

/// The server goes away: the agent keeps serving what it holds; the server comes back on
/// the same address: the agent reconnects by itself and rotates SVIDs on schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_server_outage_and_rotates() {
    let world = Harness::start().await;
    let (token, agent_id, uid_selector) = world.enroll().await;
    // A short-lived SVID: rotated 50–60 % into its 6 s life.
    let spec = EntrySpec {
        x509_svid_ttl: 6,
        ..entry_spec("spiffe://example.org/short", &agent_id, &[&uid_selector])
    };
    let entry = world.create(&spec).await;
    let agent = start_agent(&world, Some(token)).await;
    wait_for(&agent, "the first SVID", |s| s.svids.contains_key(&entry)).await;

    let mut api = client(&world.socket(AGENT)).await;
    let mut stream = x509_stream(&mut api).await;
    let first = next_x509(&mut stream, Duration::from_secs(5)).await;
    let rotated = next_x509(&mut stream, Duration::from_secs(8)).await;
    assert_ne!(
        first.svids[0].x509_svid, rotated.svids[0].x509_svid,
        "the SVID was rotated"
    );
    assert_ne!(
        first.svids[0].x509_svid_key, rotated.svids[0].x509_svid_key,
        "with a new key"
    );

    // Stop the server: cached credentials are still served.
    let agent_address = world.server.agent_addr;
    let data_dir = world.dir.path().join("server");
    let Harness { server, dir } = world;
    server.shutdown().await.unwrap();
    let mut api = client(&dir.path().join("agent-socket/api.sock")).await;
    let mut stream = x509_stream(&mut api).await;
    let cached = next_x509(&mut stream, Duration::from_secs(2)).await;
    assert_eq!(cached.svids.len(), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while agent.manager.health().server_connected {
        assert!(Instant::now() < deadline, "the agent did not notice the outage");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Bring it back on the same address and data: the agent reconnects on its own.
    let config = ServerConfig {
        trust_domain: TD.into(),
        data_dir,
        public_address: "127.0.0.1:0".into(),
        agent_address: agent_address.to_string(),
        ..ServerConfig::default()
    };
    let server = lanyard_server::start(config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    while !agent.manager.health().server_connected {
        assert!(Instant::now() < deadline, "the agent did not reconnect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And it keeps rotating with the restarted server.
    let fresh = next_x509(&mut stream, Duration::from_secs(10)).await;
    assert_ne!(fresh.svids[0].x509_svid, cached.svids[0].x509_svid);
    agent.run_until(async {}).await;
    server.shutdown().await.unwrap();
}

/// A foreign trust domain's bundle (one X.509 authority, one JWT key).
fn foreign_bundle(name: &str, now: UnixTime) -> String {
    let td = TrustDomain::parse(name).unwrap();
    let ca = lanyard_x509::X509Authority::new_root(lanyard_crypto::provider(), &td, None, 3600, now).unwrap();
    let mut bundle = SpiffeBundle::new(td);
    bundle.sequence = Some(1);
    bundle.x509_authorities.push(ca.bundle_jwk().unwrap());
    let key = lanyard_crypto::KeyPair::generate(lanyard_core::Algorithm::ES256)
        .unwrap()
        .with_kid(format!("{name}-jwt"));
    let mut jwk = lanyard_core::SigningKey::public_jwk(&key);
    jwk.key_use = Some("jwt-svid".into());
    bundle.jwt_authorities.push(jwk);
    bundle.to_json()
}

/// Entries that federate with a foreign trust domain give their workloads its bundle, in
/// the X.509-SVID response and the bundle streams; other workloads do not get it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_bundles_reach_the_entitled_workloads() {
    let world = Harness::start().await;
    let now = world.now();
    let store = &world.server.state.stores.federated_bundles;
    store
        .put_federated_bundle("partner.org", &foreign_bundle("partner.org", now), now)
        .await
        .unwrap();
    let (token, agent_id, uid_selector) = world.enroll().await;
    let spec = EntrySpec {
        federates_with: vec!["partner.org".into()],
        ..entry_spec("spiffe://example.org/federated", &agent_id, &[&uid_selector])
    };
    let entry = world.create(&spec).await;
    let agent = start_agent(&world, Some(token)).await;
    wait_for(&agent, "the SVID", |s| s.svids.contains_key(&entry)).await;

    let mut api = client(&world.socket(AGENT)).await;
    let mut stream = x509_stream(&mut api).await;
    let x509 = next_x509(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(
        x509.federated_bundles.keys().collect::<Vec<_>>(),
        ["spiffe://partner.org"]
    );
    assert_eq!(split_der(&x509.federated_bundles["spiffe://partner.org"]).len(), 1);
    let bundles = api
        .fetch_x509_bundles(with_header(wl::X509BundlesRequest {}))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap();
    let mut keys: Vec<&String> = bundles.bundles.keys().collect();
    keys.sort();
    assert_eq!(keys, ["spiffe://example.org", "spiffe://partner.org"]);
    let jwt = api
        .fetch_jwt_bundles(with_header(wl::JwtBundlesRequest {}))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap();
    let partner: serde_json::Value = serde_json::from_slice(&jwt.bundles["spiffe://partner.org"]).unwrap();
    assert_eq!(partner["keys"][0]["kid"], "partner.org-jwt");

    // A foreign bundle that changes reaches the open stream.
    let mut changed: serde_json::Value = serde_json::from_str(&foreign_bundle("partner.org", now)).unwrap();
    changed["spiffe_sequence"] = 2.into();
    store
        .put_federated_bundle("partner.org", &changed.to_string(), now)
        .await
        .unwrap();
    let update = next_x509(&mut stream, Duration::from_secs(5)).await;
    assert_ne!(
        update.federated_bundles["spiffe://partner.org"],
        x509.federated_bundles["spiffe://partner.org"]
    );
    agent.run_until(async {}).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_svid_audiences_are_bounded_and_mints_budgeted_per_uid() {
    let world = Harness::start().await;
    let (token, agent_id, uid_selector) = world.enroll().await;
    let web = world
        .entry("spiffe://example.org/web", &agent_id, &[&uid_selector])
        .await;
    let agent = lanyard_agent::start(
        AgentConfig {
            mint_burst_per_uid: 4,
            mints_per_minute_per_uid: 1,
            ..agent_config(&world, Some(token))
        },
        lanyard_crypto::provider(),
    )
    .await
    .unwrap();
    wait_for(&agent, "the first SVID", |s| s.svids.contains_key(&web)).await;
    let mut api = client(&world.socket(AGENT)).await;
    let store = Arc::new(TrustStore::new(lanyard_crypto::provider()));
    store.set_bundle(&world.bundle().await).unwrap();
    let verifier = JwtSvidVerifier::new(store, JwtSvidPolicy::default());

    // Several audiences: one JWT-SVID valid for each (JWT-SVID.md §3.2).
    let both = api
        .fetch_jwtsvid(jwt_request(&["db", "cache"], "spiffe://example.org/web"))
        .await
        .unwrap()
        .into_inner();
    for aud in ["db", "cache"] {
        let checked = verifier.verify(&both.svids[0].svid, aud, world.now()).unwrap();
        assert_eq!(checked.aud, ["cache", "db"]);
    }

    // Unbounded audiences are refused before any mint, as InvalidArgument (not
    // Unavailable, which clients retry).
    let huge = "a".repeat(100_000);
    let many: Vec<String> = (0..17).map(|i| format!("aud-{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    for audience in [vec![huge.as_str()], many] {
        let err = api
            .fetch_jwtsvid(jwt_request(&audience, "spiffe://example.org/web"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }

    // The uid's budget: 4 mints at once (one spent above), then ResourceExhausted for a new
    // audience; cached audiences are still served.
    for aud in ["a1", "a2", "a3"] {
        api.fetch_jwtsvid(jwt_request(&[aud], "spiffe://example.org/web"))
            .await
            .unwrap();
    }
    let err = api
        .fetch_jwtsvid(jwt_request(&["a4"], "spiffe://example.org/web"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let cached = api
        .fetch_jwtsvid(jwt_request(&["a1"], "spiffe://example.org/web"))
        .await
        .unwrap();
    assert_eq!(cached.into_inner().svids.len(), 1);
}
