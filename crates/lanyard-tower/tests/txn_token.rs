//! `TxnTokenLayer` in-process: a verified Txn-Token reaches the handler (claims and the
//! token to forward), and each refusal has its status and kind; together with the WIT+WPT
//! layer, the proof binds the same token the layer verifies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use lanyard_core::oauth::{
    AccessTokenClaims, Audience, Scope, TxnTokenClaims, TxnTokenPolicy, VerificationKeys, issue_access_token,
    issue_txn_token,
};
use lanyard_core::wimse::{WptCarriage, proof_headers};
use lanyard_core::{
    Algorithm, FixedClock, JwkSet, KeyUse, SigningKey, TrustStore, UnixTime, WitIssuer, WorkloadId, WptParams,
    create_wpt,
};
use lanyard_crypto::KeyPair;
use lanyard_tower::{
    ForwardableTxnToken, Modes, TxnTokenKeys, TxnTokenLayer, VerifiedTxn, VerifiedWorkload, WorkloadAuthConfig,
    WorkloadAuthLayer,
};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

const NOW: UnixTime = UnixTime(1_800_000_000);
const BASE: &str = "https://tools.example.org";

fn tts_key() -> KeyPair {
    KeyPair::generate(Algorithm::ES256).unwrap().with_kid("tts-1")
}

fn keys(key: &KeyPair) -> TxnTokenKeys {
    let set = JwkSet {
        keys: vec![key.public_jwk()],
    };
    TxnTokenKeys::new(VerificationKeys::from_jwks(lanyard_crypto::provider().as_ref(), "tts", &set).unwrap())
}

fn claims() -> TxnTokenClaims {
    TxnTokenClaims {
        iss: None,
        iat: NOW,
        exp: NOW.plus(60),
        aud: "example.org".into(),
        txn: "txn-42".into(),
        sub: "alice".into(),
        scope: Scope::parse("calendar.read").unwrap(),
        req_wl: "spiffe://example.org/agent".into(),
        tctx: Some(Map::from_iter([("action".to_owned(), json!("list"))])),
        rctx: None,
        extra: Map::new(),
    }
}

async fn handler(txn: VerifiedTxn, forward: ForwardableTxnToken) -> String {
    let c = txn.claims();
    format!("{} {} {} {}", c.txn, c.sub, c.req_wl, forward.as_str().len())
}

async fn optional(txn: Option<VerifiedTxn>) -> String {
    txn.map_or_else(|| "none".to_owned(), |t| t.claims().txn.clone())
}

fn layer(key: &KeyPair) -> TxnTokenLayer {
    TxnTokenLayer::new(TxnTokenPolicy::new("example.org"), keys(key)).with_clock(Arc::new(FixedClock(NOW)))
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn get_with(token: Option<&str>) -> Request<Body> {
    let mut b = Request::get("/tool");
    if let Some(token) = token {
        b = b.header("txn-token", token);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn verified_txn_tokens_reach_the_handler_and_refusals_have_kinds() {
    let key = tts_key();
    let app = Router::new().route("/tool", get(handler)).layer(layer(&key));
    let token = issue_txn_token(&key, "tts-1", &claims()).unwrap();
    let (status, body) = send(&app, get_with(Some(&token))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        Value::String(format!("txn-42 alice spiffe://example.org/agent {}", token.len()))
    );

    let mut other_domain = claims();
    other_domain.aud = "other.org".into();
    let mut expired = claims();
    expired.iat = UnixTime(NOW.as_secs() - 160);
    expired.exp = UnixTime(NOW.as_secs() - 100);
    let stranger = tts_key();
    let access_token = issue_access_token(
        &key,
        "tts-1",
        &AccessTokenClaims {
            iss: "https://as.example.org".into(),
            sub: "alice".into(),
            aud: Audience::one("example.org"),
            client_id: "agent".into(),
            scope: None,
            iat: NOW,
            exp: NOW.plus(60),
            nbf: None,
            jti: "j".into(),
            cnf: None,
            act: None,
            extra: Map::new(),
        },
    )
    .unwrap();
    let cases = [
        (None, StatusCode::FORBIDDEN, "missing_txn_token"),
        (
            Some(issue_txn_token(&key, "tts-1", &other_domain).unwrap()),
            StatusCode::FORBIDDEN,
            "wrong_audience",
        ),
        (
            Some(issue_txn_token(&stranger, "tts-1", &claims()).unwrap()),
            StatusCode::FORBIDDEN,
            "bad_signature",
        ),
        (
            Some(issue_txn_token(&key, "tts-1", &expired).unwrap()),
            StatusCode::FORBIDDEN,
            "expired",
        ),
        (Some(access_token), StatusCode::FORBIDDEN, "typ_confusion"),
        (Some(format!("{token}, {token}")), StatusCode::BAD_REQUEST, "header"),
    ];
    for (presented, status_expected, kind) in cases {
        let (status, body) = send(&app, get_with(presented.as_deref())).await;
        assert_eq!((status, body["kind"].as_str()), (status_expected, Some(kind)), "{body}");
    }
    // Two Txn-Token fields.
    let two = Request::get("/tool")
        .header("txn-token", &token)
        .header("txn-token", &token)
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, two).await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (StatusCode::BAD_REQUEST, Some("header"))
    );

    // Optional: no token passes, a bad one still refuses.
    let app = Router::new()
        .route("/tool", get(optional))
        .layer(layer(&key).optional());
    assert_eq!(send(&app, get_with(None)).await, (StatusCode::OK, json!("none")));
    assert_eq!(
        send(&app, get_with(Some(&token))).await,
        (StatusCode::OK, json!("txn-42"))
    );
    let forged = issue_txn_token(&stranger, "tts-1", &claims()).unwrap();
    assert_eq!(send(&app, get_with(Some(&forged))).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn keys_can_be_replaced_while_serving() {
    let old = tts_key();
    let new = tts_key();
    let handle = keys(&old);
    let app = Router::new().route("/tool", get(handler)).layer(
        TxnTokenLayer::new(TxnTokenPolicy::new("example.org"), handle.clone()).with_clock(Arc::new(FixedClock(NOW))),
    );
    let by_new = issue_txn_token(&new, "tts-1", &claims()).unwrap();
    assert_eq!(send(&app, get_with(Some(&by_new))).await.0, StatusCode::FORBIDDEN);
    let set = JwkSet {
        keys: vec![new.public_jwk()],
    };
    handle.replace(VerificationKeys::from_jwks(lanyard_crypto::provider().as_ref(), "tts", &set).unwrap());
    assert_eq!(send(&app, get_with(Some(&by_new))).await.0, StatusCode::OK);
}

/// With the WIT+WPT layer outside it: the WPT's `tth` binds the Txn-Token the layer
/// verifies, and the handler sees both the caller and the transaction.
#[tokio::test]
async fn the_wpt_binds_the_verified_txn_token() {
    let provider = lanyard_crypto::provider();
    let wit_key = provider.generate_key(Algorithm::ES256).unwrap();
    let store = Arc::new(TrustStore::new(provider.clone()));
    store
        .add_key("example.org", KeyUse::WitSvid, &wit_key.public_jwk())
        .unwrap();
    let issuer = WitIssuer::new(provider.clone(), wit_key, None, None, 3600);
    let caller_key = provider.generate_key(Algorithm::EdDSA).unwrap();
    let caller = WorkloadId::parse("spiffe://example.org/agent").unwrap();
    let wit = issuer.issue(&caller, &caller_key.public_jwk(), NOW).unwrap();

    let key = tts_key();
    let mut config = WorkloadAuthConfig::new(BASE);
    config.clock = Arc::new(FixedClock(NOW));
    config.modes = Modes::ALL;
    async fn both(w: VerifiedWorkload, txn: VerifiedTxn) -> String {
        format!("{} for {} in {}", w.id, txn.claims().sub, txn.claims().txn)
    }
    let app = Router::new()
        .route("/tool", get(both))
        .layer(layer(&key))
        .layer(WorkloadAuthLayer::new(store, config));
    let token = issue_txn_token(&key, "tts-1", &claims()).unwrap();
    let request = |bound: &str| {
        let params = WptParams {
            wit: &wit,
            audience: &format!("{BASE}/tool"),
            lifetime: 60,
            txn_token: Some(bound),
            ..Default::default()
        };
        let wpt = create_wpt(caller_key.as_ref(), &params, NOW, provider.as_ref()).unwrap();
        let mut b = Request::get("/tool").header("txn-token", &token);
        for (n, v) in proof_headers(&wit, &wpt, WptCarriage::Authorization) {
            b = b.header(n, v);
        }
        b.body(Body::empty()).unwrap()
    };
    let (status, body) = send(&app, request(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!("spiffe://example.org/agent for alice in txn-42"));
    // A proof bound to another Txn-Token is refused before the Txn-Token layer runs.
    let (status, _) = send(&app, request("a.b.c")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
