//! The token endpoint's audit trail and counters (issue 12, item 8): one structured audit
//! line per issued or refused token request (client, method, grant, `jti`, outcome,
//! reason), never the token or the assertion; and
//! `lanyard_oauth_token_requests_total{grant, outcome}` at `/metrics`.
//!
//! A test binary of its own: it installs the process's tracing subscriber (capturing the
//! `audit` target into memory) and the Prometheus recorder (through the one server it
//! starts), both of which a process has once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use lanyard_core::oauth::{AuthMethod, ClientAssertionParams, create_client_assertion, encode_form};
use lanyard_core::{Algorithm, Clock, JwkSet, SystemClock};
use lanyard_server::ServerConfig;
use lanyard_server::model::OAuthClientSpec;
use lanyard_server::oauth::clients::create_client;
use serde_json::Value;

const LEDGER: &str = "https://ledger.example.org";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Everything the `audit` target logged, as JSON lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_token_request_is_audited_and_counted_without_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("audit=info"))
        .with_writer(move || writer.clone())
        .init();

    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        data_dir: dir.path().join("data"),
        public_address: "127.0.0.1:0".into(),
        agent_address: "127.0.0.1:0".into(),
        ..ServerConfig::default()
    };
    let server = lanyard_server::start(config).await.unwrap();
    let provider = lanyard_crypto::provider();
    let key = provider.generate_key(Algorithm::ES256).unwrap();
    let spec = OAuthClientSpec {
        spiffe_ids: Vec::new(),
        auth_methods: vec![AuthMethod::PrivateKeyJwt],
        jwks: Some(JwkSet {
            keys: vec![key.public_jwk()],
        }),
        jwks_uri: None,
        grant_types: Vec::new(),
        scopes: vec!["read".into()],
        audiences: vec![LEDGER.into()],
        access_token_ttl: 0,
        require_dpop: false,
        require_certificate_binding: false,
        exchange: Default::default(),
    };
    create_client(&server.state, "audited", spec, SystemClock.now())
        .await
        .unwrap();
    let issuer = server.oauth.issuer().to_owned();
    let new_assertion = || {
        create_client_assertion(
            key.as_ref(),
            &ClientAssertionParams::new("audited", &issuer),
            SystemClock.now(),
            provider.as_ref(),
        )
        .unwrap()
    };
    let http = reqwest::Client::new();
    // A form POST to `path` with `fields`, the client authenticated by `assertion`: the
    // status and the JSON answer (null when there is none).
    let post = |path: &'static str, fields: [(&'static str, String); 2], assertion: String| {
        let (http, url) = (http.clone(), format!("{}{path}", server.public_url));
        async move {
            let authentication = [
                ("client_id", "audited".to_owned()),
                ("client_assertion_type", JWT_BEARER.to_owned()),
                ("client_assertion", assertion),
            ];
            let body = encode_form(fields.iter().chain(&authentication).map(|(k, v)| (*k, v.as_str())));
            let response = http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null))
        }
    };
    let grant = |scope: &str| {
        [
            ("grant_type", "client_credentials".to_owned()),
            ("scope", scope.to_owned()),
        ]
    };
    // Issued; the same assertion again (a replay); a scope outside the registration.
    let assertion = new_assertion();
    let (status, issued) = post("/oauth/token", grant("read"), assertion.clone()).await;
    assert_eq!(status, 200, "{issued}");
    let token = issued["access_token"].as_str().unwrap().to_owned();
    let (status, replay) = post("/oauth/token", grant("read"), assertion.clone()).await;
    assert_eq!((status, replay["error"].as_str()), (401, Some("invalid_client")));
    let fresh = new_assertion();
    let (status, wide) = post("/oauth/token", grant("admin"), fresh.clone()).await;
    assert_eq!((status, wide["error"].as_str()), (400, Some("invalid_scope")));
    // Introspection and revocation (RFC 7009) are audited too, with the same fields.
    let hint = [("token", token.clone()), ("token_type_hint", "access_token".to_owned())];
    let for_introspection = new_assertion();
    let (status, introspected) = post("/oauth/introspect", hint.clone(), for_introspection.clone()).await;
    assert_eq!((status, &introspected["active"]), (200, &Value::Bool(true)));
    let for_revocation = new_assertion();
    let (status, _) = post("/oauth/revoke", hint, for_revocation.clone()).await;
    assert_eq!(status, 200);

    let lines: Vec<Value> = captured
        .lines()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "oauth" && l["fields"]["endpoint"] == "token")
        .collect();
    let fields = |l: &Value, name: &str| l["fields"][name].as_str().unwrap_or_default().to_owned();
    let seen: Vec<(String, String, String, String)> = lines
        .iter()
        .map(|l| {
            (
                fields(l, "client"),
                fields(l, "method"),
                fields(l, "grant"),
                fields(l, "outcome"),
            )
        })
        .collect();
    let expected = |outcome: &str| {
        (
            "audited".to_owned(),
            "private_key_jwt".to_owned(),
            "client_credentials".to_owned(),
            outcome.to_owned(),
        )
    };
    assert_eq!(
        seen,
        vec![expected("ok"), expected("invalid_client"), expected("invalid_scope")],
        "{lines:#?}"
    );
    // The issued line names the token's jti; the refusals say why, and name no jti.
    let claims = lanyard_core::jose::CompactJws::parse(&token).unwrap().claims().unwrap();
    assert_eq!(fields(&lines[0], "jti"), claims["jti"].as_str().unwrap());
    assert_eq!(fields(&lines[0], "reason"), "-");
    assert_eq!(fields(&lines[1], "jti"), "-");
    assert_ne!(fields(&lines[1], "reason"), "-");
    assert_ne!(fields(&lines[2], "reason"), "-");
    // Each line names the peer the request came from.
    for line in &lines {
        assert_eq!(fields(line, "remote"), "127.0.0.1", "{line}");
    }
    for endpoint in ["introspect", "revoke"] {
        let seen: Vec<Value> = captured
            .lines()
            .into_iter()
            .filter(|l| l["fields"]["message"] == "oauth" && l["fields"]["endpoint"] == endpoint)
            .collect();
        assert_eq!(seen.len(), 1, "{endpoint}: {seen:#?}");
        for (name, value) in [
            ("client", "audited"),
            ("method", "private_key_jwt"),
            ("outcome", "ok"),
            ("remote", "127.0.0.1"),
        ] {
            assert_eq!(fields(&seen[0], name), value, "{endpoint} {name}");
        }
    }
    // No secret reaches the log: not the token, not either assertion, not a signature.
    let everything = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for secret in [&token, &assertion, &fresh, &for_introspection, &for_revocation] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!everything.contains(signature), "a credential was logged");
    }

    // The counters, per grant and outcome.
    let metrics = http
        .get(format!("{}/metrics", server.public_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for outcome in ["ok", "invalid_client", "invalid_scope"] {
        let series =
            format!("lanyard_oauth_token_requests_total{{grant=\"client_credentials\",outcome=\"{outcome}\"}} 1");
        assert!(metrics.contains(&series), "{series} missing from:\n{metrics}");
    }
    server.shutdown().await.unwrap();
}
