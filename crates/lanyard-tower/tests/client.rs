//! The reqwest client middleware against a real axum server whose handlers verify what
//! arrives with lanyard-core directly: WIT + WPT in both carriages (with a bound Txn-Token
//! and `oth` headers), HTTP Message Signatures in both target forms with and without
//! signed responses, and credential rotation from files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use lanyard_core::httpsig::{
    HttpSigPolicy, HttpSigVerifier, RequestParts, ResponseParts, ResponseSigning, TargetComponents,
    VerifiedSignedMessage, sign_response,
};
use lanyard_core::wimse::{CarriageConfig, WptCarriage, extract_credentials};
use lanyard_core::{
    Algorithm, Clock, CryptoProvider, InMemoryReplayCache, ProofTokens, SigningKey, SystemClock, WitPolicy,
    WitVerifier, WorkloadId, WptPolicy, WptVerifier,
};
use lanyard_testing::WitWorld;
use lanyard_tower::{
    ClientMode, CredentialSource, Error, FileCredentialSource, StaticCredentials, TxnToken, WorkloadAuthMiddleware,
    WorkloadCredentials,
};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use serde_json::{Value, json};

const TRUST_DOMAIN: &str = "example.org";
const CLIENT_ID: &str = "spiffe://example.org/client";
const SERVER_ID: &str = "spiffe://example.org/server";

/// A test identity server and the trust store that trusts it.
struct Env(WitWorld);

impl std::ops::Deref for Env {
    type Target = WitWorld;

    fn deref(&self) -> &WitWorld {
        &self.0
    }
}

impl Env {
    fn new() -> Env {
        Env(WitWorld::new(TRUST_DOMAIN, Algorithm::ES256, None))
    }

    fn wit(&self, sub: &str, key: &dyn SigningKey) -> String {
        let sub = WorkloadId::parse(sub).unwrap();
        self.issuer.issue(&sub, &key.public_jwk(), SystemClock.now()).unwrap()
    }

    fn credentials(&self, sub: &str) -> Arc<WorkloadCredentials> {
        let key = self.provider.generate_key(Algorithm::ES256).unwrap();
        let wit = self.wit(sub, key.as_ref());
        Arc::new(WorkloadCredentials::new(wit, key, self.provider.as_ref()).unwrap())
    }

    /// A -07 signature verifier (the default policy).
    fn sig_verifier(&self) -> HttpSigVerifier {
        self.sig_verifier_for(TargetComponents::default())
    }

    /// A verifier for signatures in the `target` form (-06 `@request-target` needs the
    /// compatibility switch).
    fn sig_verifier_for(&self, target: TargetComponents) -> HttpSigVerifier {
        HttpSigVerifier::new(
            WitVerifier::new(self.store.clone(), WitPolicy::wimse()),
            HttpSigPolicy {
                accept_request_target: target == TargetComponents::RequestTarget,
                ..HttpSigPolicy::default()
            },
            Arc::new(InMemoryReplayCache::default()),
        )
    }

    fn thumbprint(&self, key: &dyn SigningKey) -> String {
        key.public_jwk().thumbprint(self.provider.as_ref()).unwrap()
    }
}

/// The receiving service: verifiers configured with its own base URL, and its own
/// credentials for signing responses.
#[derive(Clone)]
struct Service {
    base: String,
    provider: Arc<dyn CryptoProvider>,
    wpt: WptVerifier,
    sig: HttpSigVerifier,
    creds: Arc<WorkloadCredentials>,
}

fn reject(e: impl std::fmt::Display) -> Response {
    (StatusCode::UNAUTHORIZED, e.to_string()).into_response()
}

/// Verifies a WIT + WPT (either carriage) and echoes what it learned.
async fn wpt_echo(State(s): State<Service>, req: Request) -> Response {
    let headers = req.headers();
    let presented = match extract_credentials(
        headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
        &CarriageConfig {
            accept_legacy_header: true,
        },
    ) {
        Ok(p) => p,
        Err(e) => return reject(e),
    };
    // The audience comes from the service's own configuration, never from Host.
    let audience = format!("{}{}", s.base, req.uri().path());
    // A context header the service binds with `oth` when the caller sends it.
    let context = headers.get("x-user-context").and_then(|v| v.to_str().ok());
    let other: Vec<(&str, &str)> = context.map(|v| ("x-user-context", v)).into_iter().collect();
    let tokens = ProofTokens {
        wit: presented.wit,
        wpt: presented.wpt,
        access_token: presented.access_token,
        txn_token: presented.txn_token,
        other_tokens: &other,
    };
    match s.wpt.verify(&tokens, &audience, SystemClock.now()) {
        Ok(proof) => axum::Json(json!({
            "sub": proof.wit.sub.as_str(),
            "thumbprint": proof.wit.cnf_jwk.thumbprint(s.provider.as_ref()).unwrap(),
            "aud": proof.wpt.aud,
            "carriage": format!("{:?}", presented.carriage),
            "access_token": presented.access_token,
            "txn_token": presented.txn_token,
            "oth": proof.wpt.oth,
        }))
        .into_response(),
        Err(e) => reject(e),
    }
}

fn request_parts(parts: &axum::http::request::Parts) -> RequestParts<'_> {
    RequestParts {
        method: parts.method.as_str(),
        target: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        authority: None,
        scheme: None,
        headers: parts.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect(),
    }
}

/// Reads a signed request and verifies it.
async fn verified_request(
    s: &Service,
    req: Request,
) -> Result<(axum::http::request::Parts, Bytes, VerifiedSignedMessage), Response> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.map_err(reject)?;
    let audience = format!("{}{}", s.base, parts.uri.path());
    let verified = s
        .sig
        .verify_request(&request_parts(&parts), &body, &audience, SystemClock.now())
        .map_err(reject)?;
    Ok((parts, body, verified))
}

fn echo(parts: &axum::http::request::Parts, body: &[u8], verified: &VerifiedSignedMessage) -> Value {
    json!({
        "sub": verified.wit.sub.as_str(),
        "covered": verified.signature.covered,
        "sign_response": verified.signature.sign_response,
        "content_type": parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        "body": serde_json::from_slice::<Value>(body).unwrap_or(Value::Null),
    })
}

/// Verifies an HTTP Message Signature and echoes the request.
async fn sig_echo(State(s): State<Service>, req: Request) -> Response {
    match verified_request(&s, req).await {
        Ok((parts, body, verified)) => axum::Json(echo(&parts, &body, &verified)).into_response(),
        Err(r) => r,
    }
}

/// Verifies the request and signs the response, bound to `request_nonce` (or to the
/// request's own nonce).
async fn signed_reply(s: &Service, req: Request, request_nonce: Option<&str>) -> Response {
    let (parts, body, verified) = match verified_request(s, req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let body = serde_json::to_vec(&echo(&parts, &body, &verified)).unwrap();
    let response = ResponseParts {
        status: 200,
        headers: vec![("content-type", b"application/json")],
    };
    let target = if verified.signature.covered.iter().any(|c| c == "\"@path\"") {
        TargetComponents::PathAndQuery
    } else {
        TargetComponents::RequestTarget
    };
    let signed = sign_response(
        s.creds.key.as_ref(),
        &response,
        &body,
        &request_parts(&parts),
        &ResponseSigning {
            wit: &s.creds.wit,
            request_nonce: request_nonce.unwrap_or(&verified.signature.nonce),
            lifetime: 60,
            target,
        },
        SystemClock.now(),
        s.provider.as_ref(),
    )
    .unwrap();
    let mut out = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json");
    for (name, value) in &signed.headers {
        out = out.header(*name, value);
    }
    out.body(axum::body::Body::from(body)).unwrap()
}

async fn signed_response(State(s): State<Service>, req: Request) -> Response {
    signed_reply(&s, req, None).await
}

async fn wrong_nonce_response(State(s): State<Service>, req: Request) -> Response {
    signed_reply(&s, req, Some("bm90LXRoZS1yZXF1ZXN0LW5vbmNl")).await
}

/// Verifies the request and sends its WIT back, but does not sign the response.
async fn unsigned_response(State(s): State<Service>, req: Request) -> Response {
    match verified_request(&s, req).await {
        Ok((parts, body, verified)) => (
            [("workload-identity-token", s.creds.wit.clone())],
            axum::Json(echo(&parts, &body, &verified)),
        )
            .into_response(),
        Err(r) => r,
    }
}

/// Starts the service on an ephemeral port; returns its base URL.
async fn start(env: &Env) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let service = Service {
        base: base.clone(),
        provider: env.provider.clone(),
        // The service accepts both WPT carriages, so it keeps the wpt-01 rules for the
        // legacy one (an `ath`-bound bearer token), and both signature target forms.
        wpt: WptVerifier::new(
            WitVerifier::new(env.store.clone(), WitPolicy::wimse()),
            WptPolicy {
                accept_wpt01: true,
                ..WptPolicy::default()
            },
            Arc::new(InMemoryReplayCache::default()),
        ),
        sig: env.sig_verifier_for(TargetComponents::RequestTarget),
        creds: env.credentials(SERVER_ID),
    };
    let app = Router::new()
        .route("/path", any(wpt_echo))
        .route("/legacy", any(wpt_echo))
        .route("/signed", any(sig_echo))
        .route("/signed-response", any(signed_response))
        .route("/unsigned-response", any(unsigned_response))
        .route("/wrong-nonce", any(wrong_nonce_response))
        .with_state(service);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn client(middleware: WorkloadAuthMiddleware) -> ClientWithMiddleware {
    let inner = reqwest::Client::builder().no_proxy().build().unwrap();
    ClientBuilder::new(inner).with(middleware).build()
}

/// The running service and the client workload's credentials, where most tests start.
struct Setup {
    env: Env,
    base: String,
    creds: Arc<WorkloadCredentials>,
}

async fn setup() -> Setup {
    let env = Env::new();
    let base = start(&env).await;
    let creds = env.credentials(CLIENT_ID);
    Setup { env, base, creds }
}

/// A client authenticating as the workload of `creds` in `mode`.
fn workload_client(creds: &Arc<WorkloadCredentials>, mode: ClientMode) -> ClientWithMiddleware {
    client(WorkloadAuthMiddleware::new(static_source(creds), mode))
}

/// [`workload_client`], also verifying signed responses with `verifier`.
fn verifying_client(
    creds: &Arc<WorkloadCredentials>,
    mode: ClientMode,
    verifier: HttpSigVerifier,
) -> ClientWithMiddleware {
    client(WorkloadAuthMiddleware::new(static_source(creds), mode).with_response_verifier(verifier))
}

fn static_source(creds: &Arc<WorkloadCredentials>) -> Arc<dyn CredentialSource> {
    Arc::new(StaticCredentials(creds.clone()))
}

/// The crate's error inside a middleware error.
fn our_error(e: &reqwest_middleware::Error) -> &Error {
    match e {
        reqwest_middleware::Error::Middleware(inner) => inner
            .downcast_ref::<Error>()
            .unwrap_or_else(|| panic!("not a lanyard_tower::Error: {inner:#}")),
        other => panic!("expected a middleware error, got {other}"),
    }
}

async fn json_ok(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, reqwest::StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn wpt_mode(carriage: WptCarriage) -> ClientMode {
    ClientMode::Wpt { carriage }
}

fn sig_mode(target: TargetComponents, require_signed_response: bool) -> ClientMode {
    ClientMode::HttpSignature {
        target,
        require_signed_response,
    }
}

#[tokio::test]
async fn wpt_in_authorization_with_audience_without_query() {
    let Setup { env, base, creds } = setup().await;
    let client = workload_client(&creds, wpt_mode(WptCarriage::Authorization));
    let echo = json_ok(client.get(format!("{base}/path?q=1#frag")).send().await.unwrap()).await;
    assert_eq!(echo["sub"], CLIENT_ID);
    assert_eq!(echo["carriage"], "Authorization");
    assert_eq!(echo["aud"], json!([format!("{base}/path")]));
    assert_eq!(echo["thumbprint"], env.thumbprint(creds.key.as_ref()));
    assert_eq!(echo["access_token"], Value::Null);

    // Every request gets a fresh proof (the server's replay cache would reject a reuse).
    let again = json_ok(client.get(format!("{base}/path")).send().await.unwrap()).await;
    assert_eq!(again["sub"], CLIENT_ID);
}

#[tokio::test]
async fn wpt_binds_a_txn_token() {
    let Setup { base, creds, .. } = setup().await;
    let client = workload_client(&creds, wpt_mode(WptCarriage::Authorization));
    let echo = json_ok(
        client
            .post(format!("{base}/path"))
            .header("Txn-Token", "txn.token.value")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echo["txn_token"], "txn.token.value");
}

#[tokio::test]
async fn txn_token_extension_is_sent_and_bound() {
    let Setup { base, creds, .. } = setup().await;
    let client = workload_client(&creds, ClientMode::default());
    let echo = json_ok(
        client
            .get(format!("{base}/path"))
            .with_extension(TxnToken::new("eyJ0eXAiOiJ0eG50b2tlbitqd3QifQ.e30.sig"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    // The server's verify() accepted the Txn-Token only because the WPT's tth binds it.
    assert_eq!(echo["txn_token"], "eyJ0eXAiOiJ0eG50b2tlbitqd3QifQ.e30.sig");
    assert_eq!(echo["access_token"], Value::Null);
}

#[tokio::test]
async fn bound_headers_go_into_oth() {
    let Setup { base, creds, .. } = setup().await;
    let client = client(
        WorkloadAuthMiddleware::new(static_source(&creds), ClientMode::default())
            .with_bound_headers([header::HeaderName::from_static("x-user-context")]),
    );
    let request = client
        .get(format!("{base}/path"))
        .header("X-User-Context", " user=alice ");
    let echo = json_ok(request.send().await.unwrap()).await;
    assert_eq!(echo["oth"], json!(["x-user-context"]));
    // Without the header there is nothing to bind.
    let echo = json_ok(client.get(format!("{base}/path")).send().await.unwrap()).await;
    assert_eq!(echo["oth"], json!([]));
}

#[tokio::test]
async fn legacy_carriage_binds_the_bearer_token() {
    let Setup { base, creds, .. } = setup().await;
    let client = workload_client(&creds, wpt_mode(WptCarriage::LegacyHeader));
    let echo = json_ok(
        client
            .get(format!("{base}/legacy"))
            .bearer_auth("access-token-123")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echo["sub"], CLIENT_ID);
    assert_eq!(echo["carriage"], "LegacyHeader");
    // The server's verify() checked `ath` against this token.
    assert_eq!(echo["access_token"], "access-token-123");
}

#[tokio::test]
async fn authorization_carriage_refuses_an_existing_authorization_header() {
    let Setup { base, creds, .. } = setup().await;
    let client = workload_client(&creds, wpt_mode(WptCarriage::Authorization));
    let err = client
        .get(format!("{base}/path"))
        .bearer_auth("access-token-123")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(our_error(&err), Error::Request(m) if m.contains("Authorization")),
        "{err}"
    );
    // Nor does a DPoP-bound token travel with a WPT.
    let err = client
        .get(format!("{base}/path"))
        .header("DPoP", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.sig")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(our_error(&err), Error::Request(m) if m.contains("DPoP")),
        "{err}"
    );
}

#[tokio::test]
async fn http_signature_covers_a_json_body() {
    let Setup { base, creds, .. } = setup().await;
    let client = workload_client(&creds, sig_mode(TargetComponents::default(), false));
    let payload = json!({"amount": 42, "currency": "EUR"});
    let echo = json_ok(
        client
            .post(format!("{base}/signed?page=2"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&payload).unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(echo["sub"], CLIENT_ID);
    assert_eq!(echo["body"], payload);
    assert_eq!(echo["sign_response"], false);
    let covered: Vec<String> = serde_json::from_value(echo["covered"].clone()).unwrap();
    for component in [
        "\"@method\"",
        "\"@path\"",
        "\"@query\"",
        "\"content-type\"",
        "\"content-digest\"",
        "\"workload-identity-token\"",
    ] {
        assert!(covered.iter().any(|c| c == component), "{component} in {covered:?}");
    }
}

#[tokio::test]
async fn http_signature_with_path_and_query() {
    let Setup { base, creds, .. } = setup().await;
    let client = workload_client(&creds, sig_mode(TargetComponents::PathAndQuery, false));
    // -07 covers @query even without a query (its value is then "?"), and never @authority.
    for url in [format!("{base}/signed?a=1&b=2"), format!("{base}/signed")] {
        let echo = json_ok(client.get(&url).send().await.unwrap()).await;
        let covered: Vec<String> = serde_json::from_value(echo["covered"].clone()).unwrap();
        assert!(covered.contains(&"\"@path\"".to_owned()), "{covered:?}");
        assert!(covered.contains(&"\"@query\"".to_owned()), "{covered:?}");
        assert!(
            !covered
                .iter()
                .any(|c| c.contains("@authority") || c.contains("@request-target")),
            "{covered:?}"
        );
    }
    // The -06 form is still available for peers that have not moved to -07.
    let legacy = client_for_06(&creds);
    let echo = json_ok(legacy.get(format!("{base}/signed")).send().await.unwrap()).await;
    assert!(
        echo["covered"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "\"@request-target\"")
    );
}

fn client_for_06(creds: &Arc<WorkloadCredentials>) -> ClientWithMiddleware {
    workload_client(creds, sig_mode(TargetComponents::RequestTarget, false))
}

#[tokio::test]
async fn a_voluntarily_signed_response_is_verified_too() {
    let Setup { env, base, creds } = setup().await;
    // The client does not ask for a signed response, but a server that signs anyway gets
    // its signature checked (draft-ietf-wimse-http-signature-07 section 3.4).
    let client = verifying_client(&creds, sig_mode(TargetComponents::default(), false), env.sig_verifier());
    let response = client.get(format!("{base}/signed-response")).send().await.unwrap();
    let responder = response.extensions().get::<lanyard_tower::VerifiedResponder>().cloned();
    assert_eq!(responder.map(|r| r.id.to_string()).as_deref(), Some(SERVER_ID));
    let err = client.get(format!("{base}/wrong-nonce")).send().await.unwrap_err();
    assert!(
        matches!(our_error(&err), Error::Response(e) if e.kind() == "signature_request_nonce"),
        "{err}"
    );
    // An unsigned response is fine when none was asked for.
    let echo = json_ok(client.get(format!("{base}/signed")).send().await.unwrap()).await;
    assert_eq!(echo["sign_response"], false);
}

#[tokio::test]
async fn http_signature_refuses_a_streaming_body() {
    let Setup { base, creds, .. } = setup().await;
    let client = workload_client(&creds, sig_mode(TargetComponents::default(), false));
    let err = client
        .post(format!("{base}/signed"))
        .body(reqwest::Body::wrap(String::from("streamed")))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(our_error(&err), Error::Request(_)), "{err}");
}

#[tokio::test]
async fn signed_response_is_verified_and_body_kept() {
    let Setup { env, base, creds } = setup().await;
    for target in [TargetComponents::RequestTarget, TargetComponents::PathAndQuery] {
        let client = verifying_client(&creds, sig_mode(target, true), env.sig_verifier_for(target));
        let payload = json!({"hello": "server"});
        let response = client
            .post(format!("{base}/signed-response?x=y"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&payload).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.url().as_str(), format!("{base}/signed-response?x=y"));
        assert!(response.headers().contains_key("signature"));
        let responder = response.extensions().get::<lanyard_tower::VerifiedResponder>().cloned();
        assert_eq!(responder.map(|r| r.id.to_string()).as_deref(), Some(SERVER_ID));
        let echo = json_ok(response).await;
        assert_eq!(echo["sub"], CLIENT_ID);
        assert_eq!(echo["sign_response"], true);
        assert_eq!(echo["body"], payload);
    }
}

#[tokio::test]
async fn unsigned_response_is_an_error() {
    let Setup { env, base, creds } = setup().await;
    let client = verifying_client(&creds, sig_mode(TargetComponents::default(), true), env.sig_verifier());
    let err = client
        .get(format!("{base}/unsigned-response"))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(our_error(&err), Error::Response(e) if e.kind() == "signature_missing"),
        "{err}"
    );
}

#[tokio::test]
async fn response_bound_to_another_request_is_an_error() {
    let Setup { env, base, creds } = setup().await;
    let client = verifying_client(&creds, sig_mode(TargetComponents::default(), true), env.sig_verifier());
    let err = client.get(format!("{base}/wrong-nonce")).send().await.unwrap_err();
    assert!(
        matches!(our_error(&err), Error::Response(e) if e.kind() == "signature_request_nonce"),
        "{err}"
    );
}

#[tokio::test]
async fn response_signed_by_an_untrusted_server_is_an_error() {
    let Setup { base, creds, .. } = setup().await;
    // The client trusts a different identity server than the one that issued the
    // server's WIT (the request signature is still accepted by the server).
    let other = Env::new();
    let client = verifying_client(
        &creds,
        sig_mode(TargetComponents::default(), true),
        other.sig_verifier(),
    );
    let err = client.get(format!("{base}/signed-response")).send().await.unwrap_err();
    assert!(matches!(our_error(&err), Error::Response(_)), "{err}");
}

#[tokio::test]
async fn signed_response_needs_a_verifier() {
    let Setup { base, creds, .. } = setup().await;
    let client = workload_client(&creds, sig_mode(TargetComponents::default(), true));
    let err = client.get(format!("{base}/signed-response")).send().await.unwrap_err();
    assert!(
        matches!(our_error(&err), Error::Request(m) if m.contains("verifier")),
        "{err}"
    );
}

#[tokio::test]
async fn file_credentials_rotate_between_requests() {
    let env = Env::new();
    let base = start(&env).await;
    let dir = tempfile::tempdir().unwrap();
    let (wit_path, key_path) = (dir.path().join("wit.jwt"), dir.path().join("key.pem"));
    let write = |sub: &str| {
        let key = lanyard_crypto::KeyPair::generate(Algorithm::ES256).unwrap();
        std::fs::write(&wit_path, env.wit(sub, &key)).unwrap();
        std::fs::write(&key_path, key.to_pkcs8_pem().unwrap()).unwrap();
        env.thumbprint(&key)
    };
    let first = write("spiffe://example.org/alpha");
    let source = Arc::new(FileCredentialSource::new(&wit_path, &key_path, env.provider.clone()));
    let client = client(WorkloadAuthMiddleware::new(
        source,
        wpt_mode(WptCarriage::Authorization),
    ));

    let echo = json_ok(client.get(format!("{base}/path")).send().await.unwrap()).await;
    assert_eq!(echo["sub"], "spiffe://example.org/alpha");
    assert_eq!(echo["thumbprint"], first);

    let second = write("spiffe://example.org/beta-rotated");
    assert_ne!(first, second);
    let echo = json_ok(client.get(format!("{base}/path")).send().await.unwrap()).await;
    assert_eq!(echo["sub"], "spiffe://example.org/beta-rotated");
    assert_eq!(echo["thumbprint"], second);
}

#[tokio::test]
async fn credential_source_errors_surface_as_middleware_errors() {
    let env = Env::new();
    let base = start(&env).await;
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(FileCredentialSource::new(
        dir.path().join("missing.jwt"),
        dir.path().join("missing.pem"),
        env.provider.clone(),
    ));
    let client = client(WorkloadAuthMiddleware::new(
        source,
        wpt_mode(WptCarriage::Authorization),
    ));
    let err = client.get(format!("{base}/path")).send().await.unwrap_err();
    assert!(matches!(our_error(&err), Error::CredentialSource { .. }), "{err}");
}
