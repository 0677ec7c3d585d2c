//! End to end: a real server, a real agent, and two services (`orders` and `billing`) that
//! take every credential from the agent's Workload API (no files, no keys of their own)
//! and call each other, first with WIT + Workload Proof Token, then with mutual TLS; and a
//! workload presenting part of the SD-CWT it got through the agent to an SD-CWT service.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_core::cose::{CoseKey, CoseKeySet};
use lanyard_core::spice::sd_cwt::{DisclosureKind, HolderSdCwt, KbtParams, SdCwtPolicy};
use lanyard_core::wimse::WptCarriage;
use lanyard_core::{SpiffeId, WorkloadId};
use lanyard_server::model::EntryClaims;
use lanyard_testing::harness::{self, Harness};
use lanyard_tower::sdcwt::{DisclosedClaims, SdCwtAuthConfig, SdCwtLayer, issuer_keys_from_jwks};
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
    let h = Harness::start().await;
    let token = h.join_token().await;
    let td = lanyard_core::TrustDomain::parse("example.org").unwrap();
    let agent_id = lanyard_api::node::join_token_agent_id(&td, &token, &*lanyard_crypto::provider()).unwrap();

    // Both services run in this process, so both entries select it; each service asks for
    // its own identity. The intruder's entry selects another user.
    let same_process = format!("unix:uid:{}", harness::my_uid());
    for (id, selector) in [
        (ORDERS, same_process.as_str()),
        (BILLING, same_process.as_str()),
        (INTRUDER, "unix:uid:4294967294"),
    ] {
        h.entry(id, agent_id.as_str(), &[selector]).await;
    }
    let socket = h.socket("agent");
    let agent = harness::start_agent(h.agent_config("agent", Some(token))).await;

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
    let wpt_only = Modes::NONE.with_wpt();
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
    let mtls_only = Modes::NONE.with_mtls();
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
    h.server.shutdown().await.unwrap();
}

const PAYMENTS: &str = "spiffe://example.org/payments";
const INVENTORY: &str = "https://inventory.example.org";

async fn disclosed(claims: DisclosedClaims) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::Value::Object(claims.to_json().unwrap()))
}

/// The "done when": the server issues an SD-CWT to a workload, which gets it
/// through the agent's Workload API extension, presents a subset to a service built on
/// `lanyard-tower`'s `SdCwtLayer`, and the handler sees only the disclosed claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_presents_a_subset_of_its_sd_cwt_from_the_agent() {
    let claims: EntryClaims = serde_json::from_value(serde_json::json!({
        "claims": {"env": "prod", "region": "eu-west-1", "owner": "team-payments"},
        "always_disclosed": ["env"],
    }))
    .unwrap();
    let h = Harness::start().await;
    let (token, agent_id, selector) = h.enroll().await;
    let mut spec = harness::entry_spec(PAYMENTS, &agent_id, &[&selector]);
    spec.claims = claims;
    h.create(&spec).await;
    let socket = h.socket("agent");
    let agent = harness::start_agent(h.agent_config("agent", Some(token))).await;
    let workload_api = WorkloadApiClient::connect(&EndpointAddress::Unix(socket))
        .await
        .unwrap();
    let provider = lanyard_crypto::provider();

    // The workload fetches its SD-CWT and holder key through the agent.
    let fetched = workload_api
        .fetch_sd_cwt(Some(&SpiffeId::parse(PAYMENTS).unwrap()))
        .await
        .unwrap();
    assert!(
        !format!("{fetched:?}").contains(&fetched.key_jwk),
        "Debug hides the key"
    );
    let holder = lanyard_crypto::KeyPair::from_jwk(&fetched.key().unwrap()).unwrap();
    // A second fetch is answered from the agent's cache without asking the server: the
    // same token and key (a new mint would carry a new `cti`, new salts and a new key).
    let again = workload_api
        .fetch_sd_cwt(Some(&SpiffeId::parse(PAYMENTS).unwrap()))
        .await
        .unwrap();
    assert_eq!(again.token, fetched.token);
    assert_eq!(again.key_jwk, fetched.key_jwk);

    // The service trusts the server's SD-CWT issuer keys (a JWK Set) for its public URL.
    let jwks = h
        .server
        .state
        .keys
        .jwks(lanyard_server::model::AuthorityKind::SdCwt)
        .await
        .unwrap();
    let issuers = issuer_keys_from_jwks(&jwks, Some(&h.server.state.public_url), provider.as_ref()).unwrap();
    let service = Router::new().route("/claims", get(disclosed)).layer(SdCwtLayer::new(
        provider.clone(),
        issuers,
        SdCwtAuthConfig::new(INVENTORY),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/claims", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, service).await });

    // The holder validates what it got (issuer key from the same set) and discloses
    // `region` only.
    let issuer_public = CoseKeySet::from_jwk_set(&jwks).unwrap().keys[0]
        .verifying_key(provider.as_ref(), lanyard_core::Algorithm::ES256)
        .unwrap();
    let now = h.server.state.clock.now();
    let held = HolderSdCwt::receive(
        &fetched.token,
        issuer_public.as_ref(),
        &CoseKey::from_jwk(&lanyard_core::SigningKey::public_jwk(&holder)).unwrap(),
        provider.as_ref(),
        &SdCwtPolicy::default(),
        now,
    )
    .unwrap();
    let region =
        held.select(|d| matches!(d.kind(), DisclosureKind::Claim { key, .. } if key.as_text() == Some("region")));
    let present = |audience: &str| {
        let params = KbtParams {
            audience,
            issued_at: Some(now),
            ..KbtParams::default()
        };
        URL_SAFE_NO_PAD.encode(held.present(&region, &params, &holder).unwrap())
    };
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let answer = http
        .get(&url)
        .header("authorization", format!("SD-KBT {}", present(INVENTORY)))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let seen: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(seen["sub"], PAYMENTS);
    assert_eq!(seen["env"], "prod");
    assert_eq!(seen["region"], "eu-west-1");
    assert_eq!(seen["trust_domain"], "spiffe://example.org");
    for hidden in ["owner", "node", "selectors"] {
        assert!(seen.get(hidden).is_none(), "{hidden} was not disclosed: {seen}");
    }

    // The same presentation made for another service is refused.
    let answer = http
        .get(&url)
        .header(
            "authorization",
            format!("SD-KBT {}", present("https://elsewhere.example.org")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let problem: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(problem["kind"], "wrong_audience");

    // An identity the caller does not have is refused by the agent.
    let err = workload_api
        .fetch_sd_cwt(Some(&SpiffeId::parse(ORDERS).unwrap()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not entitled"), "{err}");

    task.abort();
    agent.run_until(async {}).await;
    h.server.shutdown().await.unwrap();
}
