//! The OAuth resource-server layer in-process (`tower::ServiceExt::oneshot`), with tokens
//! and DPoP proofs made by `lanyard_core::oauth`: every rejection with its status, OAuth
//! error code and challenge, the extractor, per-route scopes, and keys fetched from an
//! authorization server's metadata on loopback (refetch on an unknown `kid`, rate limit,
//! unavailability).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use lanyard_core::jose::sign_compact;
use lanyard_core::oauth::{
    AccessTokenClaims, Audience, Confirmation, DpopProofParams, Scope, VerificationKeys, create_dpop_proof,
    issue_access_token,
};
use lanyard_core::{AlgSet, Algorithm, CryptoProvider, FixedClock, JwkSet, SigningKey, UnixTime};
use lanyard_testing::key_host::KeyHost;
use lanyard_tower::mtls::PeerCertificate;
use lanyard_tower::oauth::{
    AccessTokenConfig, AccessTokenLayer, Binding, DpopNonces, KeySource, RemoteKeysConfig, RequireScopeLayer,
    VerifiedAccessToken,
};
use serde_json::{Value, json};
use tower::ServiceExt;

const NOW: UnixTime = UnixTime(1_800_000_000);
const ISSUER: &str = "https://as.example.org";
const AUDIENCE: &str = "https://ledger.example.org";
const URL: &str = "https://ledger.example.org/ledger";

struct As {
    provider: Arc<dyn CryptoProvider>,
    key: Arc<dyn SigningKey>,
    kid: String,
}

impl As {
    fn new(kid: &str) -> As {
        let provider = lanyard_crypto::provider();
        let key = provider.generate_key(Algorithm::ES256).unwrap();
        As {
            provider,
            key,
            kid: kid.into(),
        }
    }

    fn jwks(&self) -> JwkSet {
        let mut jwk = self.key.public_jwk();
        jwk.kid = Some(self.kid.clone());
        JwkSet { keys: vec![jwk] }
    }

    fn keys(&self) -> VerificationKeys {
        VerificationKeys::from_jwks(self.provider.as_ref(), ISSUER, &self.jwks()).unwrap()
    }

    fn claims(&self) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: ISSUER.into(),
            sub: "billing".into(),
            aud: Audience::one(AUDIENCE),
            client_id: "billing".into(),
            scope: Some(Scope::parse("ledger.read").unwrap()),
            iat: NOW,
            exp: NOW.plus(300),
            nbf: None,
            jti: "at-1".into(),
            cnf: None,
            act: None,
            extra: Default::default(),
        }
    }

    fn token(&self, edit: impl FnOnce(&mut AccessTokenClaims)) -> String {
        let mut claims = self.claims();
        edit(&mut claims);
        issue_access_token(self.key.as_ref(), &self.kid, &claims).unwrap()
    }
}

fn config() -> AccessTokenConfig {
    let mut c = AccessTokenConfig::new(ISSUER, AUDIENCE);
    c.clock = Arc::new(FixedClock(NOW));
    c
}

async fn whoami(t: VerifiedAccessToken) -> axum::Json<Value> {
    let binding = match &t.binding {
        Binding::Bearer => "bearer".to_owned(),
        Binding::Dpop { jkt, .. } => format!("dpop:{jkt}"),
        Binding::Certificate => "certificate".to_owned(),
        _ => "other".to_owned(),
    };
    axum::Json(json!({
        "sub": t.sub(), "client_id": t.client_id(), "scope": t.scope().to_string(),
        "aud": t.aud().to_string(), "jti": t.jti(), "binding": binding,
        "act": t.act().and_then(|a| a.sub.clone()), "kid": t.kid,
    }))
}

fn routes(layer: AccessTokenLayer) -> Router {
    let write = layer.require_scope(Scope::parse("ledger.write").unwrap());
    Router::new()
        .route("/ledger", get(whoami).layer(layer.clone()))
        .route("/ledger/write", get(whoami).layer(write))
        .route(
            "/ledger/admin",
            get(whoami)
                .layer(RequireScopeLayer::new(Scope::parse("ledger.admin").unwrap()))
                .layer(layer),
        )
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }

    fn description(&self) -> &str {
        self.body["error_description"].as_str().unwrap_or_default()
    }

    fn challenges(&self) -> Vec<String> {
        self.headers
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// Asserts a refusal: status, OAuth code, the challenge that carries it, and the
    /// error kind named in the description.
    fn refused(&self, status: StatusCode, code: &str, scheme: &str, description: &str) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(self.error(), code, "{:?}", self.body);
        let carrying: Vec<_> = self
            .challenges()
            .into_iter()
            .filter(|c| c.contains(&format!("error=\"{code}\"")))
            .collect();
        assert_eq!(carrying.len(), 1, "{:?}", self.challenges());
        assert!(carrying[0].starts_with(scheme), "{carrying:?}");
        assert!(
            self.description().contains(description),
            "{:?} lacks {description:?}",
            self.description()
        );
    }
}

async fn call(app: &Router, path: &str, headers: &[(&str, &str)], cert: Option<&[u8]>) -> Reply {
    let mut req = Request::get(path);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let mut req = req.body(Body::empty()).unwrap();
    if let Some(der) = cert {
        req.extensions_mut().insert(PeerCertificate(Arc::from(der)));
    }
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, headers, body }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn proof(
    key: &dyn SigningKey,
    method: &str,
    uri: &str,
    token: Option<&str>,
    nonce: Option<&str>,
    at: UnixTime,
) -> String {
    let params = DpopProofParams {
        method,
        uri,
        access_token: token,
        nonce,
    };
    create_dpop_proof(key, &params, at, lanyard_crypto::provider().as_ref()).unwrap()
}

fn dpop_key() -> (Arc<dyn SigningKey>, String) {
    let provider = lanyard_crypto::provider();
    let key = provider.generate_key(Algorithm::ES256).unwrap();
    let jkt = key.public_jwk().thumbprint(provider.as_ref()).unwrap();
    (key, jkt)
}

#[tokio::test]
async fn a_bearer_token_reaches_the_handler_with_its_claims() {
    let as_ = As::new("k1");
    let app = routes(AccessTokenLayer::new(KeySource::fixed(as_.keys()), config()));
    let token = as_.token(|c| c.act = Some(lanyard_core::oauth::Actor::new("spiffe://example.org/agent")));
    let r = call(&app, "/ledger", &[("authorization", &bearer(&token))], None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"sub": "billing", "client_id": "billing", "scope": "ledger.read", "aud": AUDIENCE,
               "jti": "at-1", "binding": "bearer", "act": "spiffe://example.org/agent", "kid": "k1"})
    );
}

#[tokio::test]
async fn no_token_gets_both_challenges_without_an_error_code() {
    let as_ = As::new("k1");
    let app = routes(AccessTokenLayer::new(KeySource::fixed(as_.keys()), config()));
    let r = call(&app, "/ledger", &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let challenges = r.challenges();
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    assert_eq!(challenges[0], "Bearer");
    assert!(challenges[1].starts_with("DPoP algs=\""), "{challenges:?}");
    assert!(!challenges.iter().any(|c| c.contains("error=")));
    // Another scheme is not an access token.
    let r = call(&app, "/ledger", &[("authorization", "Basic dXNlcjpwYXNz")], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.challenges().iter().all(|c| !c.contains("error=")));
}

#[tokio::test]
async fn invalid_tokens_are_refused_with_invalid_token() {
    let as_ = As::new("k1");
    let mut strict = config();
    strict.token.algorithms = AlgSet::of(&[Algorithm::ES256]);
    let app = routes(AccessTokenLayer::new(KeySource::fixed(as_.keys()), strict));
    let claims = as_.claims();
    let cases: Vec<(&str, String)> = vec![
        // typ: a generic JWT, and another token type's typ (typ confusion).
        (
            "wrong typ",
            sign_compact(Some("JWT"), Some("k1"), &claims, as_.key.as_ref()).unwrap(),
        ),
        (
            "typ says this is a",
            sign_compact(Some("wpt+jwt"), Some("k1"), &claims, as_.key.as_ref()).unwrap(),
        ),
        (
            "typ says this is a",
            sign_compact(Some("dpop+jwt"), Some("k1"), &claims, as_.key.as_ref()).unwrap(),
        ),
        ("issuer", as_.token(|c| c.iss = "https://evil.example".into())),
        (
            "wrong audience",
            as_.token(|c| c.aud = Audience::one("https://other.example.org")),
        ),
        (
            "expired",
            as_.token(|c| {
                c.iat = NOW.minus(1000);
                c.exp = NOW.minus(100);
            }),
        ),
        ("not valid before", as_.token(|c| c.nbf = Some(NOW.plus(600)))),
        (
            "not valid before",
            as_.token(|c| {
                c.iat = NOW.plus(600);
                c.exp = NOW.plus(900);
            }),
        ),
        (
            "no registered key",
            issue_access_token(as_.key.as_ref(), "k-unknown", &claims).unwrap(),
        ),
        ("malformed", "a.b.c".to_owned()),
    ];
    for (description, token) in cases {
        let r = call(&app, "/ledger", &[("authorization", &bearer(&token))], None).await;
        r.refused(StatusCode::UNAUTHORIZED, "invalid_token", "Bearer", description);
    }
    // A token signed by another key with the same kid.
    let forger = As::new("k1");
    let r = call(
        &app,
        "/ledger",
        &[("authorization", &bearer(&forger.token(|_| {})))],
        None,
    )
    .await;
    r.refused(StatusCode::UNAUTHORIZED, "invalid_token", "Bearer", "signature");
    // An algorithm off the allow-list (EdDSA) even with a registered key.
    let provider = lanyard_crypto::provider();
    let ed = provider.generate_key(Algorithm::EdDSA).unwrap();
    let mut jwk = ed.public_jwk();
    jwk.kid = Some("ed".into());
    let keys = VerificationKeys::from_jwks(provider.as_ref(), ISSUER, &JwkSet { keys: vec![jwk] }).unwrap();
    let mut strict = config();
    strict.token.algorithms = AlgSet::of(&[Algorithm::ES256]);
    let ed_app = routes(AccessTokenLayer::new(KeySource::fixed(keys), strict));
    let token = issue_access_token(ed.as_ref(), "ed", &claims).unwrap();
    let r = call(&ed_app, "/ledger", &[("authorization", &bearer(&token))], None).await;
    r.refused(StatusCode::UNAUTHORIZED, "invalid_token", "Bearer", "not allowed");
}

#[tokio::test]
async fn malformed_authorization_is_invalid_request() {
    let as_ = As::new("k1");
    let app = routes(AccessTokenLayer::new(KeySource::fixed(as_.keys()), config()));
    let token = as_.token(|_| {});
    let r = call(
        &app,
        "/ledger",
        &[("authorization", &bearer(&token)), ("authorization", &bearer(&token))],
        None,
    )
    .await;
    r.refused(StatusCode::BAD_REQUEST, "invalid_request", "Bearer", "Authorization");
    let r = call(&app, "/ledger", &[("authorization", "Bearer a b")], None).await;
    r.refused(StatusCode::BAD_REQUEST, "invalid_request", "Bearer", "token68");
}

#[tokio::test]
async fn a_dpop_bound_token_needs_its_proof() {
    let as_ = As::new("k1");
    let app = routes(AccessTokenLayer::new(KeySource::fixed(as_.keys()), config()));
    let (key, jkt) = dpop_key();
    let token = as_.token(|c| c.cnf = Some(Confirmation::dpop(jkt.clone())));
    let dpop = |p: String| {
        vec![
            ("authorization".to_owned(), format!("DPoP {token}")),
            ("dpop".to_owned(), p),
        ]
    };
    let send = |headers: Vec<(String, String)>| {
        let app = app.clone();
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            call(&app, "/ledger", &h, None).await
        }
    };

    let good = proof(key.as_ref(), "GET", URL, Some(&token), None, NOW);
    let r = send(dpop(good.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["binding"], json!(format!("dpop:{jkt}")));
    // The same proof again: replay.
    send(dpop(good))
        .await
        .refused(StatusCode::UNAUTHORIZED, "invalid_dpop_proof", "DPoP", "replayed");

    // The bound token as a Bearer token, without a proof.
    let r = call(&app, "/ledger", &[("authorization", &bearer(&token))], None).await;
    r.refused(StatusCode::UNAUTHORIZED, "invalid_token", "Bearer", "cnf.jkt");

    for (description, p) in [
        ("htm", proof(key.as_ref(), "POST", URL, Some(&token), None, NOW)),
        (
            "htu",
            proof(
                key.as_ref(),
                "GET",
                "https://ledger.example.org/other",
                Some(&token),
                None,
                NOW,
            ),
        ),
        (
            "htu",
            proof(
                key.as_ref(),
                "GET",
                "https://evil.example/ledger",
                Some(&token),
                None,
                NOW,
            ),
        ),
        ("ath", proof(key.as_ref(), "GET", URL, Some("another-token"), None, NOW)),
        ("missing claim", proof(key.as_ref(), "GET", URL, None, None, NOW)),
        (
            "older than",
            proof(key.as_ref(), "GET", URL, Some(&token), None, NOW.minus(301)),
        ),
        (
            "not valid before",
            proof(key.as_ref(), "GET", URL, Some(&token), None, NOW.plus(120)),
        ),
        ("malformed", "x.y.z".to_owned()),
    ] {
        send(dpop(p))
            .await
            .refused(StatusCode::UNAUTHORIZED, "invalid_dpop_proof", "DPoP", description);
    }
    // A proof by another key than cnf.jkt names.
    let (other, _) = dpop_key();
    let p = proof(other.as_ref(), "GET", URL, Some(&token), None, NOW);
    send(dpop(p))
        .await
        .refused(StatusCode::UNAUTHORIZED, "invalid_dpop_proof", "DPoP", "cnf.jkt");
    // A proof of another token type (typ confusion): an access token in the DPoP header.
    send(dpop(token.clone()))
        .await
        .refused(StatusCode::UNAUTHORIZED, "invalid_dpop_proof", "DPoP", "typ");
    // The DPoP scheme without a proof, and a proof beside a Bearer token.
    let r = call(&app, "/ledger", &[("authorization", &format!("DPoP {token}"))], None).await;
    r.refused(StatusCode::UNAUTHORIZED, "invalid_dpop_proof", "DPoP", "DPoP");
    let p = proof(key.as_ref(), "GET", URL, Some(&token), None, NOW);
    let r = call(
        &app,
        "/ledger",
        &[("authorization", &bearer(&token)), ("dpop", &p)],
        None,
    )
    .await;
    r.refused(StatusCode::UNAUTHORIZED, "invalid_dpop_proof", "DPoP", "Bearer");
}

#[tokio::test]
async fn a_dpop_proof_with_a_bearer_token_is_refused() {
    let as_ = As::new("k1");
    let app = routes(AccessTokenLayer::new(KeySource::fixed(as_.keys()), config()));
    let (key, _) = dpop_key();
    let token = as_.token(|_| {});
    let p = proof(key.as_ref(), "GET", URL, Some(&token), None, NOW);
    let r = call(
        &app,
        "/ledger",
        &[("authorization", &format!("DPoP {token}")), ("dpop", &p)],
        None,
    )
    .await;
    r.refused(StatusCode::UNAUTHORIZED, "invalid_token", "DPoP", "not DPoP-bound");
}

#[tokio::test]
async fn the_server_nonce_is_required_and_handed_out() {
    let as_ = As::new("k1");
    let mut c = config();
    let nonces = Arc::new(DpopNonces::new(vec![9; 32], 60).unwrap());
    c.dpop_nonces = Some(Arc::clone(&nonces));
    let app = routes(AccessTokenLayer::new(KeySource::fixed(as_.keys()), c));
    let (key, jkt) = dpop_key();
    let token = as_.token(|c| c.cnf = Some(Confirmation::dpop(jkt)));
    let auth = format!("DPoP {token}");
    let p = proof(key.as_ref(), "GET", URL, Some(&token), None, NOW);
    let r = call(&app, "/ledger", &[("authorization", &auth), ("dpop", &p)], None).await;
    r.refused(StatusCode::UNAUTHORIZED, "use_dpop_nonce", "DPoP", "nonce");
    let nonce = r.headers["dpop-nonce"].to_str().unwrap().to_owned();
    assert_eq!(nonce, nonces.current(NOW).unwrap());
    let p = proof(key.as_ref(), "GET", URL, Some(&token), Some("stale-nonce"), NOW);
    let r = call(&app, "/ledger", &[("authorization", &auth), ("dpop", &p)], None).await;
    r.refused(StatusCode::UNAUTHORIZED, "use_dpop_nonce", "DPoP", "nonce");
    let p = proof(key.as_ref(), "GET", URL, Some(&token), Some(&nonce), NOW);
    let r = call(&app, "/ledger", &[("authorization", &auth), ("dpop", &p)], None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.headers["dpop-nonce"].to_str().unwrap(), nonce);
}

#[tokio::test]
async fn a_certificate_bound_token_needs_the_connection_certificate() {
    let as_ = As::new("k1");
    let app = routes(AccessTokenLayer::new(KeySource::fixed(as_.keys()), config()));
    let provider = lanyard_crypto::provider();
    let cert = b"client certificate DER".as_slice();
    let token = as_.token(|c| c.cnf = Some(Confirmation::certificate(provider.as_ref(), cert)));
    let auth = bearer(&token);
    let r = call(&app, "/ledger", &[("authorization", &auth)], Some(cert)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["binding"], json!("certificate"));
    let r = call(&app, "/ledger", &[("authorization", &auth)], None).await;
    r.refused(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "Bearer",
        "client certificate",
    );
    let r = call(
        &app,
        "/ledger",
        &[("authorization", &auth)],
        Some(b"another certificate"),
    )
    .await;
    r.refused(StatusCode::UNAUTHORIZED, "invalid_token", "Bearer", "does not match");
}

#[tokio::test]
async fn scopes_per_route() {
    let as_ = As::new("k1");
    let app = routes(AccessTokenLayer::new(KeySource::fixed(as_.keys()), config()));
    let token = as_.token(|_| {});
    for path in ["/ledger/write", "/ledger/admin"] {
        let r = call(&app, path, &[("authorization", &bearer(&token))], None).await;
        r.refused(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "Bearer",
            "requires the scope",
        );
        let wanted = if path.ends_with("write") {
            "ledger.write"
        } else {
            "ledger.admin"
        };
        assert!(
            r.challenges()
                .iter()
                .any(|c| c.contains(&format!("scope=\"{wanted}\"")))
        );
    }
    let token = as_.token(|c| c.scope = Some(Scope::parse("ledger.read ledger.write ledger.admin").unwrap()));
    for path in ["/ledger/write", "/ledger/admin"] {
        let r = call(&app, path, &[("authorization", &bearer(&token))], None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
    }
}

#[tokio::test]
async fn sender_constrained_only() {
    let as_ = As::new("k1");
    let mut c = config();
    c.accept_bearer = false;
    let app = routes(AccessTokenLayer::new(KeySource::fixed(as_.keys()), c));
    let r = call(&app, "/ledger", &[("authorization", &bearer(&as_.token(|_| {})))], None).await;
    r.refused(StatusCode::UNAUTHORIZED, "invalid_token", "Bearer", "cnf");
    let r = call(&app, "/ledger", &[], None).await;
    assert_eq!(r.challenges().len(), 1, "only DPoP is offered: {:?}", r.challenges());
    assert!(r.challenges()[0].starts_with("DPoP"));
}

#[tokio::test]
async fn credential_headers_are_sensitive_for_the_handler() {
    let as_ = As::new("k1");
    let layer = AccessTokenLayer::new(KeySource::fixed(as_.keys()), config());
    let app = Router::new().route(
        "/ledger",
        get(|headers: HeaderMap| async move { headers["authorization"].is_sensitive().to_string() }).layer(layer),
    );
    let req = Request::get("/ledger")
        .header("authorization", bearer(&as_.token(|_| {})))
        .body(Body::empty())
        .unwrap();
    let body = app
        .oneshot(req)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"true");
}

fn remote_config(issuer: &str) -> AccessTokenConfig {
    let mut c = AccessTokenConfig::new(issuer, AUDIENCE);
    c.clock = Arc::new(FixedClock(NOW));
    c
}

fn as_token(as_: &As, issuer: &str) -> String {
    as_.token(|c| c.iss = issuer.to_owned())
}

#[tokio::test]
async fn keys_from_metadata_refetched_on_an_unknown_kid_at_a_bounded_rate() {
    let old = As::new("k1");
    let server = KeyHost::start(&old.jwks()).await;
    let keys = KeySource::discover(
        server.issuer().to_owned(),
        RemoteKeysConfig {
            min_refetch: Duration::from_millis(300),
            ..RemoteKeysConfig::default()
        },
    )
    .unwrap();
    let app = routes(AccessTokenLayer::new(keys, remote_config(server.issuer())));

    // Concurrent first requests share one fetch.
    let token = as_token(&old, server.issuer());
    let auth = bearer(&token);
    let headers = [("authorization", auth.as_str())];
    let replies = join_all((0..8).map(|_| call(&app, "/ledger", &headers, None)).collect()).await;
    for r in &replies {
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    assert_eq!(server.fetches(), 1);

    // The AS rotates to k2: the first k2 token triggers one refetch.
    let new = As::new("k2");
    server.publish(&JwkSet {
        keys: [old.jwks().keys, new.jwks().keys].concat(),
    });
    tokio::time::sleep(Duration::from_millis(350)).await;
    let r = call(
        &app,
        "/ledger",
        &[("authorization", &bearer(&as_token(&new, server.issuer())))],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(server.fetches(), 2);

    // Made-up kids do not cause a fetch each.
    for i in 0..5 {
        let forged = As::new(&format!("bogus-{i}"));
        let r = call(
            &app,
            "/ledger",
            &[("authorization", &bearer(&as_token(&forged, server.issuer())))],
            None,
        )
        .await;
        r.refused(StatusCode::UNAUTHORIZED, "invalid_token", "Bearer", "no registered key");
    }
    assert_eq!(server.fetches(), 2, "rate limit");
}

#[tokio::test]
async fn a_redirect_from_the_jwks_uri_is_not_followed() {
    let as_ = As::new("k1");
    let server = KeyHost::start(&as_.jwks()).await;
    let keys = KeySource::jwks_uri(format!("{}/moved", server.issuer()), RemoteKeysConfig::default()).unwrap();
    let app = routes(AccessTokenLayer::new(keys, remote_config(server.issuer())));
    let auth = bearer(&as_token(&as_, server.issuer()));
    let status = call(&app, "/ledger", &[("authorization", &auth)], None).await.status;
    assert_ne!(status, StatusCode::OK);
    assert_eq!(server.fetches(), 0, "the redirect was followed");
    // A caller's client that does follow it: the keys it fetched are not used.
    let following = RemoteKeysConfig {
        http: Some(reqwest::Client::new()),
        ..RemoteKeysConfig::default()
    };
    let keys = KeySource::jwks_uri(format!("{}/moved", server.issuer()), following).unwrap();
    let app = routes(AccessTokenLayer::new(keys, remote_config(server.issuer())));
    let status = call(&app, "/ledger", &[("authorization", &auth)], None).await.status;
    assert_eq!(server.fetches(), 1, "this client follows redirects");
    assert_ne!(status, StatusCode::OK, "keys from after a redirect were used");
}

#[tokio::test]
async fn stale_keys_keep_serving_while_a_background_refresh_runs() {
    let as_ = As::new("k1");
    let server = KeyHost::start(&as_.jwks()).await;
    let keys = KeySource::jwks_uri(
        server.jwks_uri(),
        RemoteKeysConfig {
            ttl: Duration::from_millis(100),
            min_refetch: Duration::from_millis(100),
            ..RemoteKeysConfig::default()
        },
    )
    .unwrap();
    let app = routes(AccessTokenLayer::new(keys, remote_config(server.issuer())));
    let auth = bearer(&as_token(&as_, server.issuer()));
    assert_eq!(
        call(&app, "/ledger", &[("authorization", &auth)], None).await.status,
        StatusCode::OK
    );
    assert_eq!(server.fetches(), 1);
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The AS is gone: the stale keys still verify, the refresh fails in the background.
    server.stop().await;
    for _ in 0..3 {
        assert_eq!(
            call(&app, "/ledger", &[("authorization", &auth)], None).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn unreachable_keys_are_temporarily_unavailable() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    drop(listener);
    let keys = KeySource::discover(issuer.clone(), RemoteKeysConfig::default()).unwrap();
    let app = routes(AccessTokenLayer::new(keys, remote_config(&issuer)));
    let as_ = As::new("k1");
    let auth = bearer(&as_token(&as_, &issuer));
    for _ in 0..2 {
        let r = call(&app, "/ledger", &[("authorization", &auth)], None).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.error(), "temporarily_unavailable");
    }
    // An issuer that is not an RFC 8414 issuer identifier is refused up front.
    assert!(KeySource::discover("http://as.example.org", RemoteKeysConfig::default()).is_err());
}

async fn join_all<Fut: std::future::Future>(futures: Vec<Fut>) -> Vec<Fut::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<Fut::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(|r| r.unwrap()).collect()
}

/// A writer that keeps everything logged.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tokens_and_proofs_are_never_logged() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let as_ = As::new("k1");
    let app = routes(AccessTokenLayer::new(KeySource::fixed(as_.keys()), config()));
    let (key, jkt) = dpop_key();
    let bound = as_.token(|c| c.cnf = Some(Confirmation::dpop(jkt)));
    let good = proof(key.as_ref(), "GET", URL, Some(&bound), None, NOW);
    let wrong_htu = proof(key.as_ref(), "GET", "https://evil.example/x", Some(&bound), None, NOW);
    let expired = as_.token(|c| {
        c.iat = NOW.minus(1000);
        c.exp = NOW.minus(100);
    });
    let dpop_auth = format!("DPoP {bound}");
    let mut seen = Vec::new();
    for headers in [
        vec![("authorization", dpop_auth.as_str()), ("dpop", good.as_str())],
        vec![("authorization", dpop_auth.as_str()), ("dpop", good.as_str())],
        vec![("authorization", dpop_auth.as_str()), ("dpop", wrong_htu.as_str())],
        vec![("authorization", &*format!("Bearer {expired}"))],
        vec![("authorization", &*format!("Bearer {bound}"))],
    ] {
        seen.push(call(&app, "/ledger", &headers, None).await.status);
    }
    assert_eq!(seen[0], StatusCode::OK);
    assert!(seen[1..].iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{seen:?}");
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("access token refused"), "the refusals are logged: {logs}");
    for secret in [&bound, &good, &wrong_htu, &expired] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!logs.contains(signature), "a token or proof was logged: {logs}");
    }
}
