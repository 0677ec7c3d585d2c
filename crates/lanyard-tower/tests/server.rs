//! The server layer end to end in-process (`tower::ServiceExt::oneshot`, no sockets):
//! every mode, every failure status and challenge, per-route authorization, and signed
//! responses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use lanyard_core::httpsig::{
    HttpSigPolicy, HttpSigVerifier, RequestParts, RequestSigning, ResponseParts, TargetComponents, sign_request,
};
use lanyard_core::wimse::{WptCarriage, proof_headers};
use lanyard_core::{
    Algorithm, InMemoryReplayCache, SigningKey, SpiffeId, WitPolicy, WitVerifier, WorkloadId, WptParams, create_wpt,
};
use lanyard_testing::{NOW, WitWorld, fixed_clock};
use lanyard_tower::mtls::PeerIdentity;
use lanyard_tower::{
    AuthMode, AuthorizeLayer, Modes, StaticCredentials, UnverifiedTxnToken, VerifiedWorkload, WorkloadAuthConfig,
    WorkloadAuthLayer, WorkloadCredentials,
};
use tower::ServiceExt;

const BASE: &str = "https://orders.example.org";

/// `example.org` with an ES256 WIT issuer.
struct World(WitWorld);

impl std::ops::Deref for World {
    type Target = WitWorld;

    fn deref(&self) -> &WitWorld {
        &self.0
    }
}

struct Caller {
    key: Arc<dyn SigningKey>,
    wit: String,
}

impl World {
    fn new() -> World {
        World(WitWorld::new("example.org", Algorithm::ES256, None))
    }

    fn caller(&self, path: &str) -> Caller {
        let key = self.provider.generate_key(Algorithm::EdDSA).unwrap();
        let id = WorkloadId::parse(&format!("spiffe://example.org{path}")).unwrap();
        let wit = self.issuer.issue(&id, &key.public_jwk(), NOW).unwrap();
        Caller { key, wit }
    }

    fn config(&self) -> WorkloadAuthConfig {
        let mut config = WorkloadAuthConfig::new(BASE);
        config.clock = fixed_clock();
        config.modes = Modes::ALL;
        config
    }

    fn app(&self, config: WorkloadAuthConfig) -> Router {
        let billing = WorkloadId::parse("spiffe://example.org/billing").unwrap();
        Router::new()
            .route("/whoami", get(whoami).post(whoami))
            .route("/context", get(context).post(context))
            .route("/admin", post(whoami).route_layer(AuthorizeLayer::workloads([billing])))
            .route(
                "/partners",
                get(whoami).route_layer(AuthorizeLayer::trust_domains(["partner.example"])),
            )
            .layer(WorkloadAuthLayer::new(self.store.clone(), config))
    }
}

async fn whoami(w: VerifiedWorkload, body: String) -> String {
    format!("{} {:?} {}", w.id, w.mode, body.len())
}

/// What a handler sees of the request's context: the bound Txn-Token (unverified) and
/// how its headers print.
async fn context(w: VerifiedWorkload, txn: Option<UnverifiedTxnToken>, headers: http::HeaderMap) -> String {
    format!(
        "{} txn={} headers={headers:?}",
        w.id,
        txn.as_ref().map_or("-", UnverifiedTxnToken::as_unverified_str)
    )
}

fn wpt_request(caller: &Caller, world: &World, method: &str, path: &str, aud_path: &str) -> Request<Body> {
    let params = WptParams {
        wit: &caller.wit,
        audience: &format!("{BASE}{aud_path}"),
        lifetime: 60,
        ..Default::default()
    };
    let wpt = create_wpt(caller.key.as_ref(), &params, NOW, world.provider.as_ref()).unwrap();
    let mut b = Request::builder().method(method).uri(path);
    for (n, v) in proof_headers(&caller.wit, &wpt, WptCarriage::Authorization) {
        b = b.header(n, v);
    }
    b.body(Body::empty()).unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn kind(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).unwrap()["kind"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn wit_and_wpt() {
    let world = World::new();
    let app = world.app(world.config());
    let caller = world.caller("/billing");
    let (status, _, body) = send(&app, wpt_request(&caller, &world, "GET", "/whoami?x=1", "/whoami")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "spiffe://example.org/billing Wpt 0");

    // The proof was for another path.
    let (status, headers, body) = send(&app, wpt_request(&caller, &world, "GET", "/whoami", "/elsewhere")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "WPT");
    assert_eq!(kind(&body), "wrong_audience");
    assert_eq!(headers["content-type"], "application/problem+json");

    // The same proof twice.
    let req = wpt_request(&caller, &world, "GET", "/whoami", "/whoami");
    let again = Request::builder()
        .uri("/whoami")
        .header(
            "workload-identity-token",
            req.headers()["workload-identity-token"].clone(),
        )
        .header("authorization", req.headers()["authorization"].clone())
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, req).await.0, StatusCode::OK);
    let (status, _, body) = send(&app, again).await;
    assert_eq!((status, kind(&body).as_str()), (StatusCode::UNAUTHORIZED, "replay"));

    // No credentials at all.
    let (status, headers, body) = send(&app, Request::get("/whoami").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "WPT");
    assert!(headers.contains_key("accept-signature"));
    assert_eq!(kind(&body), "missing_credentials");

    // A WIT from an untrusted issuer.
    let stranger = World::new();
    let outsider = stranger.caller("/billing");
    let (status, _, body) = send(&app, wpt_request(&outsider, &stranger, "GET", "/whoami", "/whoami")).await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "bad_signature")
    );

    // The legacy header is refused unless switched on.
    let params = WptParams {
        wit: &caller.wit,
        audience: &format!("{BASE}/whoami"),
        lifetime: 60,
        ..Default::default()
    };
    let wpt = create_wpt(caller.key.as_ref(), &params, NOW, world.provider.as_ref()).unwrap();
    let legacy = || {
        let mut b = Request::get("/whoami");
        for (n, v) in proof_headers(&caller.wit, &wpt, WptCarriage::LegacyHeader) {
            b = b.header(n, v);
        }
        b.body(Body::empty()).unwrap()
    };
    let (status, headers, body) = send(&app, legacy()).await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "wpt_legacy_header")
    );
    assert_eq!(headers["www-authenticate"], "WPT");
    let mut config = world.config();
    config.carriage.accept_legacy_header = true;
    assert_eq!(send(&world.app(config), legacy()).await.0, StatusCode::OK);
}

fn signed_request(
    caller: &Caller,
    world: &World,
    path: &str,
    body: &'static str,
    sign_response: bool,
) -> (Request<Body>, String) {
    signed_request_in(TargetComponents::default(), caller, world, path, body, sign_response)
}

fn signed_request_in(
    target: TargetComponents,
    caller: &Caller,
    world: &World,
    path: &str,
    body: &'static str,
    sign_response: bool,
) -> (Request<Body>, String) {
    let parts = RequestParts {
        method: "POST",
        target: path,
        headers: vec![("content-type", b"application/json")],
        ..RequestParts::default()
    };
    let opts = RequestSigning {
        wit: &caller.wit,
        audience: &format!("{BASE}{}", path.split('?').next().unwrap()),
        lifetime: 60,
        sign_response,
        target,
    };
    let signed = sign_request(
        caller.key.as_ref(),
        &parts,
        body.as_bytes(),
        &opts,
        NOW,
        world.provider.as_ref(),
    )
    .unwrap();
    let mut b = Request::post(path).header("content-type", "application/json");
    for (n, v) in signed.headers {
        b = b.header(n, v);
    }
    (b.body(Body::from(body)).unwrap(), signed.nonce)
}

#[tokio::test]
async fn http_signatures_and_signed_responses() {
    let world = World::new();
    let server = world.caller("/orders");
    let mut config = world.config();
    let creds = WorkloadCredentials::new(server.wit.clone(), server.key.clone(), world.provider.as_ref()).unwrap();
    config.response_credentials = Some(Arc::new(StaticCredentials(Arc::new(creds))));
    let app = world.app(config);
    let caller = world.caller("/billing");

    let (req, _) = signed_request(&caller, &world, "/whoami?page=2", r#"{"a":1}"#, false);
    let (status, headers, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "spiffe://example.org/billing HttpSignature 7");
    assert!(
        !headers.contains_key("signature"),
        "responses are signed only when asked"
    );

    // A body that does not match Content-Digest.
    let (req, _) = signed_request(&caller, &world, "/whoami", r#"{"a":1}"#, false);
    let (parts, _) = req.into_parts();
    let tampered = Request::from_parts(parts, Body::from(r#"{"a":2}"#));
    let (status, headers, body) = send(&app, tampered).await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (StatusCode::BAD_REQUEST, "digest_mismatch")
    );
    assert!(headers.contains_key("accept-signature"));
    assert!(!headers.contains_key("www-authenticate"));

    // The client asks for a signed response and can verify it.
    let (req, nonce) = signed_request(&caller, &world, "/whoami", r#"{"a":1}"#, true);
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let headers: Vec<(&str, &[u8])> = parts.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
    let response = ResponseParts { status: 200, headers };
    let request = RequestParts {
        method: "POST",
        target: "/whoami",
        ..RequestParts::default()
    };
    let verifier = HttpSigVerifier::new(
        WitVerifier::new(world.store.clone(), WitPolicy::wimse()),
        HttpSigPolicy::default(),
        Arc::new(InMemoryReplayCache::new(64)),
    );
    let verified = verifier
        .verify_response(&response, &bytes, &request, &nonce, NOW)
        .unwrap();
    assert_eq!(verified.wit.sub.as_str(), "spiffe://example.org/orders");

    // Without credentials to sign with, a requested signed response is a 501, never an unsigned 200.
    let app = world.app(world.config());
    let (req, _) = signed_request(&caller, &world, "/whoami", "{}", true);
    let (status, _, body) = send(&app, req).await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (StatusCode::NOT_IMPLEMENTED, "response_not_signed")
    );
}

/// draft-ietf-wimse-wpt-02 section 2.2: a WPT cannot share the request with a Bearer or DPoP
/// token, which is refused (401, WWW-Authenticate: WPT), never used.
#[tokio::test]
async fn a_bearer_or_dpop_token_beside_a_wpt_is_refused() {
    let world = World::new();
    let app = world.app(world.config());
    let caller = world.caller("/billing");
    for (name, value) in [
        ("authorization", "Bearer at-123"),
        ("authorization", "DPoP at-123"),
        ("dpop", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.sig"),
    ] {
        let mut req = wpt_request(&caller, &world, "GET", "/whoami", "/whoami");
        req.headers_mut().append(name, value.parse().unwrap());
        let (status, headers, body) = send(&app, req).await;
        assert_eq!(
            (status, kind(&body).as_str()),
            (StatusCode::UNAUTHORIZED, "access_token_with_wpt"),
            "{name}: {value}"
        );
        assert_eq!(headers["www-authenticate"], "WPT");
    }
    // The bearer token first and the WPT second is the same request.
    let wpt = wpt_request(&caller, &world, "GET", "/whoami", "/whoami");
    let mut req = Request::get("/whoami").header("authorization", "Bearer at-123");
    for name in ["workload-identity-token", "authorization"] {
        req = req.header(name, wpt.headers()[name].clone());
    }
    let (status, _, body) = send(&app, req.body(Body::empty()).unwrap()).await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "access_token_with_wpt")
    );

    // A wpt-01 proof with ath: refused by default, accepted only with the legacy switch,
    // where the bearer token is bound but still not what authenticates the caller.
    let params = WptParams {
        wit: &caller.wit,
        audience: &format!("{BASE}/whoami"),
        lifetime: 60,
        access_token: Some("at-123"),
        wpt01: true,
        ..Default::default()
    };
    let wpt01 = create_wpt(caller.key.as_ref(), &params, NOW, world.provider.as_ref()).unwrap();
    let with_ath = || {
        Request::get("/whoami")
            .header("workload-identity-token", caller.wit.as_str())
            .header("authorization", format!("WPT {wpt01}"))
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, body) = send(&app, with_ath()).await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "forbidden_claim")
    );
    let mut config = world.config();
    config.carriage.accept_legacy_header = true;
    let legacy_app = world.app(config);
    let legacy = Request::get("/whoami")
        .header("workload-identity-token", caller.wit.as_str())
        .header("workload-proof-token", wpt01.as_str())
        .header("authorization", "Bearer at-123")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(&legacy_app, legacy).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "spiffe://example.org/billing Wpt 0")
    );
}

/// The bound Txn-Token reaches the handler (unverified, clearly named so); an unbound one
/// fails the proof; credential headers print as `Sensitive`.
#[tokio::test]
async fn txn_token_reaches_the_handler_and_credentials_stay_hidden() {
    let world = World::new();
    let app = world.app(world.config());
    let caller = world.caller("/billing");
    let txn = "eyJ0eXAiOiJ0eG50b2tlbitqd3QifQ.eyJ0eG4iOiI5NyJ9.sig";
    let params = WptParams {
        wit: &caller.wit,
        audience: &format!("{BASE}/context"),
        lifetime: 60,
        txn_token: Some(txn),
        ..Default::default()
    };
    let wpt = create_wpt(caller.key.as_ref(), &params, NOW, world.provider.as_ref()).unwrap();
    let req = Request::get("/context")
        .header("workload-identity-token", caller.wit.as_str())
        .header("authorization", format!("WPT {wpt}"))
        .header("txn-token", txn)
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.starts_with(&format!("spiffe://example.org/billing txn={txn} ")),
        "{body}"
    );
    for secret in [caller.wit.as_str(), wpt.as_str(), txn] {
        assert!(!body[body.find("headers=").unwrap()..].contains(secret), "{body}");
    }
    assert!(body.contains("\"authorization\": Sensitive"), "{body}");

    // Without a Txn-Token there is none to hand on.
    let (status, _, body) = send(&app, wpt_request(&caller, &world, "GET", "/context", "/context")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("txn=- "), "{body}");
    // A Txn-Token the proof does not bind (no tth) is refused.
    let mut req = wpt_request(&caller, &world, "GET", "/context", "/context");
    req.headers_mut().insert("txn-token", txn.parse().unwrap());
    let (status, _, body) = send(&app, req).await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "missing_claim")
    );

    // Signed requests: a covered Txn-Token is handed on the same way.
    let parts = RequestParts {
        method: "GET",
        target: "/context",
        headers: vec![("txn-token", txn.as_bytes())],
        ..RequestParts::default()
    };
    let opts = RequestSigning {
        wit: &caller.wit,
        audience: &format!("{BASE}/context"),
        lifetime: 60,
        sign_response: false,
        target: TargetComponents::default(),
    };
    let signed = sign_request(caller.key.as_ref(), &parts, b"", &opts, NOW, world.provider.as_ref()).unwrap();
    let mut req = Request::get("/context").header("txn-token", txn);
    for (n, v) in signed.headers {
        req = req.header(n, v);
    }
    let (status, _, body) = send(&app, req.body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(&format!("txn={txn} ")), "{body}");
}

/// draft-ietf-wimse-http-signature-07: the -06 `@request-target` form is refused unless
/// the layer's compatibility switch is on; a signed response answers in the request's form.
#[tokio::test]
async fn http_signature_06_only_behind_the_switch() {
    let world = World::new();
    let server = world.caller("/orders");
    let creds = WorkloadCredentials::new(server.wit.clone(), server.key.clone(), world.provider.as_ref()).unwrap();
    let mut config = world.config();
    config.response_credentials = Some(Arc::new(StaticCredentials(Arc::new(creds))));
    let caller = world.caller("/billing");
    let legacy = || signed_request_in(TargetComponents::RequestTarget, &caller, &world, "/whoami", "{}", true);

    let (status, headers, body) = send(&world.app(config.clone()), legacy().0).await;
    assert_eq!(
        (status, kind(&body).as_str()),
        (StatusCode::BAD_REQUEST, "signature_legacy_target")
    );
    let challenge = headers["accept-signature"].to_str().unwrap();
    assert!(challenge.contains("\"@path\" \"@query\""), "{challenge}");

    config.http_sig_policy.accept_request_target = true;
    let (req, nonce) = legacy();
    let resp = world.app(config).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let input = resp.headers()["signature-input"].to_str().unwrap().to_owned();
    assert!(input.contains("\"@request-target\";req"), "{input}");
    assert!(input.contains(&format!("wimse-req-nonce=\"{nonce}\"")), "{input}");
}

#[tokio::test]
async fn per_route_authorization() {
    let world = World::new();
    let app = world.app(world.config());
    let billing = world.caller("/billing");
    let other = world.caller("/reports");
    assert_eq!(
        send(&app, wpt_request(&billing, &world, "POST", "/admin", "/admin"))
            .await
            .0,
        StatusCode::OK
    );
    let (status, _, body) = send(&app, wpt_request(&other, &world, "POST", "/admin", "/admin")).await;
    assert_eq!((status, kind(&body).as_str()), (StatusCode::FORBIDDEN, "forbidden"));
    let (status, _, _) = send(&app, wpt_request(&billing, &world, "GET", "/partners", "/partners")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn mtls_peer_identity() {
    let world = World::new();
    let mut req = Request::get("/whoami").body(Body::empty()).unwrap();
    req.extensions_mut().insert(PeerIdentity {
        id: SpiffeId::parse("spiffe://example.org/batch").unwrap(),
    });
    let (status, _, body) = send(&world.app(world.config()), req).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "spiffe://example.org/batch Mtls 0")
    );

    // With mTLS disabled, a peer identity is not enough.
    let mut config = world.config();
    config.modes.mtls = false;
    let mut req = Request::get("/whoami").body(Body::empty()).unwrap();
    req.extensions_mut().insert(PeerIdentity {
        id: SpiffeId::parse("spiffe://example.org/batch").unwrap(),
    });
    assert_eq!(send(&world.app(config), req).await.0, StatusCode::UNAUTHORIZED);
    let _ = AuthMode::Mtls;
}

#[tokio::test]
async fn nested_routers_check_the_original_path() {
    // The layer sits on a router that is nested under /api: axum strips the prefix, but
    // the proof and the signature name the path the client sent.
    let world = World::new();
    let inner = Router::new()
        .route("/whoami", get(whoami).post(whoami))
        .layer(WorkloadAuthLayer::new(world.store.clone(), world.config()));
    let app = Router::new().nest("/api", inner);
    let caller = world.caller("/billing");
    let (status, _, body) = send(&app, wpt_request(&caller, &world, "GET", "/api/whoami", "/api/whoami")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = send(&app, wpt_request(&caller, &world, "GET", "/api/whoami", "/whoami")).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a proof for the stripped path must not pass"
    );
    let (req, _) = signed_request(&caller, &world, "/api/whoami", "{}", false);
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
