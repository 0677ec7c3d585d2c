//! End to end: a real server, a real agent, and two services (`orders` and `billing`) that
//! take every credential from the agent's Workload API (no files, no keys of their own)
//! and call each other, first with WIT + Workload Proof Token, then with mutual TLS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use lanyard_agent::AgentConfig;
use lanyard_core::wimse::WptCarriage;
use lanyard_core::{SpiffeId, WorkloadId};
use lanyard_server::ServerConfig;
use lanyard_server::model::{EntrySpec, Selector};
use lanyard_tower::{
    AuthorizeLayer, ClientMode, Modes, VerifiedWorkload, WorkloadApiCredentialSource, WorkloadApiTrust,
    WorkloadApiX509Source, WorkloadAuthConfig, WorkloadAuthLayer, WorkloadAuthMiddleware,
};
use lanyard_workload::{EndpointAddress, WorkloadApiClient};
use lanyard_x509::Authorizer;
use tokio::net::TcpListener;

const ORDERS: &str = "spiffe://example.org/orders";
const BILLING: &str = "spiffe://example.org/billing";
const INTRUDER: &str = "spiffe://example.org/intruder";

async fn whoami(caller: VerifiedWorkload) -> String {
    format!("{} via {}", caller.id.as_str(), caller.mode.as_str())
}

/// A service answering `GET /whoami` to `allowed` only, authenticated with `modes`.
fn app(trust: &WorkloadApiTrust, base: &str, modes: Modes, allowed: &str) -> Router {
    let mut config = WorkloadAuthConfig::new(base);
    config.modes = modes;
    Router::new()
        .route(
            "/whoami",
            get(whoami).route_layer(AuthorizeLayer::workloads([WorkloadId::parse(allowed).unwrap()])),
        )
        .layer(WorkloadAuthLayer::new(trust.store(), config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_authenticate_each_other_with_credentials_from_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let server = lanyard_server::start(ServerConfig {
        data_dir: dir.path().join("server"),
        public_address: "127.0.0.1:0".into(),
        agent_address: "127.0.0.1:0".into(),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    std::fs::write(
        dir.path().join("bundle.json"),
        server.state.keys.bundle().await.unwrap().to_json(),
    )
    .unwrap();
    let (token, _) = lanyard_server::endpoints::admin::new_join_token(&server.state, 600)
        .await
        .unwrap();
    let td = lanyard_core::TrustDomain::parse("example.org").unwrap();
    let agent_id = lanyard_api::node::join_token_agent_id(&td, &token, &*lanyard_crypto::provider()).unwrap();

    // Both services run in this process, so both entries select it; each service asks for
    // its own identity. The intruder's entry selects another user.
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    let now = server.state.clock.now();
    for (id, selector) in [
        (ORDERS, format!("unix:uid:{uid}")),
        (BILLING, format!("unix:uid:{uid}")),
        (INTRUDER, "unix:uid:4294967294".to_owned()),
    ] {
        let spec = EntrySpec {
            spiffe_id: WorkloadId::parse(id).unwrap(),
            parent_id: agent_id.clone(),
            selectors: vec![Selector::parse(&selector).unwrap()],
            x509_svid_ttl: 600,
            jwt_svid_ttl: 300,
            wit_ttl: 600,
            dns_names: vec![],
            federates_with: vec![],
            admin: false,
            claims: Default::default(),
        };
        server.state.stores.entries.create_entry(&spec, now).await.unwrap();
    }
    let socket = dir.path().join("agent/api.sock");
    let agent = lanyard_agent::start(
        AgentConfig {
            server_address: server.agent_addr.to_string(),
            trust_bundle_path: Some(dir.path().join("bundle.json")),
            join_token: Some(token),
            data_dir: dir.path().join("agent/data"),
            socket_path: socket.clone(),
            health_address: String::new(),
            ..AgentConfig::default()
        },
        lanyard_crypto::provider(),
    )
    .await
    .unwrap();

    let workload_api = WorkloadApiClient::connect(&EndpointAddress::Unix(socket))
        .await
        .unwrap();
    let id = |s: &str| Some(SpiffeId::parse(s).unwrap());
    // The agent pre-mints X.509-SVIDs right after sync; wait for both.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while agent.manager.store().current().svids.len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no SVIDs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // ---- WIT + WPT ------------------------------------------------------------------
    let trust = WorkloadApiTrust::start(workload_api.clone()).await.unwrap();
    let billing_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let billing_url = format!("http://{}", billing_listener.local_addr().unwrap());
    let wpt_only = Modes {
        wpt: true,
        http_signature: false,
        mtls: false,
    };
    let billing_app = app(&trust, &billing_url, wpt_only, ORDERS);
    let billing_task = tokio::spawn(async move { axum::serve(billing_listener, billing_app).await });
    let orders_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let orders_url = format!("http://{}", orders_listener.local_addr().unwrap());
    let orders_app = app(&trust, &orders_url, wpt_only, BILLING);
    let orders_task = tokio::spawn(async move { axum::serve(orders_listener, orders_app).await });

    let wpt_client = |source: WorkloadApiCredentialSource| {
        reqwest_middleware::ClientBuilder::new(reqwest::Client::builder().no_proxy().build().unwrap())
            .with(WorkloadAuthMiddleware::new(
                Arc::new(source),
                ClientMode::Wpt {
                    carriage: WptCarriage::Authorization,
                },
            ))
            .build()
    };
    let as_orders = wpt_client(
        WorkloadApiCredentialSource::start(workload_api.clone(), id(ORDERS))
            .await
            .unwrap(),
    );
    let as_billing = wpt_client(
        WorkloadApiCredentialSource::start(workload_api.clone(), id(BILLING))
            .await
            .unwrap(),
    );

    let answer = as_orders.get(format!("{billing_url}/whoami")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), format!("{ORDERS} via wpt"));
    let answer = as_billing.get(format!("{orders_url}/whoami")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), format!("{BILLING} via wpt"));
    // billing may not call itself; no credentials at all is a 401.
    let answer = as_billing.get(format!("{billing_url}/whoami")).send().await.unwrap();
    assert_eq!(answer.status(), 403);
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{billing_url}/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    // The intruder's identity is not this process's to take.
    let err = WorkloadApiCredentialSource::start(workload_api.clone(), id(INTRUDER))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not entitled"), "{err}");
    billing_task.abort();
    orders_task.abort();

    // ---- mutual TLS -----------------------------------------------------------------
    let orders_x509 = WorkloadApiX509Source::start(workload_api.clone(), id(ORDERS))
        .await
        .unwrap();
    let billing_x509 = WorkloadApiX509Source::start(workload_api.clone(), id(BILLING))
        .await
        .unwrap();
    let mtls_only = Modes {
        wpt: false,
        http_signature: false,
        mtls: true,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let billing_url = format!("https://{}", listener.local_addr().unwrap());
    let tls = lanyard_x509::server_config(
        billing_x509.source(),
        Authorizer::OneOf(vec![
            SpiffeId::parse(ORDERS).unwrap(),
            SpiffeId::parse(BILLING).unwrap(),
        ]),
    )
    .unwrap();
    let billing_app = app(&trust, &billing_url, mtls_only, ORDERS);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let billing_task = tokio::spawn(lanyard_tower::mtls::serve(
        listener,
        Arc::new(tls),
        billing_app,
        async {
            let _ = stopped.await;
        },
    ));
    let mtls_client = |source: &WorkloadApiX509Source| {
        let tls =
            lanyard_x509::client_config(source.source(), Authorizer::Exact(SpiffeId::parse(BILLING).unwrap())).unwrap();
        reqwest::Client::builder()
            .no_proxy()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap()
    };
    let answer = mtls_client(&orders_x509)
        .get(format!("{billing_url}/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), format!("{ORDERS} via mtls"));
    // billing's own SVID passes TLS but not the route's authorization.
    let answer = mtls_client(&billing_x509)
        .get(format!("{billing_url}/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    let _ = stop.send(());
    billing_task.await.unwrap().unwrap();

    agent.run_until(async {}).await;
    server.shutdown().await.unwrap();
}
