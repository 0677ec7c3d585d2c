//! The OAuth authorization server (issue 12) end to end: a real server on loopback, clients
//! registered through the domain API, requests over HTTP. Every "Bad input" of the issue
//! has a case asserting its HTTP status and OAuth `error` code (and, where the code alone
//! does not tell the reason, a fragment of `error_description`); the happy paths verify the
//! issued RFC 9068 token against the server's `jwks_uri`. Replay state is checked across a
//! restart (SQLite) and across two replicas on one PostgreSQL database (when
//! `LANYARD_TEST_DATABASE_URL` names a server).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use lanyard_core::jose::sign_compact;
use lanyard_core::oauth::{
    AccessTokenPolicy, AccessTokenVerifier, AuthMethod, ClientAssertionParams, ClientAttestationPopParams,
    DpopProofParams, SpiffeIdPattern, VerificationKeys, create_client_assertion, create_client_attestation_pop,
    create_dpop_proof, encode_form,
};
use lanyard_core::{
    Algorithm, Clock, JwkSet, JwtSvidIssuer, SigningKey, SpiffeBundle, SpiffeId, SystemClock, TrustDomain, UnixTime,
    WorkloadId,
};
use lanyard_server::model::OAuthClientSpec;
use lanyard_server::oauth::clients::create_client;
use lanyard_server::{RunningServer, ServerConfig};
use lanyard_testing::key_host::KeyHost;

const LEDGER: &str = "https://ledger.example.org";
const OTHER: &str = "https://other.example.org";
const FORM: &str = "application/x-www-form-urlencoded";
const JWT_SPIFFE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn now() -> UnixTime {
    SystemClock.now()
}

/// A server on ephemeral ports. `client_error_details` is on, so that the tests can read
/// why a client authentication failed from the description (the default hides it:
/// `unknown_clients_and_bad_credentials_look_alike`).
fn config(dir: &Path) -> ServerConfig {
    ServerConfig {
        data_dir: dir.join("data"),
        public_address: "127.0.0.1:0".into(),
        agent_address: "127.0.0.1:0".into(),
        log_level: "warn".into(),
        oauth: lanyard_server::config::OAuthConfig {
            client_error_details: true,
            ..Default::default()
        },
        ..ServerConfig::default()
    }
}

/// A running server with its registered clients' keys.
struct Harness {
    server: RunningServer,
    http: reqwest::Client,
    issuer: String,
    /// The `private_key_jwt` key of the clients `billing` and `dpop-only`.
    key: Arc<dyn SigningKey>,
}

fn spec(methods: Vec<AuthMethod>) -> OAuthClientSpec {
    OAuthClientSpec {
        spiffe_ids: Vec::new(),
        auth_methods: methods,
        jwks: None,
        jwks_uri: None,
        grant_types: Vec::new(),
        scopes: vec!["read".into(), "write".into()],
        audiences: vec![LEDGER.into(), OTHER.into()],
        access_token_ttl: 0,
        require_dpop: false,
        require_certificate_binding: false,
        exchange: Default::default(),
    }
}

impl Harness {
    async fn start(config: ServerConfig, key: Option<Arc<dyn SigningKey>>, register: bool) -> Harness {
        let server = lanyard_server::start(config).await.unwrap();
        let provider = lanyard_crypto::provider();
        let key = key.unwrap_or_else(|| provider.generate_key(Algorithm::ES256).unwrap());
        let h = Harness {
            issuer: server.oauth.issuer().to_owned(),
            http: reqwest::Client::new(),
            server,
            key,
        };
        if register {
            h.register().await;
        }
        h
    }

    async fn register(&self) {
        let state = &self.server.state;
        let mut jwk = self.key.public_jwk();
        jwk.kid = Some("client-key-1".into());
        let jwks = JwkSet { keys: vec![jwk] };
        let billing = OAuthClientSpec {
            jwks: Some(jwks.clone()),
            ..spec(vec![AuthMethod::PrivateKeyJwt])
        };
        create_client(state, "billing", billing, now()).await.unwrap();
        let dpop_only = OAuthClientSpec {
            jwks: Some(jwks),
            require_dpop: true,
            ..spec(vec![AuthMethod::PrivateKeyJwt])
        };
        create_client(state, "dpop-only", dpop_only, now()).await.unwrap();
        let spiffe = OAuthClientSpec {
            spiffe_ids: vec![SpiffeIdPattern::parse("spiffe://example.org/billing/*").unwrap()],
            ..spec(vec![AuthMethod::SpiffeJwt])
        };
        create_client(state, "https://apps.example.org/billing", spiffe, now())
            .await
            .unwrap();
        // A client tied to the federated trust domain only.
        let partner = OAuthClientSpec {
            spiffe_ids: vec![SpiffeIdPattern::parse("spiffe://partner.org/*").unwrap()],
            ..spec(vec![AuthMethod::SpiffeJwt])
        };
        create_client(state, "partner", partner, now()).await.unwrap();
    }

    /// The RFC 8414 metadata document.
    async fn metadata(&self) -> Value {
        let url = self.url("/.well-known/oauth-authorization-server");
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.public_url)
    }

    fn assertion(&self, client_id: &str) -> String {
        let provider = lanyard_crypto::provider();
        let params = ClientAssertionParams {
            kid: Some("client-key-1"),
            ..ClientAssertionParams::new(client_id, &self.issuer)
        };
        create_client_assertion(self.key.as_ref(), &params, now(), provider.as_ref()).unwrap()
    }

    /// An assertion from `billing` with these claims and `typ`, signed by its key.
    fn crafted(&self, typ: Option<&str>, claims: &Value) -> String {
        sign_compact(typ, Some("client-key-1"), claims, self.key.as_ref()).unwrap()
    }

    fn claims(&self) -> Value {
        let t = now().as_secs();
        json!({"iss": "billing", "sub": "billing", "aud": self.issuer, "iat": t, "exp": t + 60, "jti": random_jti()})
    }

    async fn jwt_svid(&self, id: &str, audience: &str) -> String {
        let sub = SpiffeId::parse(id).unwrap();
        lanyard_server::issue::mint_jwt_svid(&self.server.state, &sub, &[audience], None)
            .await
            .unwrap()
            .token
    }

    async fn post(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.http.post(self.url(path)).body(body.to_owned());
        let mut content_type = false;
        for (name, value) in headers {
            content_type |= name.eq_ignore_ascii_case("content-type");
            request = request.header(*name, *value);
        }
        if !content_type {
            request = request.header("content-type", FORM);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    async fn token(&self, pairs: &[(&str, &str)], headers: &[(&str, &str)]) -> Reply {
        self.post("/oauth/token", &encode_form(pairs.iter().copied()), headers)
            .await
    }

    /// A `client_credentials` request from `client_id` with a `private_key_jwt` assertion.
    async fn token_as(
        &self,
        client_id: &str,
        assertion: &str,
        extra: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut pairs = vec![
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ];
        pairs.extend_from_slice(extra);
        self.token(&pairs, headers).await
    }

    async fn pkjwt_token(&self, assertion: &str, extra: &[(&str, &str)]) -> Reply {
        self.token_as("billing", assertion, extra, &[]).await
    }

    async fn verify_access_token(&self, token: &str, audience: &str) -> lanyard_core::oauth::VerifiedAccessToken {
        let jwks: JwkSet = serde_json::from_str(
            &self
                .http
                .get(self.url("/oauth/jwks"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        )
        .unwrap();
        let provider = lanyard_crypto::provider();
        let keys = VerificationKeys::from_jwks(provider.as_ref(), self.issuer.clone(), &jwks).unwrap();
        AccessTokenVerifier::new(AccessTokenPolicy::new(self.issuer.clone(), audience))
            .verify(token, &keys, now())
            .unwrap()
    }
}

fn random_jti() -> String {
    let mut b = [0u8; 12];
    lanyard_crypto::provider().fill_random(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An HTTP answer.
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    async fn from(r: reqwest::Response) -> Reply {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        Reply {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an OAuth error response: status, code, a description fragment, no token,
    /// and `Cache-Control: no-store`.
    #[track_caller]
    fn error(&self, status: u16, code: &str, fragment: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["error"], code, "{}", self.body);
        let description = self.body["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(fragment), "{description:?} lacks {fragment:?}");
        assert!(self.body.get("access_token").is_none());
        assert_eq!(self.header("cache-control"), Some("no-store"));
    }

    #[track_caller]
    fn ok_token(&self) -> &str {
        assert_eq!(self.status, 200, "{}", self.body);
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert!(self.body.get("refresh_token").is_none());
        self.body["access_token"].as_str().unwrap()
    }
}

// ---- happy paths ----

#[tokio::test]
async fn private_key_jwt_client_credentials_issues_a_verifiable_at_jwt() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(config(dir.path()), None, true).await;
    let reply = h
        .pkjwt_token(&h.assertion("billing"), &[("scope", "read"), ("resource", LEDGER)])
        .await;
    let token = reply.ok_token().to_owned();
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["scope"], "read");
    assert_eq!(reply.body["expires_in"], 300);
    let at = h.verify_access_token(&token, LEDGER).await;
    assert_eq!(at.claims.client_id, "billing");
    assert_eq!(at.claims.sub, "billing");
    assert_eq!(at.claims.aud.as_slice(), [LEDGER]);
    assert!(at.claims.cnf.is_none());
    // Without scope or resource: every registered scope and audience.
    let reply = h.pkjwt_token(&h.assertion("billing"), &[]).await;
    let at = h.verify_access_token(reply.ok_token(), OTHER).await;
    assert_eq!(at.claims.aud.as_slice(), [LEDGER, OTHER]);
    assert_eq!(reply.body["scope"], "read write");
    // Without client_id, the assertion's sub names the client (RFC 7523 §3).
    let reply = h
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &h.assertion("billing")),
            ],
            &[],
        )
        .await;
    reply.ok_token();
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn jwt_svid_authenticates_an_authorized_client() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(config(dir.path()), None, true).await;
    let svid = h.jwt_svid("spiffe://example.org/billing/api", &h.issuer).await;
    let pairs = [
        ("grant_type", "client_credentials"),
        ("client_id", "https://apps.example.org/billing"),
        ("client_assertion_type", JWT_SPIFFE),
        ("client_assertion", svid.as_str()),
    ];
    let reply = h.token(&pairs, &[]).await;
    let at = h.verify_access_token(reply.ok_token(), LEDGER).await;
    assert_eq!(at.claims.client_id, "https://apps.example.org/billing");
    // JWT-SVIDs are reused by agents: the same one works again.
    h.token(&pairs, &[]).await.ok_token();
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn client_secret_methods_only_for_clients_with_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(config(dir.path()), None, true).await;
    let metadata = h.metadata().await;
    let methods = metadata["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(!methods.iter().any(|m| m == "client_secret_basic"), "{metadata}");
    let created = create_client(
        &h.server.state,
        "legacy",
        spec(vec![AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost]),
        now(),
    )
    .await
    .unwrap();
    let secret = created.secret.clone().unwrap();
    assert!(!format!("{created:?}").contains(&secret));
    let stored = h
        .server
        .state
        .stores
        .clients
        .get_client("legacy")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.secret_hash.as_deref().unwrap().starts_with("$argon2id$"));
    assert!(!stored.secret_hash.as_deref().unwrap().contains(&secret));

    let basic = |id: &str, s: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{s}"))
        )
    };
    let grant = [("grant_type", "client_credentials")];
    h.token(&grant, &[("authorization", &basic("legacy", &secret))])
        .await
        .ok_token();
    h.token(
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "legacy"),
            ("client_secret", &secret),
        ],
        &[],
    )
    .await
    .ok_token();
    // A wrong secret with the header: 401 and a Basic challenge (RFC 6749 §5.2).
    let reply = h.token(&grant, &[("authorization", &basic("legacy", "wrong"))]).await;
    reply.error(401, "invalid_client", "invalid client secret");
    assert!(reply.header("www-authenticate").unwrap().starts_with("Basic "));
    // A client without a secret cannot use one.
    let reply = h.token(&grant, &[("authorization", &basic("billing", "guess"))]).await;
    reply.error(401, "invalid_client", "may not authenticate with this method");
    let metadata = h.metadata().await;
    let methods = metadata["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.iter().any(|m| m == "client_secret_basic"), "{metadata}");
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn metadata_and_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(config(dir.path()), None, true).await;
    let m = h.metadata().await;
    assert_eq!(m["issuer"], h.issuer);
    assert!(!h.issuer.ends_with('/'));
    assert_eq!(m["token_endpoint"], h.url("/oauth/token"));
    assert_eq!(m["jwks_uri"], h.url("/oauth/jwks"));
    assert_eq!(m["introspection_endpoint"], h.url("/oauth/introspect"));
    assert_eq!(m["revocation_endpoint"], h.url("/oauth/revoke"));
    assert_eq!(
        m["grant_types_supported"],
        json!(["client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"])
    );
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        json!(["private_key_jwt", "spiffe_jwt", "spiffe_x509", "tls_client_auth"])
    );
    assert!(
        m["dpop_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256"))
    );
    assert_eq!(m["response_types_supported"], json!([]));
    // The access-token key is in the AS's JWKS and not in the SPIFFE bundle.
    let jwks: JwkSet = h
        .http
        .get(h.url("/oauth/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks.keys.len(), 1);
    let kid = jwks.keys[0].kid.clone().unwrap();
    let bundle = h.http.get(h.url("/bundle")).send().await.unwrap().text().await.unwrap();
    assert!(!bundle.contains(&kid));
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn dpop_bound_tokens_with_nonces_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(config(dir.path()), None, true).await;
    let provider = lanyard_crypto::provider();
    let dpop_key = provider.generate_key(Algorithm::ES256).unwrap();
    let token_url = h.url("/oauth/token");
    let proof = |method: &str, uri: &str, nonce: Option<&str>, at: UnixTime| {
        create_dpop_proof(
            dpop_key.as_ref(),
            &DpopProofParams {
                method,
                uri,
                access_token: None,
                nonce,
            },
            at,
            provider.as_ref(),
        )
        .unwrap()
    };
    // A client that must use DPoP gets nothing without a proof.
    h.token_as("dpop-only", &h.assertion("dpop-only"), &[], &[])
        .await
        .error(400, "invalid_request", "DPoP proof");

    // No nonce: use_dpop_nonce with a DPoP-Nonce header, and the assertion is not used up.
    let assertion = h.assertion("dpop-only");
    let request = |proof: String, assertion: String| {
        let h = &h;
        async move { h.token_as("dpop-only", &assertion, &[], &[("dpop", &proof)]).await }
    };
    let reply = request(proof("POST", &token_url, None, now()), assertion.clone()).await;
    reply.error(400, "use_dpop_nonce", "nonce");
    let nonce = reply.header("dpop-nonce").unwrap().to_owned();
    // A nonce that is not the server's: use_dpop_nonce again.
    request(proof("POST", &token_url, Some("made-up"), now()), assertion.clone())
        .await
        .error(400, "use_dpop_nonce", "not current");
    let good = proof("POST", &token_url, Some(&nonce), now());
    let reply = request(good.clone(), assertion).await;
    let token = reply.ok_token().to_owned();
    assert_eq!(reply.body["token_type"], "DPoP");
    let at = h.verify_access_token(&token, LEDGER).await;
    let jkt = dpop_key.public_jwk().thumbprint(provider.as_ref()).unwrap();
    assert_eq!(at.claims.cnf.as_ref().unwrap().jkt.as_deref(), Some(jkt.as_str()));

    // The same proof again: replay.
    request(good, h.assertion("dpop-only"))
        .await
        .error(400, "invalid_dpop_proof", "already used");
    // Wrong htu, wrong htm, stale iat.
    request(
        proof("POST", &h.url("/oauth/other"), Some(&nonce), now()),
        h.assertion("dpop-only"),
    )
    .await
    .error(400, "invalid_dpop_proof", "htu");
    request(proof("GET", &token_url, Some(&nonce), now()), h.assertion("dpop-only"))
        .await
        .error(400, "invalid_dpop_proof", "htm");
    request(
        proof("POST", &token_url, Some(&nonce), now().minus(3600)),
        h.assertion("dpop-only"),
    )
    .await
    .error(400, "invalid_dpop_proof", "older than");
    // Two DPoP headers (RFC 9449 §4.3: exactly one).
    let (first, second) = (
        proof("POST", &token_url, Some(&nonce), now()),
        proof("POST", &token_url, Some(&nonce), now()),
    );
    h.token_as(
        "dpop-only",
        &h.assertion("dpop-only"),
        &[],
        &[("dpop", &first), ("dpop", &second)],
    )
    .await
    .error(400, "invalid_dpop_proof", "more than once");

    // Introspection shows the binding, scope and client; revocation deactivates it.
    let introspect = |token: String| {
        let h = &h;
        async move {
            h.post(
                "/oauth/introspect",
                &encode_form([
                    ("token", token.as_str()),
                    ("client_id", "billing"),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &h.assertion("billing")),
                ]),
                &[],
            )
            .await
        }
    };
    let reply = introspect(token.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["active"], true);
    assert_eq!(reply.body["cnf"]["jkt"], jkt);
    assert_eq!(reply.body["client_id"], "dpop-only");
    assert_eq!(reply.body["scope"], "read write");
    assert_eq!(reply.body["token_type"], "DPoP");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    // Introspection requires client authentication.
    h.post("/oauth/introspect", &encode_form([("token", token.as_str())]), &[])
        .await
        .error(401, "invalid_client", "no client authentication");
    // Revocation by another client is refused and does nothing (RFC 7009 §2.1); by the
    // owner it deactivates the token.
    let revoke = |client: &'static str, token: String| {
        let h = &h;
        async move {
            h.post(
                "/oauth/revoke",
                &encode_form([
                    ("token", token.as_str()),
                    ("client_id", client),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &h.assertion(client)),
                ]),
                &[],
            )
            .await
        }
    };
    revoke("billing", token.clone())
        .await
        .error(400, "invalid_request", "issued to another client");
    assert_eq!(introspect(token.clone()).await.body["active"], true);
    let revoked = revoke("dpop-only", token.clone()).await;
    assert_eq!(revoked.status, 200);
    assert_eq!(revoked.header("content-type"), None, "an empty body names no type");
    assert_eq!(introspect(token.clone()).await.body, json!({"active": false}));
    assert_eq!(introspect("not-a-token".into()).await.body, json!({"active": false}));
    h.server.shutdown().await.unwrap();
}

// ---- keys from a client's jwks_uri ----

/// A `private_key_jwt` client registered with a `jwks_uri`: its keys are fetched once and
/// cached; when it rotates to a key the cached set lacks, an assertion with the new `kid`
/// makes one more fetch (not before `client_jwks_refetch_interval`, so made-up `kid`s
/// cannot make the server hammer the client's host); a set that cannot be fetched is
/// `invalid_client` and is not fetched again before the interval either.
#[tokio::test]
async fn a_jwks_uri_client_is_fetched_once_and_again_when_it_rotates_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // Two seconds: the server counts in whole seconds, so requests less than a second
    // apart are always within it.
    cfg.oauth.client_jwks_refetch_interval = 2;
    let h = Harness::start(cfg, None, false).await;
    let provider = lanyard_crypto::provider();
    let keyed = |kid: &str| {
        let key = provider.generate_key(Algorithm::ES256).unwrap();
        let mut jwk = key.public_jwk();
        jwk.kid = Some(kid.into());
        (key, jwk)
    };
    let (old_key, old_jwk) = keyed("old");
    let (new_key, new_jwk) = keyed("new");
    let jwks = KeyHost::start(&JwkSet {
        keys: vec![old_jwk.clone()],
    })
    .await;
    let uri = jwks.jwks_uri();
    let registered = OAuthClientSpec {
        jwks_uri: Some(uri.clone()),
        ..spec(vec![AuthMethod::PrivateKeyJwt])
    };
    create_client(&h.server.state, "rotating", registered, now())
        .await
        .unwrap();
    // Credentials in a jwks_uri (they would be sent, and logged with a failed fetch) and
    // a plain-http remote jwks_uri are refused at registration.
    for bad in [
        uri.replace("http://", "http://user:secret@"),
        "https://keys.example.com:8443@evil.example/jwks".to_owned(),
        "http://keys.example.com/jwks".to_owned(),
    ] {
        let spec = OAuthClientSpec {
            jwks_uri: Some(bad.clone()),
            ..spec(vec![AuthMethod::PrivateKeyJwt])
        };
        let refused = create_client(&h.server.state, "bad-uri", spec, now()).await;
        assert!(refused.is_err(), "{bad}");
    }
    let assertion = |key: &dyn SigningKey, kid: &str| {
        let params = ClientAssertionParams {
            kid: Some(kid),
            ..ClientAssertionParams::new("rotating", &h.issuer)
        };
        create_client_assertion(key, &params, now(), provider.as_ref()).unwrap()
    };

    // Fetched once, then served from the cache.
    for _ in 0..3 {
        h.token_as("rotating", &assertion(old_key.as_ref(), "old"), &[], &[])
            .await
            .ok_token();
    }
    assert_eq!(jwks.fetches(), 1);

    // The client rotates: an assertion with the new kid. Within the interval of the last
    // fetch it is refused without a fetch; after it, one fetch finds the key.
    jwks.publish(&JwkSet {
        keys: vec![new_jwk.clone()],
    });
    let rotated = h
        .token_as("rotating", &assertion(new_key.as_ref(), "new"), &[], &[])
        .await;
    let fetched = jwks.fetches();
    if rotated.status == 200 {
        // The first fetch was already the interval old (a slow machine): fetched again.
        assert_eq!(fetched, 2);
    } else {
        rotated.error(401, "invalid_client", "");
        assert_eq!(fetched, 1);
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        h.token_as("rotating", &assertion(new_key.as_ref(), "new"), &[], &[])
            .await
            .ok_token();
        assert_eq!(jwks.fetches(), 2);
    }
    // The old key is gone from the set now.
    h.token_as("rotating", &assertion(old_key.as_ref(), "old"), &[], &[])
        .await
        .error(401, "invalid_client", "");
    // A flood of made-up kids right after a fetch: no fetch at all.
    for i in 0..5 {
        let kid = format!("made-up-{i}");
        h.token_as("rotating", &assertion(new_key.as_ref(), &kid), &[], &[])
            .await
            .error(401, "invalid_client", "");
    }
    assert_eq!(jwks.fetches(), 2);

    // A registration with another jwks_uri fetches afresh; an unreachable set is
    // invalid_client with the reason, and is not fetched again within the interval.
    jwks.set_down(true);
    let updated = OAuthClientSpec {
        jwks_uri: Some(format!("{uri}?v=2")),
        ..spec(vec![AuthMethod::PrivateKeyJwt])
    };
    lanyard_server::oauth::clients::update_client(&h.server.state, "rotating", updated, None)
        .await
        .unwrap();
    h.token_as("rotating", &assertion(new_key.as_ref(), "new"), &[], &[])
        .await
        .error(401, "invalid_client", "keys are unavailable");
    h.token_as("rotating", &assertion(new_key.as_ref(), "new"), &[], &[])
        .await
        .error(401, "invalid_client", "not fetched again");
    assert_eq!(jwks.fetches(), 3);

    // Deleted and registered again under the same name (so again at revision 1) with a
    // JWK Set of its own, twice: only the set of the current registration is accepted.
    let clients = &h.server.state.stores.clients;
    for (current, previous) in [(&old_jwk, &new_key), (&new_jwk, &old_key)] {
        assert!(clients.delete_client("rotating").await.unwrap());
        let inline = OAuthClientSpec {
            jwks: Some(JwkSet {
                keys: vec![current.clone()],
            }),
            ..spec(vec![AuthMethod::PrivateKeyJwt])
        };
        create_client(&h.server.state, "rotating", inline, now()).await.unwrap();
        let (key, kid) = if current.kid.as_deref() == Some("old") {
            (&old_key, "old")
        } else {
            (&new_key, "new")
        };
        h.token_as("rotating", &assertion(key.as_ref(), kid), &[], &[])
            .await
            .ok_token();
        let stale = if kid == "old" { "new" } else { "old" };
        h.token_as("rotating", &assertion(previous.as_ref(), stale), &[], &[])
            .await
            .error(401, "invalid_client", "");
    }
    h.server.shutdown().await.unwrap();
}

// ---- bad input ----

/// With the default configuration, an unknown client, a known one with a forged
/// assertion, and a known one using a method it is not registered for all get the same
/// `invalid_client` description, so the endpoint does not tell which clients exist; the
/// reasons that do not depend on the registry (no `client_id` with a SPIFFE method) or
/// that only a credential's holder reaches (a replay) are still named.
#[tokio::test]
async fn unknown_clients_and_bad_credentials_look_alike() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(
        ServerConfig {
            oauth: Default::default(),
            ..config(dir.path())
        },
        None,
        true,
    )
    .await;
    let description = |r: &Reply| r.body["error_description"].as_str().unwrap_or_default().to_owned();
    let unknown = h.token_as("nobody", &h.assertion("nobody"), &[], &[]).await;
    unknown.error(401, "invalid_client", "client authentication failed");
    let other = lanyard_crypto::provider().generate_key(Algorithm::ES256).unwrap();
    let forged = sign_compact(None, Some("client-key-1"), &h.claims(), other.as_ref()).unwrap();
    let bad_signature = h.pkjwt_token(&forged, &[]).await;
    bad_signature.error(401, "invalid_client", "");
    // `partner` is registered for jwt-spiffe only.
    let wrong_method = h.token_as("partner", &h.assertion("partner"), &[], &[]).await;
    wrong_method.error(401, "invalid_client", "");
    assert_eq!(description(&unknown), description(&bad_signature));
    assert_eq!(description(&unknown), description(&wrong_method));
    assert!(!description(&unknown).contains("unknown"), "{}", description(&unknown));

    // With a secret: an unknown client and a wrong secret for a known one.
    create_client(
        &h.server.state,
        "legacy",
        spec(vec![AuthMethod::ClientSecretBasic]),
        now(),
    )
    .await
    .unwrap();
    let basic = |id: &str| {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:wrong"));
        format!("Basic {encoded}")
    };
    let grant = [("grant_type", "client_credentials")];
    let wrong_secret = h.token(&grant, &[("authorization", &basic("legacy"))]).await;
    let unknown_secret = h.token(&grant, &[("authorization", &basic("nobody"))]).await;
    wrong_secret.error(401, "invalid_client", "");
    unknown_secret.error(401, "invalid_client", "");
    assert_eq!(description(&wrong_secret), description(&unknown_secret));
    // A JWT-SVID: for an unknown client, and for a known one it is not authorized for.
    let svid = h.jwt_svid("spiffe://example.org/billing/api", &h.issuer).await;
    let spiffe = |client_id: &'static str| {
        let svid = svid.clone();
        let h = &h;
        async move {
            let pairs = [
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_assertion_type", JWT_SPIFFE),
                ("client_assertion", svid.as_str()),
            ];
            h.token(&pairs, &[]).await
        }
    };
    let (unknown_svid, unauthorized) = (spiffe("nobody").await, spiffe("partner").await);
    unknown_svid.error(401, "invalid_client", "client authentication failed");
    unauthorized.error(401, "invalid_client", "");
    assert_eq!(description(&unknown_svid), description(&unauthorized));

    let assertion = h.assertion("billing");
    h.pkjwt_token(&assertion, &[]).await.ok_token();
    h.pkjwt_token(&assertion, &[])
        .await
        .error(401, "invalid_client", "already used");
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn private_key_jwt_bad_assertions() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(config(dir.path()), None, true).await;
    // A reused assertion.
    let assertion = h.assertion("billing");
    h.pkjwt_token(&assertion, &[]).await.ok_token();
    h.pkjwt_token(&assertion, &[])
        .await
        .error(401, "invalid_client", "already used");
    // aud: the issuer plus another value; the issuer with a trailing slash.
    let mut c = h.claims();
    c["aud"] = json!([h.issuer, LEDGER]);
    h.pkjwt_token(&h.crafted(None, &c), &[])
        .await
        .error(401, "invalid_client", "sole value");
    let mut c = h.claims();
    c["aud"] = json!(format!("{}/", h.issuer));
    h.pkjwt_token(&h.crafted(None, &c), &[])
        .await
        .error(401, "invalid_client", "trailing slash");
    // The token endpoint URL as aud (rfc7523bis forbids it).
    let mut c = h.claims();
    c["aud"] = json!(h.url("/oauth/token"));
    h.pkjwt_token(&h.crafted(None, &c), &[])
        .await
        .error(401, "invalid_client", "");
    // typ of another token type.
    for typ in ["at+jwt", "wit+jwt"] {
        h.pkjwt_token(&h.crafted(Some(typ), &h.claims()), &[])
            .await
            .error(401, "invalid_client", "");
    }
    // typ JWT and client-authentication+jwt are fine.
    for typ in ["JWT", "client-authentication+jwt"] {
        h.pkjwt_token(&h.crafted(Some(typ), &h.claims()), &[]).await.ok_token();
    }
    // Expired; not yet valid.
    let t = now().as_secs();
    let mut c = h.claims();
    c["iat"] = json!(t - 600);
    c["exp"] = json!(t - 500);
    h.pkjwt_token(&h.crafted(None, &c), &[])
        .await
        .error(401, "invalid_client", "expired");
    let mut c = h.claims();
    c["iat"] = json!(t + 600);
    c["nbf"] = json!(t + 600);
    c["exp"] = json!(t + 650);
    h.pkjwt_token(&h.crafted(None, &c), &[])
        .await
        .error(401, "invalid_client", "");
    // Signed by another key.
    let other = lanyard_crypto::provider().generate_key(Algorithm::ES256).unwrap();
    let forged = sign_compact(None, Some("client-key-1"), &h.claims(), other.as_ref()).unwrap();
    h.pkjwt_token(&forged, &[]).await.error(401, "invalid_client", "");
    // An unknown client.
    let reply = h.token_as("nobody", &h.assertion("nobody"), &[], &[]).await;
    reply.error(401, "invalid_client", "unknown client");
    assert!(reply.header("www-authenticate").is_none());
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn jwt_svid_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(config(dir.path()), None, true).await;
    // A federated trust domain whose JWT-SVIDs the server can verify.
    let provider = lanyard_crypto::provider();
    let partner_key = provider.generate_key(Algorithm::ES256).unwrap();
    let mut jwk = partner_key.public_jwk();
    jwk.kid = Some("partner-1".into());
    jwk.key_use = Some("jwt-svid".into());
    let mut bundle = SpiffeBundle::new(TrustDomain::parse("partner.org").unwrap());
    bundle.jwt_authorities.push(jwk);
    h.server
        .state
        .stores
        .federated_bundles
        .put_federated_bundle("partner.org", &bundle.to_json(), now())
        .await
        .unwrap();
    h.server.oauth.refresh_trust().await.unwrap();
    let partner_svid = |sub: &str, aud: &str| {
        JwtSvidIssuer::new(Arc::clone(&partner_key), "partner-1", None)
            .unwrap()
            .issue(&SpiffeId::parse(sub).unwrap(), aud, now(), 120)
            .unwrap()
    };
    let request = |client_id: Option<&'static str>, svid: String| {
        let h = &h;
        async move {
            let mut pairs = vec![
                ("grant_type", "client_credentials"),
                ("client_assertion_type", JWT_SPIFFE),
                ("client_assertion", svid.as_str()),
            ];
            if let Some(id) = client_id {
                pairs.push(("client_id", id));
            }
            h.token(&pairs, &[]).await
        }
    };
    // The partner's SVID works for the partner's client...
    request(Some("partner"), partner_svid("spiffe://partner.org/app", &h.issuer))
        .await
        .ok_token();
    // ...but not for a client tied to example.org only.
    request(
        Some("https://apps.example.org/billing"),
        partner_svid("spiffe://partner.org/billing/api", &h.issuer),
    )
    .await
    .error(401, "invalid_client", "not authorized");
    // A sub of the right trust domain outside the client's patterns.
    let svid = h.jwt_svid("spiffe://example.org/payroll", &h.issuer).await;
    request(Some("https://apps.example.org/billing"), svid.clone())
        .await
        .error(401, "invalid_client", "not authorized");
    // A trust domain the server does not trust at all.
    let stranger = provider.generate_key(Algorithm::ES256).unwrap();
    let foreign = JwtSvidIssuer::new(stranger, "x", None)
        .unwrap()
        .issue(
            &SpiffeId::parse("spiffe://stranger.org/billing").unwrap(),
            &h.issuer,
            now(),
            120,
        )
        .unwrap();
    request(Some("https://apps.example.org/billing"), foreign)
        .await
        .error(401, "invalid_client", "");
    // Missing client_id (required by the current draft).
    let svid = h.jwt_svid("spiffe://example.org/billing/api", &h.issuer).await;
    request(None, svid)
        .await
        .error(401, "invalid_client", "client_id is required");
    // aud: issuer plus another; trailing slash.
    let sub = SpiffeId::parse("spiffe://example.org/billing/api").unwrap();
    let two = lanyard_server::issue::mint_jwt_svid(&h.server.state, &sub, &[h.issuer.as_str(), LEDGER], None)
        .await
        .unwrap()
        .token;
    request(Some("https://apps.example.org/billing"), two)
        .await
        .error(401, "invalid_client", "sole value");
    let slash = h
        .jwt_svid("spiffe://example.org/billing/api", &format!("{}/", h.issuer))
        .await;
    request(Some("https://apps.example.org/billing"), slash)
        .await
        .error(401, "invalid_client", "trailing slash");
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn compat_switch_derives_the_client_from_the_svid() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.oauth.derive_client_id_from_svid = true;
    let h = Harness::start(cfg, None, true).await;
    let exact = OAuthClientSpec {
        spiffe_ids: vec![SpiffeIdPattern::parse("spiffe://example.org/keycloak-style").unwrap()],
        ..spec(vec![AuthMethod::SpiffeJwt])
    };
    create_client(&h.server.state, "spiffe://example.org/keycloak-style", exact, now())
        .await
        .unwrap();
    let svid = h.jwt_svid("spiffe://example.org/keycloak-style", &h.issuer).await;
    h.token(
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_SPIFFE),
            ("client_assertion", &svid),
        ],
        &[],
    )
    .await
    .ok_token();
    h.server.shutdown().await.unwrap();
}

/// A `client_credentials` request with the attestation-based client authentication headers.
async fn attested(h: &Harness, client_id: Option<&str>, wit: &str, proof: &str) -> Reply {
    let mut pairs = vec![("grant_type", "client_credentials")];
    if let Some(id) = client_id {
        pairs.push(("client_id", id));
    }
    h.token(
        &pairs,
        &[
            ("OAuth-Client-Attestation", wit),
            ("OAuth-Client-Attestation-PoP", proof),
        ],
    )
    .await
}

/// A WIT-SVID for `sub` bound to `key`, minted by the server.
async fn mint_wit(h: &Harness, sub: &str, key: &dyn SigningKey) -> String {
    let sub = WorkloadId::parse(sub).unwrap();
    lanyard_server::issue::mint_wit(&h.server.state, &sub, &key.public_jwk(), None)
        .await
        .unwrap()
        .token
}

/// WIT-SVID client authentication (`spiffe_wit`): refused while its switch is off; with
/// it on, a WIT-SVID minted by the server and a proof signed with its `cnf` key
/// authenticate an authorized client, and every bad variant is `invalid_client`.
#[tokio::test]
async fn wit_svid_client_attestation_behind_its_switch() {
    let provider = lanyard_crypto::provider();
    let holder = provider.generate_key(Algorithm::ES256).unwrap();
    let id = "spiffe://example.org/billing/wit";
    let wit_client = OAuthClientSpec {
        spiffe_ids: vec![SpiffeIdPattern::parse("spiffe://example.org/billing/*").unwrap()],
        ..spec(vec![AuthMethod::SpiffeWit])
    };
    let pop = |h: &Harness, spiffe_id: &str, key: &dyn SigningKey| {
        let params = ClientAttestationPopParams {
            issuer: &h.issuer,
            spiffe_id,
            challenge: None,
        };
        create_client_attestation_pop(key, &params, now(), provider.as_ref()).unwrap()
    };
    // Off (the default): refused, and not advertised.
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(config(dir.path()), None, true).await;
    create_client(&h.server.state, "wit-client", wit_client.clone(), now())
        .await
        .unwrap();
    let methods = h.metadata().await["token_endpoint_auth_methods_supported"].clone();
    assert!(!methods.as_array().unwrap().contains(&json!("spiffe_wit")), "{methods}");
    let wit = mint_wit(&h, id, holder.as_ref()).await;
    attested(&h, Some("wit-client"), &wit, &pop(&h, id, holder.as_ref()))
        .await
        .error(401, "invalid_client", "not enabled");
    h.server.shutdown().await.unwrap();

    // On.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.oauth.wit_client_auth = true;
    let h = Harness::start(cfg, None, true).await;
    create_client(&h.server.state, "wit-client", wit_client, now())
        .await
        .unwrap();
    let methods = h.metadata().await["token_endpoint_auth_methods_supported"].clone();
    assert!(methods.as_array().unwrap().contains(&json!("spiffe_wit")), "{methods}");
    let wit = mint_wit(&h, id, holder.as_ref()).await;
    let proof = pop(&h, id, holder.as_ref());
    let reply = attested(&h, Some("wit-client"), &wit, &proof).await;
    let token = reply.ok_token().to_owned();
    let verified = h.verify_access_token(&token, LEDGER).await;
    assert_eq!(verified.claims.client_id, "wit-client");
    // The same proof again: a replay.
    attested(&h, Some("wit-client"), &wit, &proof)
        .await
        .error(401, "invalid_client", "already used");
    // No client_id.
    attested(&h, None, &wit, &pop(&h, id, holder.as_ref()))
        .await
        .error(401, "invalid_client", "client_id is required");
    // A proof signed by another key than the WIT's cnf.
    let stranger = provider.generate_key(Algorithm::ES256).unwrap();
    attested(&h, Some("wit-client"), &wit, &pop(&h, id, stranger.as_ref()))
        .await
        .error(401, "invalid_client", "signature");
    // A proof for another authorization server.
    let elsewhere = ClientAttestationPopParams {
        issuer: OTHER,
        spiffe_id: id,
        challenge: None,
    };
    let foreign_proof = create_client_attestation_pop(holder.as_ref(), &elsewhere, now(), provider.as_ref()).unwrap();
    attested(&h, Some("wit-client"), &wit, &foreign_proof)
        .await
        .error(401, "invalid_client", "aud");
    // A WIT-SVID whose SPIFFE ID the client does not admit.
    let payroll = "spiffe://example.org/payroll";
    let payroll_wit = mint_wit(&h, payroll, holder.as_ref()).await;
    attested(&h, Some("wit-client"), &payroll_wit, &pop(&h, payroll, holder.as_ref()))
        .await
        .error(401, "invalid_client", "not authorized");
    // A client registered for other methods only.
    attested(&h, Some("billing"), &wit, &pop(&h, id, holder.as_ref()))
        .await
        .error(401, "invalid_client", "may not authenticate");
    // A JWT-SVID in the attestation header is not a WIT-SVID.
    let svid = h.jwt_svid(id, &h.issuer).await;
    attested(&h, Some("wit-client"), &svid, &pop(&h, id, holder.as_ref()))
        .await
        .error(401, "invalid_client", "typ");
    // The proof header alone: a malformed request.
    h.token(
        &[("grant_type", "client_credentials"), ("client_id", "wit-client")],
        &[("OAuth-Client-Attestation-PoP", &pop(&h, id, holder.as_ref()))],
    )
    .await
    .error(400, "invalid_request", "OAuth-Client-Attestation");
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_requests() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(config(dir.path()), None, true).await;
    // Two authentication methods in one request.
    let svid = h.jwt_svid("spiffe://example.org/billing/api", &h.issuer).await;
    h.token(
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "billing"),
            ("client_secret", "x"),
            ("client_assertion_type", JWT_SPIFFE),
            ("client_assertion", &svid),
        ],
        &[],
    )
    .await
    .error(400, "invalid_request", "more than one client authentication");
    // Unsupported grants, even for an authenticated client.
    for grant in [
        "password",
        "authorization_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ] {
        let mut pairs = vec![
            ("grant_type", grant),
            ("client_id", "billing"),
            ("client_assertion_type", JWT_BEARER),
        ];
        let assertion = h.assertion("billing");
        pairs.push(("client_assertion", &assertion));
        pairs.push(("assertion", "x"));
        h.token(&pairs, &[]).await.error(400, "unsupported_grant_type", "");
    }
    // Scope and resource outside the registration.
    h.pkjwt_token(&h.assertion("billing"), &[("scope", "read admin")])
        .await
        .error(400, "invalid_scope", "admin");
    h.pkjwt_token(&h.assertion("billing"), &[("resource", "https://evil.example.org")])
        .await
        .error(400, "invalid_target", "evil");
    h.pkjwt_token(&h.assertion("billing"), &[("audience", "payroll")])
        .await
        .error(400, "invalid_target", "payroll");
    h.pkjwt_token(&h.assertion("billing"), &[("resource", "not a uri")])
        .await
        .error(400, "invalid_target", "");
    // Duplicate parameters.
    let body = format!(
        "grant_type=client_credentials&grant_type=client_credentials&client_id=billing&client_assertion_type={}&client_assertion={}",
        encode_form([("x", JWT_BEARER)]).trim_start_matches("x="),
        h.assertion("billing")
    );
    h.post("/oauth/token", &body, &[])
        .await
        .error(400, "invalid_request", "more than once");
    // Not a form.
    h.post(
        "/oauth/token",
        "{\"grant_type\":\"client_credentials\"}",
        &[("content-type", "application/json")],
    )
    .await
    .error(400, "invalid_request", "content type");
    // Over the size limit.
    let big = format!("grant_type=client_credentials&pad={}", "a".repeat(20 * 1024));
    h.post("/oauth/token", &big, &[])
        .await
        .error(400, "invalid_request", "limit");
    // No client authentication at all.
    h.token(&[("grant_type", "client_credentials")], &[]).await.error(
        401,
        "invalid_client",
        "no client authentication",
    );
    // A missing grant_type.
    h.token(&[("client_id", "billing")], &[])
        .await
        .error(400, "invalid_request", "grant_type");
    // A header a request carries once, repeated: the first one does not win.
    let assertion = h.assertion("billing");
    let good = [
        ("grant_type", "client_credentials"),
        ("client_id", "billing"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ];
    h.token(&good, &[("content-type", FORM), ("content-type", "text/plain")])
        .await
        .error(400, "invalid_request", "Content-Type: appears more than once");
    h.token(
        &[("grant_type", "client_credentials")],
        &[
            ("authorization", "Basic YmlsbGluZzpzZWNyZXQ="),
            ("authorization", "Basic YmlsbGluZzp4"),
        ],
    )
    .await
    .error(400, "invalid_request", "Authorization: appears more than once");
    // A content-coded form is not decoded.
    h.token(&good, &[("content-encoding", "gzip")])
        .await
        .error(400, "invalid_request", "Content-Encoding");
    // RFC 6749 §5.2: an Authorization header that names no usable client gets 401 and a
    // challenge, whatever its scheme.
    for authorization in ["Basic ", "Bearer abc"] {
        let reply = h
            .token(
                &[("grant_type", "client_credentials")],
                &[("authorization", authorization)],
            )
            .await;
        reply.error(401, "invalid_client", "");
        assert!(reply.header("www-authenticate").is_some(), "{authorization:?}");
    }
    // A chunked body with broken framing is malformed, not too large.
    let mut stream = tokio::net::TcpStream::connect(h.server.public_addr).await.unwrap();
    stream
        .write_all(
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("could not be read"), "{answer}");
    // A chunked body over the size limit (no Content-Length to refuse it early) is too
    // large, not unreadable.
    let mut stream = tokio::net::TcpStream::connect(h.server.public_addr).await.unwrap();
    let chunk = "a".repeat(20 * 1024);
    let request = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("limit"), "{answer}");
    h.server.shutdown().await.unwrap();
}

// ---- replay state survives a restart and is shared by replicas ----

#[tokio::test]
async fn assertion_replay_is_refused_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // A fixed issuer: the restarted server listens on another port.
    let fixed = || ServerConfig {
        oauth: lanyard_server::config::OAuthConfig {
            issuer: Some("http://127.0.0.1:1".into()),
            ..Default::default()
        },
        ..config(dir.path())
    };
    let h = Harness::start(fixed(), None, true).await;
    let assertion = h.assertion("billing");
    h.pkjwt_token(&assertion, &[]).await.ok_token();
    let key = Arc::clone(&h.key);
    h.server.shutdown().await.unwrap();
    let again = Harness::start(fixed(), Some(key), false).await;
    again
        .pkjwt_token(&assertion, &[])
        .await
        .error(401, "invalid_client", "already used");
    again.pkjwt_token(&again.assertion("billing"), &[]).await.ok_token();
    again.server.shutdown().await.unwrap();
}

/// A SQLite file belongs to one server process (it decides replays in memory): a second
/// server on the same file does not start while the first runs, and starts once it stopped.
#[tokio::test]
async fn a_second_server_on_one_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = lanyard_server::start(config(dir.path())).await.unwrap();
    let mut second = config(dir.path());
    second.admin_socket = Some(dir.path().join("second.sock"));
    let Err(err) = lanyard_server::start(second.clone()).await else {
        panic!("a second server on the same SQLite file started");
    };
    assert!(
        format!("{err:#}").contains("a SQLite database belongs to one lanyard server"),
        "{err:#}"
    );
    // The same file reached by another name (a symlink) is the same database.
    let link = tempfile::tempdir().unwrap();
    let linked = link.path().join("other.db");
    std::os::unix::fs::symlink(dir.path().join("data").join("lanyard.db"), &linked).unwrap();
    let mut third = config(link.path());
    third.database_url = Some(format!("sqlite://{}", linked.display()));
    third.admin_socket = Some(link.path().join("third.sock"));
    let Err(err) = lanyard_server::start(third).await else {
        panic!("a second server on the same SQLite file, through a symlink, started");
    };
    assert!(
        format!("{err:#}").contains("a SQLite database belongs to one lanyard server"),
        "{err:#}"
    );
    first.shutdown().await.unwrap();
    let again = lanyard_server::start(second).await.unwrap();
    again.shutdown().await.unwrap();
}

#[tokio::test]
async fn replicas_on_one_postgres_share_replay_state() {
    let Ok(admin_url) = std::env::var("LANYARD_TEST_DATABASE_URL") else {
        eprintln!("skipping: LANYARD_TEST_DATABASE_URL is not set");
        return;
    };
    use sqlx::{AssertSqlSafe, Connection, Executor};
    let db = format!("lanyard_oauth_{}", random_jti());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .await
        .unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    let url = format!("{base}/{db}");

    let dir = tempfile::tempdir().unwrap();
    let replica = |n: u8| {
        let mut c = config(dir.path());
        c.database_url = Some(url.clone());
        c.admin_socket = Some(dir.path().join(format!("admin-{n}.sock")));
        // Both replicas publish the same issuer (behind one load balancer).
        c.oauth.issuer = Some("http://127.0.0.1:1".into());
        c
    };
    let a = Harness::start(replica(1), None, true).await;
    let b = Harness::start(replica(2), Some(Arc::clone(&a.key)), false).await;
    let assertion = a.assertion("billing");
    a.pkjwt_token(&assertion, &[]).await.ok_token();
    b.pkjwt_token(&assertion, &[])
        .await
        .error(401, "invalid_client", "already used");
    // A DPoP proof used on one replica is a replay on the other; a nonce from one is good
    // on the other.
    let provider = lanyard_crypto::provider();
    let dpop_key = provider.generate_key(Algorithm::ES256).unwrap();
    let first = a.token(&[("grant_type", "client_credentials")], &[]).await;
    assert_eq!(first.status, 401);
    let nonce = a.server.oauth.dpop_nonce(now());
    let proof_for = |h: &Harness| {
        create_dpop_proof(
            dpop_key.as_ref(),
            &DpopProofParams {
                method: "POST",
                uri: &h.url("/oauth/token"),
                access_token: None,
                nonce: Some(&nonce),
            },
            now(),
            provider.as_ref(),
        )
        .unwrap()
    };
    let proof = proof_for(&a);
    pkjwt_with_proof(&a, proof).await.ok_token();
    // Same proof key and jti on the other replica (its htu names replica b's URL, so make
    // one there and replay it there after using it once on a).
    let proof_b = proof_for(&b);
    pkjwt_with_proof(&b, proof_b.clone()).await.ok_token();
    pkjwt_with_proof(&b, proof_b)
        .await
        .error(400, "invalid_dpop_proof", "already used");
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
    admin
        .execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")))
        .await
        .unwrap();
}

async fn pkjwt_with_proof(h: &Harness, proof: String) -> Reply {
    h.token_as("billing", &h.assertion("billing"), &[], &[("dpop", &proof)])
        .await
}

// ---- mutual TLS (RFC 8705) ----

/// A client of the mutual-TLS listener presenting `identity_pem` (certificate chain and
/// PKCS#8 key), if any. The server's SVID has no DNS name, so its name is not checked
/// here (the chain is not what these cases test).
fn mtls_client(identity_pem: Option<String>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().danger_accept_invalid_certs(true);
    if let Some(pem) = identity_pem {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

fn svid_pem(svid: &lanyard_x509::X509Svid) -> String {
    let mut pem = String::new();
    for cert in &svid.chain {
        pem.push_str(&pem::encode(&pem::Pem::new("CERTIFICATE", cert.to_vec())));
    }
    let key = svid.key.as_ref().unwrap();
    pem.push_str(&pem::encode(&pem::Pem::new(
        "PRIVATE KEY",
        key.secret_pkcs8_der().to_vec(),
    )));
    pem
}

#[tokio::test]
async fn x509_svid_client_authentication_binds_the_token_to_the_certificate() {
    use lanyard_x509::{SubjectKey, X509Authority};
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(config(dir.path()), None, true).await;
    let mtls_addr = h.server.oauth_mtls_addr.unwrap();
    let mtls_token = format!("https://{mtls_addr}/oauth/token");
    let bound = OAuthClientSpec {
        spiffe_ids: vec![SpiffeIdPattern::parse("spiffe://example.org/billing/*").unwrap()],
        require_certificate_binding: true,
        ..spec(vec![AuthMethod::SpiffeX509])
    };
    create_client(&h.server.state, "mtls-billing", bound, now())
        .await
        .unwrap();

    // The metadata advertises the listener.
    let m = h.metadata().await;
    assert_eq!(m["mtls_endpoint_aliases"]["token_endpoint"], mtls_token);
    assert_eq!(m["tls_client_certificate_bound_access_tokens"], true);
    assert!(
        m["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("spiffe_x509"))
    );

    let ca = h.server.state.keys.x509_ca().await.unwrap();
    // The listener's certificate names the address it is reached at (an IP SAN beside the
    // SPIFFE ID), so a client that checks the host, trusting only the trust domain's CA,
    // completes the handshake (no client certificate: 401 from the endpoint).
    let verifying = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let answer = verifying
        .post(&mtls_token)
        .header("content-type", FORM)
        .body("grant_type=client_credentials&client_id=mtls-billing")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let id = SpiffeId::parse("spiffe://example.org/billing/api").unwrap();
    let svid = ca.issue_svid(&id, SubjectKey::Generate, 600, &[], now()).unwrap();
    let form = encode_form([("grant_type", "client_credentials"), ("client_id", "mtls-billing")]);
    let post = |client: reqwest::Client, url: String, body: String| async move {
        Reply::from(
            client
                .post(url)
                .header("content-type", FORM)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    };
    let reply = post(mtls_client(Some(svid_pem(&svid))), mtls_token.clone(), form.clone()).await;
    let at = h.verify_access_token(reply.ok_token(), LEDGER).await;
    let provider = lanyard_crypto::provider();
    let thumbprint = lanyard_core::oauth::certificate_thumbprint(provider.as_ref(), &svid.chain[0]);
    assert_eq!(at.claims.cnf.unwrap().x5t_s256.as_deref(), Some(thumbprint.as_str()));
    assert_eq!(reply.body["token_type"], "Bearer");

    // No certificate on the mutual-TLS listener: no client authentication.
    post(mtls_client(None), mtls_token.clone(), form.clone()).await.error(
        401,
        "invalid_client",
        "no client authentication",
    );
    // The client requires certificate binding: private_key_jwt-style methods are not
    // registered, and the public listener has no certificate.
    h.post("/oauth/token", &form, &[])
        .await
        .error(401, "invalid_client", "");
    // An SVID signed by a foreign CA (same trust domain name, another key).
    let foreign = X509Authority::new_root(
        lanyard_crypto::provider(),
        &TrustDomain::parse("example.org").unwrap(),
        None,
        3600,
        now(),
    )
    .unwrap();
    let forged = foreign.issue_svid(&id, SubjectKey::Generate, 600, &[], now()).unwrap();
    post(mtls_client(Some(svid_pem(&forged))), mtls_token.clone(), form.clone())
        .await
        .error(401, "invalid_client", "");
    // A certificate with two URI SANs.
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![
        rcgen::SanType::URI("spiffe://example.org/billing/a".try_into().unwrap()),
        rcgen::SanType::URI("spiffe://example.org/billing/b".try_into().unwrap()),
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let two = format!("{}{}", cert.pem(), key.serialize_pem());
    post(mtls_client(Some(two)), mtls_token.clone(), form.clone())
        .await
        .error(401, "invalid_client", "URI");
    // An SVID whose SPIFFE ID the client does not admit.
    let payroll = ca
        .issue_svid(
            &SpiffeId::parse("spiffe://example.org/payroll").unwrap(),
            SubjectKey::Generate,
            600,
            &[],
            now(),
        )
        .unwrap();
    post(mtls_client(Some(svid_pem(&payroll))), mtls_token, form)
        .await
        .error(401, "invalid_client", "not authorized");
    h.server.shutdown().await.unwrap();
}
