//! The OAuth client middleware against an in-test authorization server on loopback built
//! from `lanyard_core::oauth` (it records what it received: the form, the client
//! assertion's header and claims, the DPoP proof's claims), and end to end against the
//! resource-server layer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use lanyard_core::jose::decode_unverified;
use lanyard_core::oauth::{
    AccessTokenClaims, AccessTokenType, Audience, AuthorizationServerMetadata, ClientAssertionPolicy,
    ClientAssertionType, Confirmation, DpopNonce, DpopPolicy, DpopRequest, DpopVerifier, ErrorCode, ErrorResponse,
    Form, FormLimits, PrivateKeyJwtVerifier, Scope, SpiffeAssertionPolicy, SpiffeAssertionVerifier, TokenResponse,
    VerificationKeys, issue_access_token,
};
use lanyard_core::{
    Algorithm, Clock, CryptoProvider, InMemoryReplayCache, JwkSet, JwtSvidIssuer, KeyUse, SigningKey, SpiffeId,
    SystemClock, TrustStore, UnixTime,
};
use lanyard_tower::oauth::{
    AccessTokenConfig, AccessTokenLayer, DpopNonces, KeySource, OAuthClientConfig, OAuthClientMiddleware,
    PrivateKeyJwtSource, RemoteKeysConfig, StaticJwtSvid, TokenOptions, VerifiedAccessToken,
};
use serde_json::{Map, Value, json};

/// A clock the test moves.
#[derive(Debug)]
struct ManualClock(AtomicU64);

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}

/// What the token endpoint received.
#[derive(Clone, Debug)]
struct Received {
    form: Map<String, Value>,
    assertion_header: Map<String, Value>,
    assertion_claims: Map<String, Value>,
    dpop_claims: Option<Map<String, Value>>,
}

struct AsState {
    issuer: String,
    provider: Arc<dyn CryptoProvider>,
    key: Arc<dyn SigningKey>,
    client_keys: VerificationKeys,
    svids: SpiffeAssertionVerifier,
    dpop: DpopVerifier,
    nonce: Option<String>,
    expires_in: u64,
    replay: InMemoryReplayCache,
    received: Mutex<Vec<Received>>,
    requests: AtomicUsize,
}

struct As {
    state: Arc<AsState>,
    client_key: Arc<dyn SigningKey>,
    svid_issuer: JwtSvidIssuer,
    task: tokio::task::JoinHandle<()>,
}

const CLIENT: &str = "billing";

fn oauth_error(code: ErrorCode, description: &str, nonce: Option<&str>) -> Response {
    let body = ErrorResponse::new(code.clone()).with_description(description);
    let status = StatusCode::from_u16(code.http_status(lanyard_core::oauth::Endpoint::AuthorizationServer)).unwrap();
    let mut response = (status, body.to_json()).into_response();
    if let Some(n) = nonce {
        response.headers_mut().insert("dpop-nonce", n.parse().unwrap());
    }
    response
}

async fn token_endpoint(State(s): State<Arc<AsState>>, headers: HeaderMap, body: Bytes) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let now = SystemClock.now();
    let form = Form::parse(&body, FormLimits::default()).unwrap();
    let mut received_form = Map::new();
    for name in form.names() {
        received_form.insert(name.to_owned(), json!(form.values(name)));
    }
    let client_id = form.get("client_id").unwrap_or_default().to_owned();
    let assertion = form.get("client_assertion").unwrap_or_default();
    let decoded = decode_unverified(assertion).unwrap();
    let assertion_type = ClientAssertionType::parse(form.get("client_assertion_type").unwrap_or_default());
    let authenticated = match assertion_type {
        ClientAssertionType::JwtBearer => {
            PrivateKeyJwtVerifier::new(s.issuer.clone(), ClientAssertionPolicy::default())
                .verify(assertion, &client_id, &s.client_keys, now)
                .and_then(|v| v.record(&s.replay, now))
                .map(|()| client_id.clone())
        }
        ClientAssertionType::JwtSpiffe => s.svids.verify(assertion, now).map(|v| v.spiffe_id.to_string()),
        _ => return oauth_error(ErrorCode::InvalidClient, "unsupported assertion type", None),
    };
    if let Err(e) = authenticated {
        return oauth_error(ErrorCode::InvalidClient, &e.to_string(), None);
    }
    if client_id != CLIENT {
        return oauth_error(ErrorCode::InvalidClient, "unknown client", None);
    }
    let token_url = format!("{}/token", s.issuer);
    let mut dpop_claims = None;
    let mut cnf = None;
    if let Some(proof) = headers.get("dpop") {
        let proof = proof.to_str().unwrap();
        dpop_claims = Some(decode_unverified(proof).unwrap().claims);
        let accepted: Vec<&str> = s.nonce.iter().map(String::as_str).collect();
        let request = DpopRequest {
            method: "POST",
            uri: &token_url,
            access_token: None,
            nonce: if accepted.is_empty() {
                DpopNonce::NotRequired
            } else {
                DpopNonce::Required(&accepted)
            },
        };
        match s.dpop.verify(proof, &request, now) {
            Ok(v) => cnf = Some(Confirmation::dpop(v.jkt)),
            Err(e) if e.kind().starts_with("dpop_nonce") => {
                return oauth_error(ErrorCode::UseDpopNonce, "nonce", s.nonce.as_deref());
            }
            Err(e) => return oauth_error(ErrorCode::InvalidDpopProof, &e.to_string(), None),
        }
    }
    s.received.lock().unwrap().push(Received {
        form: received_form,
        assertion_header: decoded.header,
        assertion_claims: decoded.claims,
        dpop_claims,
    });
    let scope = form.get("scope").map(|v| Scope::parse(v).unwrap());
    let aud = form
        .values("resource")
        .first()
        .cloned()
        .unwrap_or_else(|| "urn:default".into());
    let claims = AccessTokenClaims {
        iss: s.issuer.clone(),
        sub: CLIENT.into(),
        aud: Audience::one(aud),
        client_id: CLIENT.into(),
        scope: scope.clone(),
        iat: now,
        exp: now.plus(s.expires_in),
        nbf: None,
        jti: format!("at-{}", s.requests.load(Ordering::SeqCst)),
        cnf: cnf.clone(),
        act: None,
        extra: Map::new(),
    };
    let response = TokenResponse {
        access_token: issue_access_token(s.key.as_ref(), "as-1", &claims).unwrap(),
        token_type: if cnf.is_some() {
            AccessTokenType::Dpop
        } else {
            AccessTokenType::Bearer
        },
        expires_in: Some(s.expires_in),
        scope,
        issued_token_type: None,
    };
    (
        [("content-type", "application/json"), ("cache-control", "no-store")],
        response.to_json(),
    )
        .into_response()
}

impl As {
    async fn start(nonce: Option<&str>, expires_in: u64) -> As {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let provider = lanyard_crypto::provider();
        let key = provider.generate_key(Algorithm::ES256).unwrap();
        let client_key = provider.generate_key(Algorithm::ES256).unwrap();
        let client_keys = VerificationKeys::from_jwks(
            provider.as_ref(),
            CLIENT,
            &JwkSet {
                keys: vec![client_key.public_jwk()],
            },
        )
        .unwrap();
        let svid_key = provider.generate_key(Algorithm::ES256).unwrap();
        let mut svid_jwk = svid_key.public_jwk();
        svid_jwk.kid = Some("td-1".into());
        let store = Arc::new(TrustStore::new(provider.clone()));
        store.add_key("example.org", KeyUse::JwtSvid, &svid_jwk).unwrap();
        let state = Arc::new(AsState {
            svids: SpiffeAssertionVerifier::new(store, issuer.clone(), SpiffeAssertionPolicy::default()),
            dpop: DpopVerifier::new(provider.clone(), DpopPolicy::default()),
            issuer: issuer.clone(),
            provider,
            key,
            client_keys,
            nonce: nonce.map(str::to_owned),
            expires_in,
            replay: InMemoryReplayCache::default(),
            received: Mutex::new(Vec::new()),
            requests: AtomicUsize::new(0),
        });
        let metadata = AuthorizationServerMetadata {
            token_endpoint: Some(format!("{issuer}/token")),
            jwks_uri: Some(format!("{issuer}/jwks")),
            ..AuthorizationServerMetadata::new(issuer.clone())
        }
        .to_json();
        let mut jwk = state.key.public_jwk();
        jwk.kid = Some("as-1".into());
        let jwks = serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap();
        let _ = &state.provider;
        let router = Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(move || async move { metadata }),
            )
            .route("/jwks", get(move || async move { jwks }))
            .route("/token", post(token_endpoint))
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        As {
            state,
            client_key,
            svid_issuer: JwtSvidIssuer::new(svid_key, "td-1", None).unwrap(),
            task,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

/// A resource server on loopback behind the layer, keys discovered from the AS.
struct Rs {
    url: String,
    calls: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Rs {
    async fn start(issuer: &str, nonces: Option<Arc<DpopNonces>>) -> Rs {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let mut config = AccessTokenConfig::new(issuer, url.clone());
        config.dpop_nonces = nonces;
        let keys = KeySource::discover(issuer, RemoteKeysConfig::default()).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let router = Router::new()
            .route(
                "/ledger",
                get(|t: VerifiedAccessToken| async move {
                    axum::Json(json!({"client_id": t.client_id(), "cnf": t.cnf(), "scope": t.scope().to_string()}))
                })
                .post(|t: VerifiedAccessToken, body: String| async move { format!("{} posted {body}", t.client_id()) }),
            )
            .layer(AccessTokenLayer::new(keys, config))
            .layer(axum::middleware::from_fn(move |req, next: axum::middleware::Next| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { next.run(req).await }
            }));
        let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Rs { url, calls, task }
    }
}

fn client(middleware: OAuthClientMiddleware) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(middleware)
        .build()
}

#[tokio::test]
async fn private_key_jwt_end_to_end_with_a_cached_token() {
    let as_ = As::start(None, 300).await;
    let rs = Rs::start(&as_.state.issuer, None).await;
    let mut config = OAuthClientConfig::new(as_.state.issuer.clone(), CLIENT);
    config.resources = vec![rs.url.clone()];
    config.scope = Some(Scope::parse("ledger.read").unwrap());
    let source = Arc::new(PrivateKeyJwtSource {
        key: Arc::clone(&as_.client_key),
        kid: None,
    });
    let http = client(OAuthClientMiddleware::new(config, source).unwrap());
    for _ in 0..3 {
        let r = http.get(format!("{}/ledger", rs.url)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body, json!({"client_id": CLIENT, "cnf": null, "scope": "ledger.read"}));
    }
    assert_eq!(as_.requests(), 1, "the token is cached");
    let received = as_.received();
    let r = &received[0];
    assert_eq!(r.form["grant_type"], json!(["client_credentials"]));
    assert_eq!(r.form["client_id"], json!([CLIENT]));
    assert_eq!(r.form["scope"], json!(["ledger.read"]));
    assert_eq!(r.form["resource"], json!([rs.url]));
    assert_eq!(
        r.form["client_assertion_type"],
        json!(["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"])
    );
    // rfc7523bis: aud the issuer as its sole value, typ client-authentication+jwt.
    assert_eq!(r.assertion_header["typ"], json!("client-authentication+jwt"));
    assert_eq!(r.assertion_claims["aud"], json!(as_.state.issuer));
    assert_eq!(r.assertion_claims["iss"], json!(CLIENT));
    assert_eq!(r.assertion_claims["sub"], json!(CLIENT));
    assert!(r.assertion_claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    let (iat, exp) = (
        r.assertion_claims["iat"].as_u64().unwrap(),
        r.assertion_claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 60);
    assert!(r.dpop_claims.is_none());
    assert_eq!(rs.calls.load(Ordering::SeqCst), 3);
    // POST bodies pass through.
    let r = http
        .post(format!("{}/ledger", rs.url))
        .body("x=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "billing posted x=1");
    as_.task.abort();
    rs.task.abort();
}

/// A private_key_jwt client of `as_` on a clock the test moves (from now).
fn manual_clock_client(as_: &As) -> (OAuthClientMiddleware, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock(AtomicU64::new(SystemClock.now().0)));
    let mut config = OAuthClientConfig::new(as_.state.issuer.clone(), CLIENT);
    config.clock = clock.clone();
    let source = Arc::new(PrivateKeyJwtSource {
        key: Arc::clone(&as_.client_key),
        kid: None,
    });
    (OAuthClientMiddleware::new(config, source).unwrap(), clock)
}

#[tokio::test]
async fn concurrent_requests_share_one_token_request_and_tokens_refresh_before_expiry() {
    let as_ = As::start(None, 120).await;
    let (oauth, clock) = manual_clock_client(&as_);
    let options = oauth.default_options();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (oauth, options) = (oauth.clone(), options.clone());
        tasks.push(tokio::spawn(async move { oauth.access_token(&options).await.unwrap() }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap());
    }
    assert!(tokens.iter().all(|t| t == &tokens[0]));
    assert_eq!(as_.requests(), 1);
    // 120 s tokens are renewed 60 s before they expire, in the background: the request
    // that reaches the refresh point still gets the current token at once.
    clock.0.fetch_add(59, Ordering::SeqCst);
    assert_eq!(oauth.access_token(&options).await.unwrap(), tokens[0]);
    assert_eq!(as_.requests(), 1);
    clock.0.fetch_add(1, Ordering::SeqCst);
    assert_eq!(oauth.access_token(&options).await.unwrap(), tokens[0]);
    assert_eq!(oauth.access_token(&options).await.unwrap(), tokens[0]);
    let mut waited = 0;
    while as_.received().len() < 2 && waited < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        waited += 1;
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let second = oauth.access_token(&options).await.unwrap();
    assert_ne!(second, tokens[0]);
    assert_eq!(as_.requests(), 2, "one background refresh");
    // Another scope is another token.
    let other = TokenOptions::scope(&Scope::parse("ledger.write").unwrap());
    oauth.access_token(&other).await.unwrap();
    assert_eq!(as_.requests(), 3);
    assert_eq!(as_.received()[2].form["scope"], json!(["ledger.write"]));
    as_.task.abort();
}

#[tokio::test]
async fn a_token_in_its_last_seconds_is_not_used() {
    // 20 s tokens: refreshed in the background from 10 s, not used from 15 s.
    let as_ = As::start(None, 20).await;
    let (oauth, clock) = manual_clock_client(&as_);
    let options = oauth.default_options();
    let first = oauth.access_token(&options).await.unwrap();
    clock.0.fetch_add(15, Ordering::SeqCst);
    let second = oauth.access_token(&options).await.unwrap();
    assert_ne!(second, first, "the request waited for a new token");
    assert_eq!(as_.requests(), 2);
    as_.task.abort();
}

#[tokio::test]
async fn a_jwt_svid_authenticates_with_jwt_spiffe_and_client_id() {
    let as_ = As::start(None, 300).await;
    let svid = as_
        .svid_issuer
        .issue(
            &SpiffeId::parse("spiffe://example.org/billing").unwrap(),
            &as_.state.issuer,
            SystemClock.now(),
            300,
        )
        .unwrap();
    let mut config = OAuthClientConfig::new(as_.state.issuer.clone(), CLIENT);
    config.token_endpoint = Some(format!("{}/token", as_.state.issuer));
    let oauth = OAuthClientMiddleware::new(config, Arc::new(StaticJwtSvid(svid.clone()))).unwrap();
    oauth.access_token(&oauth.default_options()).await.unwrap();
    let r = &as_.received()[0];
    assert_eq!(
        r.form["client_assertion_type"],
        json!(["urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"])
    );
    assert_eq!(r.form["client_assertion"], json!([svid]));
    assert_eq!(r.form["client_id"], json!([CLIENT]));
    assert_eq!(r.assertion_claims["sub"], json!("spiffe://example.org/billing"));
    assert_eq!(r.assertion_claims["aud"], json!(as_.state.issuer));
    as_.task.abort();
}

#[tokio::test]
async fn refusals_of_the_token_endpoint_are_errors() {
    let as_ = As::start(None, 300).await;
    // A JWT-SVID for another audience.
    let svid = as_
        .svid_issuer
        .issue(
            &SpiffeId::parse("spiffe://example.org/billing").unwrap(),
            "https://other.example",
            SystemClock.now(),
            300,
        )
        .unwrap();
    let oauth = OAuthClientMiddleware::new(
        OAuthClientConfig::new(as_.state.issuer.clone(), CLIENT),
        Arc::new(StaticJwtSvid(svid)),
    )
    .unwrap();
    let e = oauth.access_token(&oauth.default_options()).await.unwrap_err();
    assert!(matches!(e, lanyard_tower::Error::TokenEndpoint(_)), "{e}");
    assert!(e.to_string().contains("invalid_client (401)"), "{e}");
    // A private_key_jwt signed by a key the AS does not know.
    let stranger = lanyard_crypto::provider().generate_key(Algorithm::ES256).unwrap();
    let oauth = OAuthClientMiddleware::new(
        OAuthClientConfig::new(as_.state.issuer.clone(), CLIENT),
        Arc::new(PrivateKeyJwtSource {
            key: stranger,
            kid: None,
        }),
    )
    .unwrap();
    let e = oauth.access_token(&oauth.default_options()).await.unwrap_err();
    assert!(e.to_string().contains("invalid_client"), "{e}");
    // Discovery of an issuer that serves no metadata.
    let oauth = OAuthClientMiddleware::new(
        OAuthClientConfig::new("http://127.0.0.1:9", CLIENT),
        Arc::new(PrivateKeyJwtSource {
            key: Arc::clone(&as_.client_key),
            kid: None,
        }),
    )
    .unwrap();
    let e = oauth.access_token(&oauth.default_options()).await.unwrap_err();
    assert!(matches!(e, lanyard_tower::Error::Fetch { .. }), "{e}");
    as_.task.abort();
}

#[tokio::test]
async fn dpop_bound_tokens_with_nonces_at_both_servers() {
    let as_ = As::start(Some("as-nonce-1"), 300).await;
    let nonces = Arc::new(DpopNonces::random(300).unwrap());
    let rs = Rs::start(&as_.state.issuer, Some(Arc::clone(&nonces))).await;
    let mut config = OAuthClientConfig::new(as_.state.issuer.clone(), CLIENT);
    config.resources = vec![rs.url.clone()];
    config.dpop = true;
    let source = Arc::new(PrivateKeyJwtSource {
        key: Arc::clone(&as_.client_key),
        kid: None,
    });
    let oauth = OAuthClientMiddleware::new(config, source).unwrap();
    let jkt = oauth.dpop_jkt().unwrap();
    let http = client(oauth);
    let r = http.get(format!("{}/ledger?x=1", rs.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["cnf"], json!({"jkt": jkt}));
    // The AS asked for its nonce once: two token requests, one token.
    assert_eq!(as_.requests(), 2);
    let received = as_.received();
    assert_eq!(received.len(), 1);
    let proof = received[0].dpop_claims.as_ref().unwrap();
    assert_eq!(proof["htm"], json!("POST"));
    assert_eq!(proof["htu"], json!(format!("{}/token", as_.state.issuer)));
    assert_eq!(proof["nonce"], json!("as-nonce-1"));
    assert!(proof.get("ath").is_none());
    // The RS asked for its nonce once too; the next call carries it at once.
    assert_eq!(rs.calls.load(Ordering::SeqCst), 2);
    let r = http.get(format!("{}/ledger", rs.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(rs.calls.load(Ordering::SeqCst), 3);
    // A POST with a body is retried as well.
    let r = http
        .post(format!("{}/ledger", rs.url))
        .body("y=2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "billing posted y=2");
    as_.task.abort();
    rs.task.abort();
}

#[test]
fn a_configured_token_endpoint_must_be_https_or_loopback() {
    for (endpoint, accepted) in [
        ("https://as.example/token", true),
        ("http://127.0.0.1:8080/token", true),
        ("http://as.example/token", false),
        ("https://svc:secret@as.example/token", false),
    ] {
        let mut config = OAuthClientConfig::new("https://as.example", CLIENT);
        config.token_endpoint = Some(endpoint.to_owned());
        let made = OAuthClientMiddleware::new(config, Arc::new(StaticJwtSvid("unused".into())));
        assert_eq!(made.is_ok(), accepted, "{endpoint}");
        if let Err(refused) = made {
            assert!(!refused.to_string().contains("secret"), "{refused}");
        }
    }
}
