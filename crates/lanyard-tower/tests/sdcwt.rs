//! The SD-CWT presentation layer in-process (`tower::ServiceExt::oneshot`): a handler sees
//! only the disclosed claims, through either carriage; every rejection is a 401 with
//! `WWW-Authenticate: SD-KBT` and its own `kind`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use lanyard_core::cbor::Value;
use lanyard_core::cose::{CoseKey, CoseKeySet};
use lanyard_core::cwt::Confirmation;
use lanyard_core::spice::sd_cwt::{
    DisclosureKind, HolderSdCwt, KbtParams, RandomSalts, SdCwtIssuer, SdCwtPolicy, TO_BE_REDACTED_TAG,
};
use lanyard_core::{Algorithm, CryptoProvider, FixedClock, JwkSet, SigningKey, UnixTime};
use lanyard_tower::sdcwt::{
    DisclosedClaims, InMemoryNonceSource, NoncePolicy, NonceSource, SdCwtAuthConfig, SdCwtLayer, issuer_keys,
    issuer_keys_from_jwks, nonce_endpoint,
};
use tower::ServiceExt;

const NOW: UnixTime = UnixTime(1_800_000_000);
const AUDIENCE: &str = "https://inventory.example.org";
const ISSUER: &str = "https://lanyard.example.org";

fn tbr(key: &str) -> Value {
    Value::Tag(TO_BE_REDACTED_TAG, Box::new(Value::text(key)))
}

struct World {
    provider: Arc<dyn CryptoProvider>,
    issuer_key: Arc<dyn SigningKey>,
    holder: Arc<dyn SigningKey>,
    held: HolderSdCwt,
}

impl World {
    fn new() -> World {
        let provider = lanyard_crypto::provider();
        let issuer_key = provider.generate_key(Algorithm::ESP256).unwrap();
        let holder = provider.generate_key(Algorithm::ESP256).unwrap();
        let now = NOW.as_secs() as i64;
        let cnf = Confirmation::Key(CoseKey::from_jwk(&holder.public_jwk()).unwrap()).to_value();
        let claims = Value::map([
            (Value::int(1), Value::text(ISSUER)),
            (Value::int(2), Value::text("spiffe://example.org/billing")),
            (Value::int(4), Value::int(now + 3600)),
            (Value::int(6), Value::int(now - 60)),
            (Value::int(8), cnf),
            (Value::text("team"), Value::text("payments")),
            (tbr("env"), Value::text("prod")),
            (tbr("region"), Value::text("eu-west-1")),
            (tbr("owner"), Value::text("alice@example.org")),
        ]);
        let issued = SdCwtIssuer::new(provider.clone(), issuer_key.clone())
            .with_kid(b"sdcwt-1".to_vec())
            .issue(&claims, &mut RandomSalts::new(provider.clone()))
            .unwrap();
        let issuer_public = provider
            .verifying_key(&issuer_key.public_jwk(), issuer_key.algorithm())
            .unwrap();
        let held = HolderSdCwt::receive(
            &issued.to_vec(),
            issuer_public.as_ref(),
            &CoseKey::from_jwk(&holder.public_jwk()).unwrap(),
            provider.as_ref(),
            &SdCwtPolicy::default(),
            NOW,
        )
        .unwrap();
        World {
            provider,
            issuer_key,
            holder,
            held,
        }
    }

    fn key_set(&self) -> CoseKeySet {
        let mut key = CoseKey::from_jwk(&self.issuer_key.public_jwk()).unwrap();
        key.kid = Some(b"sdcwt-1".to_vec());
        key.alg = Some(Algorithm::ESP256);
        CoseKeySet { keys: vec![key] }
    }

    fn config(&self) -> SdCwtAuthConfig {
        let mut config = SdCwtAuthConfig::new(AUDIENCE);
        config.clock = Arc::new(FixedClock(NOW));
        config
    }

    fn app(&self, config: SdCwtAuthConfig) -> Router {
        let issuers = issuer_keys(&self.key_set(), Some(ISSUER), self.provider.as_ref()).unwrap();
        Router::new()
            .route("/claims", get(show).post(show))
            .layer(SdCwtLayer::new(self.provider.clone(), issuers, config))
    }

    /// An SD-KBT disclosing the named claims.
    fn present(&self, names: &[&str], audience: &str, cnonce: Option<&[u8]>) -> Vec<u8> {
        let selection = self.held.select(|d| match d.kind() {
            DisclosureKind::Claim { key, .. } => key.as_text().is_some_and(|k| names.contains(&k)),
            _ => false,
        });
        assert_eq!(selection.len(), names.len());
        let params = KbtParams {
            audience,
            issued_at: Some(NOW),
            cnonce,
            ..KbtParams::default()
        };
        self.held.present(&selection, &params, self.holder.as_ref()).unwrap()
    }
}

async fn show(claims: DisclosedClaims) -> String {
    let mut json = claims.to_json().unwrap();
    json.insert("disclosed".into(), claims.disclosed_count().into());
    serde_json::Value::Object(json).to_string()
}

fn with_header(kbt: &[u8]) -> Request<Body> {
    Request::get("/claims")
        .header("authorization", format!("SD-KBT {}", URL_SAFE_NO_PAD.encode(kbt)))
        .body(Body::empty())
        .unwrap()
}

async fn call(app: Router, request: Request<Body>) -> (StatusCode, Option<String>, serde_json::Value) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, challenge, serde_json::from_slice(&body).unwrap())
}

/// Asserts a 401 with the SD-KBT challenge and `kind`.
async fn refused(app: Router, request: Request<Body>, kind: &str) {
    let (status, challenge, body) = call(app, request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(challenge.as_deref(), Some("SD-KBT"));
    assert_eq!(body["kind"], kind, "{body}");
}

#[tokio::test]
async fn handler_sees_only_the_disclosed_claims_in_the_header() {
    let w = World::new();
    let kbt = w.present(&["env"], AUDIENCE, None);
    let (status, _, body) = call(w.app(w.config()), with_header(&kbt)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["env"], "prod");
    assert_eq!(body["team"], "payments");
    assert_eq!(body["disclosed"], 1);
    assert!(body.get("region").is_none() && body.get("owner").is_none(), "{body}");
}

#[tokio::test]
async fn body_carriage_and_case_insensitive_scheme() {
    let w = World::new();
    let kbt = w.present(&["region", "owner"], AUDIENCE, None);
    let request = Request::post("/claims")
        .header("content-type", "application/kb+cwt")
        .body(Body::from(kbt.clone()))
        .unwrap();
    let (status, _, body) = call(w.app(w.config()), request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["region"], "eu-west-1");
    assert_eq!(body["owner"], "alice@example.org");
    assert!(body.get("env").is_none());

    let request = Request::get("/claims")
        .header("authorization", format!("sd-kbt {}", URL_SAFE_NO_PAD.encode(&kbt)))
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(w.app(w.config()), request).await.0, StatusCode::OK);
}

#[tokio::test]
async fn carriage_rejections() {
    let w = World::new();
    let kbt = w.present(&["env"], AUDIENCE, None);
    let app = || w.app(w.config());

    // Nothing, or another scheme.
    refused(
        app(),
        Request::get("/claims").body(Body::empty()).unwrap(),
        "missing_credentials",
    )
    .await;
    let bearer = Request::get("/claims")
        .header("authorization", "Bearer abc")
        .body(Body::empty())
        .unwrap();
    refused(app(), bearer, "missing_credentials").await;

    // Two fields.
    let encoded = format!("SD-KBT {}", URL_SAFE_NO_PAD.encode(&kbt));
    let two = Request::get("/claims")
        .header("authorization", &encoded)
        .header("authorization", &encoded)
        .body(Body::empty())
        .unwrap();
    refused(app(), two, "invalid_request").await;

    // Header and body.
    let both = Request::post("/claims")
        .header("authorization", &encoded)
        .header("content-type", "application/kb+cwt")
        .body(Body::from(kbt.clone()))
        .unwrap();
    refused(app(), both, "invalid_request").await;

    // Padded or standard base64.
    let padded = Request::get("/claims")
        .header("authorization", format!("SD-KBT {}==", URL_SAFE_NO_PAD.encode(&kbt)))
        .body(Body::empty())
        .unwrap();
    refused(app(), padded, "invalid_request").await;

    // Not CBOR at all.
    refused(app(), with_header(b""), "cbor_truncated").await;

    // Body carriage switched off: the body is not looked at.
    let mut config = w.config();
    config.carriage.body = false;
    let body_only = Request::post("/claims")
        .header("content-type", "application/kb+cwt")
        .body(Body::from(kbt))
        .unwrap();
    refused(w.app(config), body_only, "missing_credentials").await;
}

#[tokio::test]
async fn size_limit_in_both_carriages() {
    let w = World::new();
    let kbt = w.present(&["env", "region", "owner"], AUDIENCE, None);
    let mut config = w.config();
    config.policy.max_size = kbt.len() - 1;
    refused(w.app(config.clone()), with_header(&kbt), "too_large").await;
    let request = Request::post("/claims")
        .header("content-type", "application/kb+cwt")
        .body(Body::from(kbt))
        .unwrap();
    refused(w.app(config), request, "too_large").await;
}

#[tokio::test]
async fn verification_rejections() {
    let w = World::new();

    // Another audience.
    let other = w.present(&["env"], "https://elsewhere.example.org", None);
    refused(w.app(w.config()), with_header(&other), "wrong_audience").await;

    // An issuer the service does not trust.
    let stranger = World::new();
    let foreign = stranger.present(&["env"], AUDIENCE, None);
    refused(w.app(w.config()), with_header(&foreign), "bad_signature").await;

    // The trusted key, but for another issuer name (from a JWK Set).
    let kbt = w.present(&["env"], AUDIENCE, None);
    let jwks: JwkSet = w.key_set().to_jwk_set();
    let issuers = issuer_keys_from_jwks(&jwks, Some("https://other-issuer.example"), w.provider.as_ref()).unwrap();
    let app = Router::new()
        .route("/claims", get(show))
        .layer(SdCwtLayer::new(w.provider.clone(), issuers, w.config()));
    refused(app, with_header(&kbt), "sd_issuer_mismatch").await;

    // An SD-KBT older than the policy's maximum age.
    let mut late = w.config();
    late.clock = Arc::new(FixedClock(NOW.plus(600)));
    refused(w.app(late), with_header(&kbt), "expired").await;

    // A disclosure the SD-CWT has no digest for: the presentation of another SD-CWT's
    // disclosure under this SD-KBT's signature cannot be made, so tamper with a byte of
    // the SD-KBT instead (the holder signature no longer verifies).
    let mut tampered = kbt.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    refused(w.app(w.config()), with_header(&tampered), "kbt_bad_signature").await;
}

#[tokio::test]
async fn nonce_policy() {
    let w = World::new();
    let nonces = Arc::new(InMemoryNonceSource::new(w.provider.clone(), 120, 16));
    let mut config = w.config();
    config.nonce = NoncePolicy::Required(nonces.clone());

    // No cnonce, or one the service never issued.
    let none = w.present(&["env"], AUDIENCE, None);
    refused(w.app(config.clone()), with_header(&none), "sd_nonce_mismatch").await;
    let unknown = w.present(&["env"], AUDIENCE, Some(b"0123456789abcdef"));
    refused(w.app(config.clone()), with_header(&unknown), "sd_nonce_mismatch").await;

    // An issued nonce works once.
    let nonce = nonces.issue(NOW).unwrap();
    let kbt = w.present(&["env"], AUDIENCE, Some(&nonce));
    assert_eq!(call(w.app(config.clone()), with_header(&kbt)).await.0, StatusCode::OK);
    refused(w.app(config.clone()), with_header(&kbt), "sd_nonce_mismatch").await;

    // A forged presentation does not burn the nonce.
    let nonce = nonces.issue(NOW).unwrap();
    let wrong_aud = w.present(&["env"], "https://elsewhere.example.org", Some(&nonce));
    refused(w.app(config.clone()), with_header(&wrong_aud), "wrong_audience").await;
    let kbt = w.present(&["env"], AUDIENCE, Some(&nonce));
    assert_eq!(call(w.app(config.clone()), with_header(&kbt)).await.0, StatusCode::OK);

    // An expired nonce.
    let nonce = nonces.issue(NOW.minus(300)).unwrap();
    let kbt = w.present(&["env"], AUDIENCE, Some(&nonce));
    refused(w.app(config), with_header(&kbt), "sd_nonce_mismatch").await;
}

#[tokio::test]
async fn extractor_without_the_layer_is_a_server_error() {
    let app = Router::new().route("/claims", post(show));
    let response = app
        .oneshot(Request::post("/claims").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[test]
fn issuer_keys_refuses_an_empty_set() {
    let provider = lanyard_crypto::provider();
    let err = issuer_keys(&CoseKeySet::default(), None, provider.as_ref()).unwrap_err();
    assert_eq!(err.kind(), "invalid_key");
}

#[test]
fn nonces_are_redeemed_once_expire_and_are_bounded() {
    let source = InMemoryNonceSource::new(lanyard_crypto::provider(), 60, 2);
    let a = source.issue(NOW).unwrap();
    assert_eq!(a.len(), 16);
    assert!(source.redeem(&a, NOW.plus(59)));
    assert!(!source.redeem(&a, NOW.plus(59)), "once only");
    let b = source.issue(NOW).unwrap();
    assert!(!source.redeem(&b, NOW.plus(60)), "expired at issue + ttl");
    assert!(!source.redeem(b"never issued", NOW));
    // At capacity, the oldest outstanding nonce is forgotten.
    let c = source.issue(NOW).unwrap();
    let d = source.issue(NOW.plus(1)).unwrap();
    let e = source.issue(NOW.plus(2)).unwrap();
    assert!(!source.redeem(&c, NOW.plus(2)));
    assert!(source.redeem(&d, NOW.plus(2)) && source.redeem(&e, NOW.plus(2)));
}

/// Many issues with redemptions between them (which leave entries in the source's queue
/// until it is compacted): still at most `capacity` outstanding, the newest.
#[test]
fn nonces_under_churn_keep_the_newest_outstanding() {
    let source = InMemoryNonceSource::new(lanyard_crypto::provider(), 60, 1000);
    let mut outstanding = Vec::new();
    for i in 0..5_000 {
        let nonce = source.issue(NOW).unwrap();
        if i % 3 == 0 {
            assert!(source.redeem(&nonce, NOW));
        } else {
            outstanding.push(nonce);
        }
    }
    let (forgotten, newest) = outstanding.split_at(outstanding.len() - 1000);
    assert!(newest.iter().all(|n| source.redeem(n, NOW)));
    assert!(forgotten.iter().all(|n| !source.redeem(n, NOW)));
    // And they expire: a nonce issued now is gone 60 s later.
    let late = source.issue(NOW).unwrap();
    source.issue(NOW.plus(60)).unwrap();
    assert!(!source.redeem(&late, NOW.plus(60)));
}

#[tokio::test]
async fn a_holder_gets_its_nonce_from_the_nonce_endpoint() {
    let w = World::new();
    let nonces: Arc<dyn NonceSource> = Arc::new(InMemoryNonceSource::new(w.provider.clone(), 120, 16));
    let mut config = w.config();
    config.nonce = NoncePolicy::Required(nonces.clone());
    let app = w
        .app(config)
        .route("/nonce", post(nonce_endpoint(nonces, Arc::new(FixedClock(NOW)))));
    let response = app
        .clone()
        .oneshot(Request::post("/nonce").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let nonce = URL_SAFE_NO_PAD.decode(body["c_nonce"].as_str().unwrap()).unwrap();
    let kbt = w.present(&["env"], AUDIENCE, Some(&nonce));
    assert_eq!(call(app, with_header(&kbt)).await.0, StatusCode::OK);
}
