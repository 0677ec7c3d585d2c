//! Token exchange (RFC 8693) and the Transaction Token Service
//! (draft-ietf-oauth-transaction-tokens-11) end to end (issue 13 items 1 and 3): a real
//! server on loopback, clients that authenticate with JWT-SVIDs, requests over HTTP.
//! Issued tokens are verified against the server's `jwks_uri`; every refusal asserts its
//! HTTP status and OAuth `error` code, and a fragment of `error_description` where the
//! code alone does not tell the reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

use std::sync::Arc;

use serde_json::{Value, json};

use lanyard_core::oauth::{
    AccessTokenClaims, AccessTokenPolicy, AccessTokenVerifier, Actor, AuthMethod, GrantType, Scope, SpiffeIdPattern,
    TokenTypeUri, TxnTokenClaims, TxnTokenPolicy, TxnTokenVerifier, VerificationKeys, encode_form, issue_access_token,
    issue_txn_token,
};
use lanyard_core::{Algorithm, Clock, JwkSet, JwtSvidIssuer, SpiffeId, SystemClock, UnixTime};
use lanyard_server::config::{HomeServerConfig, OAuthConfig};
use lanyard_server::model::{ExchangePolicy, OAuthClientSpec};
use lanyard_server::oauth::clients::create_client;
use lanyard_server::{RunningServer, ServerConfig};

const LEDGER: &str = "https://ledger.example.org";
const TRUST_DOMAIN: &str = "example.org";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_SPIFFE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const TXN: &str = "urn:ietf:params:oauth:token-type:txn_token";

fn now() -> UnixTime {
    SystemClock.now()
}

/// The workloads registered as clients, by name (`spiffe://<trust domain>/<name>`).
struct Workload {
    name: &'static str,
    policy: ExchangePolicy,
}

/// The foreign authorization server of the chaining tests, and another one.
const AS_B: &str = "https://as-b.test";
const AS_C: &str = "https://as-c.test";

fn policy(delegate: bool, impersonate: bool, subjects: &[TokenTypeUri], txn_tokens: bool) -> ExchangePolicy {
    ExchangePolicy {
        impersonate,
        delegate,
        subject_token_types: subjects.to_vec(),
        actor_token_types: vec![TokenTypeUri::Jwt, TokenTypeUri::AccessToken],
        subject_audiences: vec![LEDGER.into()],
        txn_tokens,
        trusted_issuers: Vec::new(),
    }
}

fn workloads() -> Vec<Workload> {
    use TokenTypeUri::{AccessToken, Jwt, LanyardWit, TxnToken};
    vec![
        Workload {
            name: "gateway",
            policy: policy(true, false, &[AccessToken, Jwt, LanyardWit], true),
        },
        Workload {
            name: "agent",
            policy: policy(true, false, &[AccessToken], false),
        },
        Workload {
            name: "impersonator",
            policy: policy(false, true, &[AccessToken], false),
        },
        Workload {
            name: "tool",
            policy: policy(false, false, &[TxnToken], true),
        },
        Workload {
            name: "plain",
            policy: ExchangePolicy::default(),
        },
        Workload {
            name: "chainer",
            policy: policy(true, false, &[AccessToken, TxnToken], false),
        },
        // Exchanges platform tokens of every configured trusted issuer (trusted_issuers.rs).
        Workload {
            name: "platform",
            policy: policy(false, true, &[AccessToken, Jwt, TokenTypeUri::IdToken], false),
        },
    ]
}

struct Harness {
    server: RunningServer,
    http: reqwest::Client,
    issuer: String,
    td: String,
}

/// An HTTP answer: status and JSON body.
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    #[track_caller]
    fn refused(&self, status: u16, code: &str, fragment: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["error"], code, "{}", self.body);
        let description = self.body["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(fragment), "{description:?} lacks {fragment:?}");
        assert!(self.body.get("access_token").is_none());
    }

    #[track_caller]
    fn token(&self, issued_type: &str, token_type: &str) -> String {
        assert_eq!(self.status, 200, "{}", self.body);
        assert_eq!(self.body["issued_token_type"], issued_type, "{}", self.body);
        assert_eq!(self.body["token_type"], token_type, "{}", self.body);
        assert!(self.body.get("refresh_token").is_none());
        self.body["access_token"].as_str().unwrap().to_owned()
    }
}

impl Harness {
    async fn start(dir: &std::path::Path) -> Harness {
        Harness::start_with(dir, TRUST_DOMAIN, OAuthConfig::default()).await
    }

    /// A server of trust domain `td` with `oauth` settings and the [`workloads`]
    /// registered (`chainer` with the foreign servers as audiences, every client with the
    /// JWT bearer grant too).
    async fn start_with(dir: &std::path::Path, td: &str, oauth: OAuthConfig) -> Harness {
        let trusted: Vec<String> = oauth.trusted_issuers.iter().map(|t| t.issuer.clone()).collect();
        let config = ServerConfig {
            data_dir: dir.join("data"),
            public_address: "127.0.0.1:0".into(),
            agent_address: "127.0.0.1:0".into(),
            log_level: "warn".into(),
            trust_domain: td.into(),
            oauth,
            ..ServerConfig::default()
        };
        let server = lanyard_server::start(config).await.unwrap();
        for mut w in workloads() {
            if w.name == "platform" {
                w.policy.trusted_issuers.clone_from(&trusted);
            }
            let audiences = if w.name == "chainer" {
                vec![AS_B.into(), AS_C.into()]
            } else {
                vec![LEDGER.into()]
            };
            let spec = OAuthClientSpec {
                spiffe_ids: vec![SpiffeIdPattern::parse(&format!("spiffe://{td}/{}", w.name)).unwrap()],
                auth_methods: vec![AuthMethod::SpiffeJwt],
                jwks: None,
                jwks_uri: None,
                grant_types: vec![
                    GrantType::ClientCredentials,
                    GrantType::TokenExchange,
                    GrantType::JwtBearer,
                ],
                scopes: vec!["read".into(), "write".into(), "trade".into()],
                audiences,
                access_token_ttl: 0,
                require_dpop: false,
                require_certificate_binding: false,
                exchange: w.policy,
            };
            create_client(&server.state, w.name, spec, now()).await.unwrap();
        }
        Harness {
            issuer: server.oauth.issuer().to_owned(),
            http: reqwest::Client::new(),
            td: td.to_owned(),
            server,
        }
    }

    /// A JWT-SVID of `spiffe://<trust domain>/<name>` for `audience`.
    async fn svid(&self, name: &str, audience: &str) -> String {
        let id = SpiffeId::parse(&format!("spiffe://{}/{name}", self.td)).unwrap();
        lanyard_server::issue::mint_jwt_svid(&self.server.state, &id, &[audience], None)
            .await
            .unwrap()
            .token
    }

    /// An access token signed by the server's own key, with `claims` over the defaults
    /// (a user `alice` with `read write`, for the ledger, five minutes).
    async fn user_token(&self, claims: Value) -> String {
        let t = now().as_secs();
        let mut base = json!({
            "iss": self.issuer, "sub": "alice", "aud": LEDGER, "client_id": "web",
            "scope": "read write", "iat": t, "exp": t + 300, "jti": format!("u-{t}-{}", rand()),
        });
        for (k, v) in claims.as_object().unwrap() {
            base[k] = v.clone();
        }
        let claims = AccessTokenClaims::from_claims(base.as_object().unwrap()).unwrap();
        let (key, kid) = self.server.state.keys.access_token_signer().await.unwrap();
        issue_access_token(key.as_ref(), &kid, &claims).unwrap()
    }

    /// A token exchange by `client` (authenticated with its JWT-SVID) with `params`.
    async fn exchange(&self, client: &str, params: &[(&str, &str)]) -> Reply {
        let mut pairs = vec![("grant_type", EXCHANGE)];
        pairs.extend_from_slice(params);
        self.token(client, &pairs).await
    }

    /// A token request by `client` (authenticated with its JWT-SVID) with `params`.
    async fn token(&self, client: &str, params: &[(&str, &str)]) -> Reply {
        self.token_with_headers(client, params, &[]).await
    }

    /// [`Harness::token`] with extra request `headers` (a `DPoP` proof).
    async fn token_with_headers(&self, client: &str, params: &[(&str, &str)], headers: &[(&str, &str)]) -> Reply {
        let svid = self.svid(client, &self.issuer).await;
        let mut pairs = vec![
            ("client_id", client),
            ("client_assertion_type", JWT_SPIFFE),
            ("client_assertion", svid.as_str()),
        ];
        pairs.extend_from_slice(params);
        let mut request = self
            .http
            .post(format!("{}/oauth/token", self.server.public_url))
            .header("content-type", "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let r = request.body(encode_form(pairs.iter().copied())).send().await.unwrap();
        let status = r.status().as_u16();
        assert_eq!(
            r.headers().get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store")
        );
        Reply {
            status,
            body: serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null),
        }
    }

    async fn keys(&self) -> VerificationKeys {
        let text = self
            .http
            .get(format!("{}/oauth/jwks", self.server.public_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let jwks: JwkSet = serde_json::from_str(&text).unwrap();
        VerificationKeys::from_jwks(lanyard_crypto::provider().as_ref(), self.issuer.clone(), &jwks).unwrap()
    }

    async fn metadata(&self) -> Value {
        let url = format!("{}/.well-known/oauth-authorization-server", self.server.public_url);
        serde_json::from_str(&self.http.get(url).send().await.unwrap().text().await.unwrap()).unwrap()
    }

    async fn verify_at(&self, token: &str) -> AccessTokenClaims {
        AccessTokenVerifier::new(AccessTokenPolicy::new(self.issuer.clone(), LEDGER))
            .verify(token, &self.keys().await, now())
            .unwrap()
            .claims
    }

    async fn verify_txn(&self, token: &str) -> TxnTokenClaims {
        TxnTokenVerifier::new(TxnTokenPolicy::new(TRUST_DOMAIN))
            .verify(token, &self.keys().await, now())
            .unwrap()
            .claims
    }
}

/// A server with the [`workloads`], its data directory, and alice's token for the ledger.
async fn setup() -> (tempfile::TempDir, Harness, String) {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path()).await;
    let user = h.user_token(json!({})).await;
    (dir, h, user)
}

fn rand() -> u64 {
    let mut b = [0u8; 8];
    lanyard_crypto::provider().fill_random(&mut b).unwrap();
    u64::from_le_bytes(b)
}

fn chain(act: Option<&Actor>) -> Vec<String> {
    act.map(|a| a.chain().filter_map(|x| x.sub.clone()).collect())
        .unwrap_or_default()
}

fn id(name: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/{name}")
}

// ---- token exchange ----

#[tokio::test]
async fn delegation_over_two_hops_nests_act() {
    let (_dir, h, user) = setup().await;
    let user_exp = h.verify_at(&user).await.exp;
    // Hop 1: the gateway exchanges the user's token; without an actor token, the gateway
    // itself acts.
    let reply = h
        .exchange(
            "gateway",
            &[("subject_token", &user), ("subject_token_type", AT), ("scope", "read")],
        )
        .await;
    let first = reply.token(AT, "Bearer");
    assert_eq!(reply.body["scope"], "read");
    let c = h.verify_at(&first).await;
    assert_eq!(c.sub, "alice");
    assert_eq!(c.client_id, "gateway");
    assert_eq!(chain(c.act.as_ref()), [id("gateway")]);
    assert!(c.exp <= user_exp, "never outlives the subject token");
    // Hop 2: the agent exchanges the gateway's token with its own JWT-SVID as actor token.
    let actor = h.svid("agent", &h.issuer).await;
    let reply = h
        .exchange(
            "agent",
            &[
                ("subject_token", &first),
                ("subject_token_type", AT),
                ("actor_token", &actor),
                ("actor_token_type", JWT),
            ],
        )
        .await;
    let second = reply.token(AT, "Bearer");
    let c = h.verify_at(&second).await;
    assert_eq!(c.sub, "alice");
    assert_eq!(c.client_id, "agent");
    assert_eq!(chain(c.act.as_ref()), [id("agent"), id("gateway")]);
    assert_eq!(
        c.scope,
        Some(Scope::parse("read").unwrap()),
        "the narrowed scope carries over"
    );
    // Introspection shows the chain too.
    let introspected = h.server.oauth.introspect(&second, now()).await.unwrap();
    let text = serde_json::to_value(&introspected).unwrap();
    assert_eq!(text["act"]["sub"], id("agent"));
    assert_eq!(text["act"]["act"]["sub"], id("gateway"));
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn may_act_names_who_may_act() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path()).await;
    let user = h.user_token(json!({"may_act": {"sub": id("agent")}})).await;
    // The gateway (acting itself) is not the party may_act names...
    h.exchange("gateway", &[("subject_token", &user), ("subject_token_type", AT)])
        .await
        .refused(400, "invalid_request", "may_act");
    // ...nor is another workload's SVID used as actor token by the agent.
    let other = h.svid("gateway", &h.issuer).await;
    h.exchange(
        "agent",
        &[
            ("subject_token", &user),
            ("subject_token_type", AT),
            ("actor_token", &other),
            ("actor_token_type", JWT),
        ],
    )
    .await
    .refused(400, "invalid_request", "may_act");
    // The agent is.
    let actor = h.svid("agent", &h.issuer).await;
    let token = h
        .exchange(
            "agent",
            &[
                ("subject_token", &user),
                ("subject_token_type", AT),
                ("actor_token", &actor),
                ("actor_token_type", JWT),
            ],
        )
        .await
        .token(AT, "Bearer");
    assert_eq!(chain(h.verify_at(&token).await.act.as_ref()), [id("agent")]);
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn impersonation_and_delegation_follow_the_client_policy() {
    let (_dir, h, user) = setup().await;
    // Impersonation: the token is about alice, with no actor.
    let token = h
        .exchange("impersonator", &[("subject_token", &user), ("subject_token_type", AT)])
        .await
        .token(AT, "Bearer");
    let c = h.verify_at(&token).await;
    assert_eq!((c.sub.as_str(), c.act.is_none()), ("alice", true));
    // An impersonation-only client asking for delegation (an actor token) is refused.
    let actor = h.svid("impersonator", &h.issuer).await;
    h.exchange(
        "impersonator",
        &[
            ("subject_token", &user),
            ("subject_token_type", AT),
            ("actor_token", &actor),
            ("actor_token_type", JWT),
        ],
    )
    .await
    .refused(400, "invalid_request", "may not ask for delegation");
    // A client without an exchange policy exchanges nothing.
    h.exchange("plain", &[("subject_token", &user), ("subject_token_type", AT)])
        .await
        .refused(400, "invalid_request", "subject_token_type");
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn exchange_bad_inputs() {
    let (_dir, h, user) = setup().await;
    let ex = |params: Vec<(&'static str, String)>| {
        let h = &h;
        async move {
            let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            h.exchange("gateway", &pairs).await
        }
    };
    let subject = |token: &str, kind: &str| {
        vec![
            ("subject_token", token.to_owned()),
            ("subject_token_type", kind.to_owned()),
        ]
    };
    // A scope wider than the subject token's.
    let mut wider = subject(&user, AT);
    wider.push(("scope", "read trade".into()));
    ex(wider).await.refused(400, "invalid_scope", "trade");
    // A target outside the client's registered audiences.
    let mut target = subject(&user, AT);
    target.push(("audience", "https://elsewhere.example".into()));
    ex(target).await.refused(400, "invalid_target", "elsewhere");
    // Unknown and mismatched subject_token_type.
    ex(subject(&user, "urn:example:unknown"))
        .await
        .refused(400, "invalid_request", "subject_token_type");
    ex(subject(&user, JWT))
        .await
        .refused(400, "invalid_request", "subject_token");
    let svid = h.svid("alice-svc", &h.issuer).await;
    ex(subject(&svid, AT))
        .await
        .refused(400, "invalid_request", "subject_token");
    // actor_token without actor_token_type, and the reverse.
    let mut half = subject(&user, AT);
    half.push(("actor_token", svid.clone()));
    ex(half).await.refused(400, "invalid_request", "actor_token_type");
    let mut reverse = subject(&user, AT);
    reverse.push(("actor_token_type", JWT.into()));
    ex(reverse).await.refused(400, "invalid_request", "actor_token_type");
    // An expired subject token.
    let t = now().as_secs();
    let expired = h.user_token(json!({"iat": t - 400, "exp": t - 100})).await;
    ex(subject(&expired, AT))
        .await
        .refused(400, "invalid_request", "expired");
    // A revoked one.
    let revoked = h.user_token(json!({})).await;
    assert!(h.server.oauth.revoke(&revoked, "web", now()).await.unwrap());
    ex(subject(&revoked, AT))
        .await
        .refused(400, "invalid_request", "revoked");
    // An access token for an audience the client does not serve.
    let foreign_aud = h.user_token(json!({"aud": "https://other.example"})).await;
    ex(subject(&foreign_aud, AT))
        .await
        .refused(400, "invalid_request", "subject_token");
    // A JWT-SVID for another audience, and one from an untrusted trust domain.
    let wrong_aud = h.svid("alice-svc", "https://other.example").await;
    ex(subject(&wrong_aud, JWT))
        .await
        .refused(400, "invalid_request", "subject_token");
    let provider = lanyard_crypto::provider();
    let stranger = JwtSvidIssuer::new(provider.generate_key(Algorithm::ES256).unwrap(), "k1", None)
        .unwrap()
        .issue(
            &SpiffeId::parse("spiffe://stranger.org/app").unwrap(),
            &h.issuer,
            now(),
            120,
        )
        .unwrap();
    ex(subject(&stranger, JWT))
        .await
        .refused(400, "invalid_request", "subject_token");
    // An access token signed by another issuer's key.
    let other_key = provider.generate_key(Algorithm::ES256).unwrap();
    let claims = AccessTokenClaims::from_claims(
        json!({"iss": "https://evil.example", "sub": "alice", "aud": LEDGER, "client_id": "x",
               "iat": t, "exp": t + 60, "jti": "e1"})
        .as_object()
        .unwrap(),
    )
    .unwrap();
    let forged = issue_access_token(other_key.as_ref(), "k1", &claims).unwrap();
    ex(subject(&forged, AT))
        .await
        .refused(400, "invalid_request", "subject_token");
    // A sender-constrained subject token presented without its key (no DPoP proof, no
    // client certificate): the exchange must not turn a stolen bound token into a usable one.
    for cnf in [
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
        json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
    ] {
        let bound = h.user_token(json!({ "cnf": cnf })).await;
        ex(subject(&bound, AT))
            .await
            .refused(400, "invalid_request", "carries no");
    }
    // A requested token type this server does not issue.
    let mut odd = subject(&user, AT);
    odd.push(("requested_token_type", "urn:ietf:params:oauth:token-type:saml2".into()));
    ex(odd).await.refused(400, "invalid_request", "requested_token_type");
    h.server.shutdown().await.unwrap();
}

// ---- Transaction Token Service ----

#[tokio::test]
async fn txn_token_issue_and_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path()).await;
    let user = h.user_token(json!({"act": {"sub": id("edge")}})).await;
    let reply = h
        .exchange(
            "gateway",
            &[
                ("subject_token", &user),
                ("subject_token_type", AT),
                ("requested_token_type", TXN),
                ("audience", TRUST_DOMAIN),
                ("scope", "read write"),
                ("request_context", r#"{"req_ip":"10.0.0.7","authn":"mfa"}"#),
                ("request_details", r#"{"action":"BUY","ticker":"MSFT"}"#),
            ],
        )
        .await;
    let txn_token = reply.token(TXN, "N_A");
    assert!(reply.body["expires_in"].as_u64().unwrap() <= 60);
    let c = h.verify_txn(&txn_token).await;
    assert_eq!(c.aud, TRUST_DOMAIN);
    assert_eq!(c.sub, "alice");
    assert_eq!(c.scope, Scope::parse("read write").unwrap());
    assert_eq!(c.req_wl, id("gateway"));
    assert_eq!(c.tctx.as_ref().unwrap()["action"], "BUY");
    assert_eq!(c.rctx.as_ref().unwrap()["req_ip"], "10.0.0.7");
    assert_eq!(c.extra["act"]["sub"], id("edge"), "the acting chain rides along");
    assert!(c.txn.len() >= 16);
    assert!(c.exp.as_secs() - c.iat.as_secs() <= 60);
    // A second request is a new transaction.
    let again = h
        .exchange(
            "gateway",
            &[
                ("subject_token", &user),
                ("subject_token_type", AT),
                ("requested_token_type", TXN),
                ("audience", TRUST_DOMAIN),
                ("scope", "read"),
            ],
        )
        .await
        .token(TXN, "N_A");
    assert_ne!(h.verify_txn(&again).await.txn, c.txn);
    // Replacement by the tool: same txn, sub, aud; narrower scope; req_wl the tool;
    // tctx kept and extended.
    let replaced = h
        .exchange(
            "tool",
            &[
                ("subject_token", &txn_token),
                ("subject_token_type", TXN),
                ("requested_token_type", TXN),
                ("audience", TRUST_DOMAIN),
                ("scope", "read"),
                ("request_details", r#"{"quantity":"100"}"#),
            ],
        )
        .await
        .token(TXN, "N_A");
    let r = h.verify_txn(&replaced).await;
    assert_eq!((&r.txn, &r.sub, &r.aud), (&c.txn, &c.sub, &c.aud));
    assert_eq!(r.scope, Scope::parse("read").unwrap());
    assert_eq!(r.req_wl, id("tool"));
    assert_eq!(r.tctx.as_ref().unwrap()["action"], "BUY");
    assert_eq!(r.tctx.as_ref().unwrap()["quantity"], "100");
    assert_eq!(r.rctx, c.rctx);
    // The same replacement through lanyard-tower's client middleware, as a service in the
    // call chain does it (authenticated with the tool's JWT-SVID).
    let tool = lanyard_tower::oauth::OAuthClientMiddleware::new(
        lanyard_tower::oauth::OAuthClientConfig::new(h.issuer.clone(), "tool"),
        Arc::new(lanyard_tower::oauth::StaticJwtSvid(h.svid("tool", &h.issuer).await)),
    )
    .unwrap();
    let ask = lanyard_tower::oauth::TxnTokenReplacement {
        audience: TRUST_DOMAIN.into(),
        scope: Some("read".into()),
        request_details: Some(r#"{"quantity":"50"}"#.into()),
    };
    let by_middleware = h
        .verify_txn(&tool.replace_txn_token(&txn_token, &ask).await.unwrap())
        .await;
    assert_eq!((&by_middleware.txn, &by_middleware.sub), (&c.txn, &c.sub));
    assert_eq!(by_middleware.req_wl, id("tool"));
    assert_eq!(by_middleware.tctx.as_ref().unwrap()["quantity"], "50");
    // ... and its refusals are errors (a wider scope).
    let wider = lanyard_tower::oauth::TxnTokenReplacement {
        scope: Some("read trade".into()),
        ..ask
    };
    let refused = tool.replace_txn_token(&txn_token, &wider).await.unwrap_err();
    assert!(refused.to_string().contains("invalid_scope"), "{refused}");
    // A Txn-Token is never exchanged for an access token.
    h.exchange("tool", &[("subject_token", &txn_token), ("subject_token_type", TXN)])
        .await
        .refused(400, "invalid_request", "subject_token_type");
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn txn_token_bad_inputs() {
    let (_dir, h, user) = setup().await;
    let txn_request = |client: &'static str, subject: &str, kind: &'static str, extra: &[(&str, &str)]| {
        let h = &h;
        let mut pairs: Vec<(String, String)> = vec![
            ("subject_token".into(), subject.to_owned()),
            ("subject_token_type".into(), kind.into()),
            ("requested_token_type".into(), TXN.into()),
        ];
        pairs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        async move {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            h.exchange(client, &pairs).await
        }
    };
    let td = ("audience", TRUST_DOMAIN);
    let read = ("scope", "read");
    let issued = txn_request("gateway", &user, AT, &[td, read]).await.token(TXN, "N_A");
    let with_tctx = txn_request(
        "gateway",
        &user,
        AT,
        &[td, read, ("request_details", r#"{"action":"BUY"}"#)],
    )
    .await
    .token(TXN, "N_A");
    let svid = h.svid("alice-svc", &h.issuer).await;
    let actor = h.svid("gateway", &h.issuer).await;
    let t = now().as_secs();
    let (key, kid) = h.server.state.keys.access_token_signer().await.unwrap();
    let mint = |claims: Value| {
        let claims = TxnTokenClaims::from_claims(claims.as_object().unwrap()).unwrap();
        issue_txn_token(key.as_ref(), &kid, &claims).unwrap()
    };
    let base = json!({"iat": t - 70, "exp": t - 10, "aud": TRUST_DOMAIN, "txn": "t-1", "sub": "alice",
                      "scope": "read", "req_wl": id("gateway")});
    let expired = mint(base.clone());
    let mut foreign = base;
    foreign["aud"] = json!("other.org");
    foreign["exp"] = json!(t + 30);
    let foreign = mint(foreign);
    #[rustfmt::skip]
    let cases: Vec<(&str, &'static str, &str, &'static str, Vec<(&str, &str)>, &str, &str)> = vec![
        // what, client, subject token, its type, parameters, error, description fragment
        ("wrong audience", "gateway", &user, AT, vec![("audience", "other.org"), read], "invalid_target", "trust domain"),
        ("a resource", "gateway", &user, AT, vec![td, ("resource", LEDGER), read], "invalid_target", "trust domain"),
        ("no audience", "gateway", &user, AT, vec![read], "invalid_request", "audience"),
        ("no scope", "gateway", &user, AT, vec![td], "invalid_request", "scope"),
        ("wider scope", "gateway", &user, AT, vec![td, ("scope", "read trade")], "invalid_scope", "trade"),
        ("unknown subject scope", "gateway", &svid, JWT, vec![td, read], "invalid_request", "scope cannot be determined"),
        ("client not allowed", "agent", &user, AT, vec![td, read], "invalid_request", "Txn-Tokens"),
        ("actor token", "gateway", &user, AT, vec![td, read, ("actor_token", &actor), ("actor_token_type", JWT)], "invalid_request", "actor_token"),
        ("context not an object", "gateway", &user, AT, vec![td, read, ("request_context", "[1]")], "invalid_request", "request_context"),
        ("replacement widens", "tool", &issued, TXN, vec![td, ("scope", "read write")], "invalid_scope", "write"),
        ("replacement changes aud", "tool", &issued, TXN, vec![("audience", "other.org"), read], "invalid_target", "trust domain"),
        ("replacement changes tctx", "tool", &with_tctx, TXN, vec![td, read, ("request_details", r#"{"action":"SELL"}"#)], "invalid_request", "action"),
        ("replacement of an expired token", "tool", &expired, TXN, vec![td, read], "invalid_request", "expired"),
        ("Txn-Token of another trust domain", "tool", &foreign, TXN, vec![td, read], "invalid_request", "subject_token"),
        ("access token as Txn-Token", "tool", &user, TXN, vec![td, read], "invalid_request", "subject_token"),
    ];
    for (what, client, subject, kind, params, code, fragment) in cases {
        eprintln!("case: {what}");
        txn_request(client, subject, kind, &params)
            .await
            .refused(400, code, fragment);
    }
    h.server.shutdown().await.unwrap();
}

// ---- WITs as subject tokens ----

/// A DPoP proof by `holder` for the token endpoint of `h` (no nonce: the servers of these
/// tests do not require one).
fn dpop_proof(h: &Harness, holder: &lanyard_crypto::KeyPair) -> String {
    let endpoint = format!("{}/oauth/token", h.server.public_url);
    let params = lanyard_core::oauth::DpopProofParams {
        method: "POST",
        uri: &endpoint,
        access_token: None,
        nonce: None,
    };
    lanyard_core::oauth::create_dpop_proof(holder, &params, now(), lanyard_crypto::provider().as_ref()).unwrap()
}

/// A WIT is exchanged only by its holder: the request's DPoP proof must be signed with the
/// WIT's `cnf.jwk` key.
#[tokio::test]
async fn a_wit_is_exchanged_only_with_a_proof_of_its_key() {
    use lanyard_core::SigningKey as _;
    const WIT: &str = "urn:lanyard:params:oauth:token-type:wit";
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_with(
        dir.path(),
        TRUST_DOMAIN,
        OAuthConfig {
            require_dpop_nonce: false,
            ..OAuthConfig::default()
        },
    )
    .await;
    let holder = lanyard_crypto::KeyPair::generate(Algorithm::ES256).unwrap();
    let stranger = lanyard_crypto::KeyPair::generate(Algorithm::ES256).unwrap();
    let sub = lanyard_core::WorkloadId::parse(&id("batch")).unwrap();
    let wit = lanyard_server::issue::mint_wit(&h.server.state, &sub, &holder.public_jwk(), None)
        .await
        .unwrap()
        .token;
    let proof = |key: &lanyard_crypto::KeyPair| dpop_proof(&h, key);
    let mut params = vec![("grant_type", EXCHANGE)];
    params.extend([("subject_token", wit.as_str()), ("subject_token_type", WIT)]);
    let reply = h
        .token_with_headers("gateway", &params, &[("DPoP", &proof(&holder))])
        .await;
    let c = h.verify_at(&reply.token(AT, "DPoP")).await;
    assert_eq!(c.sub, id("batch"));
    assert_eq!(
        c.act.as_ref().unwrap().sub,
        Some(id("gateway")),
        "the gateway acts for the WIT's workload"
    );
    // Without a proof, or with another key's: refused.
    h.token("gateway", &params)
        .await
        .refused(400, "invalid_request", "DPoP proof");
    h.token_with_headers("gateway", &params, &[("DPoP", &proof(&stranger))])
        .await
        .refused(400, "invalid_request", "DPoP proof key");
    // A client whose policy does not list the type.
    h.token_with_headers("agent", &params, &[("DPoP", &proof(&holder))])
        .await
        .refused(400, "invalid_request", "subject_token_type");
    // A WIT carries no scope, so no Txn-Token can be narrowed from it (as for a JWT-SVID).
    let mut txn = params.clone();
    txn.extend([
        ("requested_token_type", TXN),
        ("audience", TRUST_DOMAIN),
        ("scope", "read"),
    ]);
    h.token_with_headers("gateway", &txn, &[("DPoP", &proof(&holder))])
        .await
        .refused(400, "invalid_request", "scope cannot be determined");
    h.server.shutdown().await.unwrap();
}

// ---- identity chaining ----

/// Claims transcription (identity chaining §2.3): the rule for one foreign server writes
/// the grant's `sub` from the subject token's claims and copies the claims it names; the
/// other foreign server, without a rule, gets the subject as it is.
#[tokio::test]
async fn identity_chaining_transcribes_claims_by_rule() {
    let dir = tempfile::tempdir().unwrap();
    let a = Harness::start_with(
        dir.path(),
        TRUST_DOMAIN,
        OAuthConfig {
            chaining_foreign_servers: vec![AS_B.into(), AS_C.into()],
            chaining_transcription: vec![lanyard_server::config::TranscriptionRuleConfig {
                foreign_server: AS_C.into(),
                subject: Some("user:{email}".into()),
                copy_claims: vec!["tenant".into(), "department".into()],
            }],
            ..OAuthConfig::default()
        },
    )
    .await;
    let grant_claims = |reply: &Reply| {
        let grant = reply.token(JWT, "N_A");
        lanyard_core::jose::CompactJws::parse(&grant).unwrap().claims().unwrap()
    };
    let user = a
        .user_token(json!({"aud": a.issuer, "email": "alice@example.com", "tenant": "acme", "phone": "555"}))
        .await;
    let ask = |audience: &'static str, token: String| {
        let a = &a;
        async move {
            a.exchange(
                "chainer",
                &[
                    ("subject_token", &token),
                    ("subject_token_type", AT),
                    ("audience", audience),
                ],
            )
            .await
        }
    };
    let c = grant_claims(&ask(AS_C, user.clone()).await);
    assert_eq!(c["sub"], "user:alice@example.com");
    assert_eq!(c["tenant"], "acme");
    assert!(c.get("phone").is_none() && c.get("email").is_none() && c.get("department").is_none());
    let b = grant_claims(&ask(AS_B, user).await);
    assert_eq!(b["sub"], "alice");
    assert!(b.get("tenant").is_none());
    // A subject token without the claim the template needs gets no grant.
    let plain = a.user_token(json!({"aud": a.issuer})).await;
    ask(AS_C, plain).await.refused(400, "invalid_request", "no email claim");
    a.server.shutdown().await.unwrap();

    // A rule for a server that is not a foreign server, or copying a registered claim, is
    // refused at start.
    for (rule, message) in [
        (
            lanyard_server::config::TranscriptionRuleConfig {
                foreign_server: "https://nowhere.example".into(),
                subject: None,
                copy_claims: Vec::new(),
            },
            "is not one of oauth.chaining_foreign_servers",
        ),
        (
            lanyard_server::config::TranscriptionRuleConfig {
                foreign_server: AS_B.into(),
                subject: None,
                copy_claims: vec!["act".into()],
            },
            "act is set by the grant itself",
        ),
        (
            lanyard_server::config::TranscriptionRuleConfig {
                foreign_server: AS_B.into(),
                subject: None,
                copy_claims: vec!["may_act".into()],
            },
            "may_act is set by the grant itself or would grant authority",
        ),
        (
            lanyard_server::config::TranscriptionRuleConfig {
                foreign_server: AS_B.into(),
                subject: None,
                copy_claims: vec!["email".into(), "authorization_details".into()],
            },
            "authorization_details is set by the grant itself or would grant authority",
        ),
        (
            lanyard_server::config::TranscriptionRuleConfig {
                foreign_server: AS_B.into(),
                subject: Some("{email".into()),
                copy_claims: Vec::new(),
            },
            "unclosed",
        ),
    ] {
        let config = lanyard_server::ServerConfig {
            data_dir: dir.path().join("refused"),
            oauth: OAuthConfig {
                chaining_foreign_servers: vec![AS_B.into()],
                chaining_transcription: vec![rule],
                ..OAuthConfig::default()
            },
            ..lanyard_server::ServerConfig::default()
        };
        let e = config.validate().unwrap_err().to_string();
        assert!(e.contains(message), "{e}");
    }
}

#[tokio::test]
async fn identity_chaining_between_two_servers() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = Harness::start_with(
        dir_a.path(),
        TRUST_DOMAIN,
        OAuthConfig {
            chaining_foreign_servers: vec![AS_B.into(), AS_C.into()],
            ..OAuthConfig::default()
        },
    )
    .await;
    let b = Harness::start_with(
        dir_b.path(),
        "partner.org",
        OAuthConfig {
            issuer: Some(AS_B.into()),
            // Keys found through A's RFC 8414 metadata.
            chaining_home_servers: vec![HomeServerConfig {
                issuer: a.issuer.clone(),
                jwks_uri: None,
            }],
            ..OAuthConfig::default()
        },
    )
    .await;
    let m = a.metadata().await;
    assert_eq!(m["identity_chaining_requested_token_types_supported"], json!([JWT]));
    assert!(
        !m["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("urn:ietf:params:oauth:grant-type:jwt-bearer"))
    );
    assert!(
        b.metadata().await["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("urn:ietf:params:oauth:grant-type:jwt-bearer"))
    );
    // At A: the user's token becomes a JWT authorization grant for B, the chainer acting.
    let user = a.user_token(json!({"aud": a.issuer})).await;
    let ask_grant = |audience: &'static str| {
        let (a, user) = (&a, user.clone());
        async move {
            a.exchange(
                "chainer",
                &[
                    ("subject_token", &user),
                    ("subject_token_type", AT),
                    ("audience", audience),
                    ("scope", "read write"),
                ],
            )
            .await
        }
    };
    let reply = ask_grant(AS_B).await;
    let grant = reply.token(JWT, "N_A");
    assert!(reply.body["expires_in"].as_u64().unwrap() <= 60);
    let jws = lanyard_core::jose::CompactJws::parse(&grant).unwrap();
    assert_eq!(jws.header().typ.as_deref(), Some("authorization-grant+jwt"));
    let claims = jws.claims().unwrap();
    assert_eq!(
        (claims["aud"].as_str(), claims["sub"].as_str()),
        (Some(AS_B), Some("alice"))
    );
    assert_eq!(claims["act"]["sub"], id("chainer"));
    // At B: the grant is redeemed once for a local access token about alice.
    let redeem = |assertion: String, scope: &'static str| {
        let b = &b;
        async move {
            b.token(
                "agent",
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", &assertion),
                    ("scope", scope),
                ],
            )
            .await
        }
    };
    redeem(grant.clone(), "read write trade")
        .await
        .refused(400, "invalid_scope", "trade");
    let reply = redeem(grant.clone(), "read").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let at = reply.body["access_token"].as_str().unwrap().to_owned();
    let c = b.verify_at(&at).await;
    assert_eq!(
        (c.iss.as_str(), c.sub.as_str(), c.client_id.as_str()),
        (AS_B, "alice", "agent")
    );
    assert_eq!(chain(c.act.as_ref()), [id("chainer")]);
    assert_eq!(c.scope, Some(Scope::parse("read").unwrap()));
    assert!(reply.body.get("refresh_token").is_none());
    // Bad grants: replayed, addressed to another server, from an untrusted home server.
    redeem(grant, "read")
        .await
        .refused(400, "invalid_grant", "already used");
    let for_c = ask_grant(AS_C).await.token(JWT, "N_A");
    redeem(for_c, "read").await.refused(400, "invalid_grant", "aud");
    let t = now().as_secs();
    let stranger_key = lanyard_crypto::provider().generate_key(Algorithm::ES256).unwrap();
    let forge = |iss: &str, jti: &str| {
        let claims = json!({"iss": iss, "sub": "alice", "aud": AS_B, "iat": t, "exp": t + 60, "jti": jti});
        let claims = lanyard_core::oauth::AuthorizationGrantClaims::from_claims(claims.as_object().unwrap()).unwrap();
        lanyard_core::oauth::issue_authorization_grant(stranger_key.as_ref(), "k1", &claims).unwrap()
    };
    let forged = forge("https://evil.test", "evil-1");
    redeem(forged.clone(), "read")
        .await
        .refused(400, "invalid_grant", "not accepted");
    // Claiming to be A, signed with a key A never published: not verifiable at B.
    redeem(forge(&a.issuer, "evil-2"), "read")
        .await
        .refused(400, "invalid_grant", "authorization grant");
    // At A: a JWT without a foreign server, two targets, a target the client lacks; and
    // A redeems no grants at all.
    let user_for_gw = a.user_token(json!({})).await;
    #[rustfmt::skip]
    let refusals: [(&str, &str, &[(&str, &str)], &str); 3] = [
        ("chainer", &user, &[("requested_token_type", JWT)], "foreign"),
        ("chainer", &user, &[("audience", AS_B), ("audience", AS_C)], "alone"),
        ("gateway", &user_for_gw, &[("audience", AS_B)], "as-b.test"),
    ];
    for (client, subject, extra, fragment) in refusals {
        let mut pairs = vec![("subject_token", subject), ("subject_token_type", AT)];
        pairs.extend_from_slice(extra);
        a.exchange(client, &pairs)
            .await
            .refused(400, "invalid_target", fragment);
    }
    a.token(
        "agent",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &forged),
        ],
    )
    .await
    .refused(400, "unsupported_grant_type", "jwt-bearer");
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

#[path = "oauth_exchange/trusted_issuers.rs"]
mod trusted_issuers;

// ---- interop: panva/openid-client as the exchanging client ----

const VENV_PYTHON: &str = "tests/interop/.venv/bin/python";

/// The workspace root when the drivers can run (Node with openid-client, the Python
/// venv); without them the test is skipped, unless `LANYARD_INTEROP=1` makes that a
/// failure (as the other interop tests do).
fn drivers_available(test: &str) -> Option<std::path::PathBuf> {
    interop_available(
        test,
        &["tests/interop/node/node_modules/openid-client", VENV_PYTHON],
        "Node 20+ with openid-client and the Python venv (scripts/install-interop.sh)",
    )
}

/// The workspace root when Node runs and every path of `needs` (relative to the root)
/// exists; otherwise `None` (the test is skipped), or a failure under `LANYARD_INTEROP=1`
/// naming `hint`.
fn interop_available(test: &str, needs: &[&str], hint: &str) -> Option<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if node && needs.iter().all(|p| root.join(p).exists()) {
        return Some(root);
    }
    assert!(
        std::env::var("LANYARD_INTEROP").as_deref() != Ok("1"),
        "{test}: LANYARD_INTEROP=1 but {hint} are missing"
    );
    eprintln!("skipped: {test} needs {hint}");
    None
}

/// Registers `client_id` with `private_key_jwt` and `policy`; returns the path of its
/// private JWK (for the drivers).
async fn register_key_client(
    h: &Harness,
    dir: &std::path::Path,
    client_id: &str,
    policy: ExchangePolicy,
) -> std::path::PathBuf {
    let key = lanyard_crypto::KeyPair::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("k-1");
    let spec = OAuthClientSpec {
        spiffe_ids: Vec::new(),
        auth_methods: vec![AuthMethod::PrivateKeyJwt],
        jwks: Some(JwkSet {
            keys: vec![lanyard_core::SigningKey::public_jwk(&key)],
        }),
        jwks_uri: None,
        grant_types: vec![GrantType::TokenExchange],
        scopes: vec!["read".into(), "write".into()],
        audiences: vec![LEDGER.into()],
        access_token_ttl: 0,
        require_dpop: false,
        require_certificate_binding: false,
        exchange: policy,
    };
    create_client(&h.server.state, client_id, spec, now()).await.unwrap();
    let path = dir.join(format!("{client_id}.jwk.json"));
    std::fs::write(&path, serde_json::to_vec(&key.private_jwk().unwrap()).unwrap()).unwrap();
    path
}

/// For an interop test, when the drivers are available: the workspace root, the server
/// (see [`setup`]) with `client_id` registered under `policy`, and the client's private
/// JWK file.
async fn interop_setup(
    test: &str,
    client_id: &str,
    policy: ExchangePolicy,
) -> Option<(
    std::path::PathBuf,
    tempfile::TempDir,
    Harness,
    String,
    std::path::PathBuf,
)> {
    let root = drivers_available(test)?;
    let (dir, h, user) = setup().await;
    let jwk = register_key_client(&h, dir.path(), client_id, policy).await;
    Some((root, dir, h, user, jwk))
}

/// Runs a driver; its one JSON line of output.
async fn run_driver(program: &std::path::Path, args: &[&str]) -> Value {
    let output = tokio::process::Command::new(program).args(args).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{} failed: {stderr}", program.display());
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn openid_client_delegation_with_actor_token() {
    let policy = policy(true, false, &[TokenTypeUri::AccessToken], false);
    let Some((root, _dir, h, _, jwk)) =
        interop_setup("openid_client_delegation_with_actor_token", "openid-client-app", policy).await
    else {
        return;
    };
    // Alice's token already went through the edge; the agent now acts for her.
    let user = h.user_token(json!({"act": {"sub": id("edge")}})).await;
    let actor = h.svid("agent", &h.issuer).await;
    let driver = root.join("tests/interop/node/oauth_client.mjs");
    let response = run_driver(
        std::path::Path::new("node"),
        &[
            driver.to_str().unwrap(),
            "exchange",
            "--issuer",
            &h.issuer,
            "--client-id",
            "openid-client-app",
            "--jwk",
            jwk.to_str().unwrap(),
            "--subject-token",
            &user,
            "--subject-token-type",
            AT,
            "--actor-token",
            &actor,
            "--actor-token-type",
            JWT,
            "--scope",
            "read",
        ],
    )
    .await;
    assert_eq!(response["issued_token_type"], AT);
    assert_eq!(
        response["token_type"].as_str().map(str::to_ascii_lowercase).as_deref(),
        Some("bearer")
    );
    let c = h.verify_at(response["access_token"].as_str().unwrap()).await;
    assert_eq!((c.sub.as_str(), c.client_id.as_str()), ("alice", "openid-client-app"));
    assert_eq!(chain(c.act.as_ref()), [id("agent"), id("edge")], "nested act");
    assert_eq!(c.scope, Some(Scope::parse("read").unwrap()));
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn authlib_txn_token_with_request_context() {
    let policy = policy(false, false, &[TokenTypeUri::AccessToken], true);
    let Some((root, _dir, h, user, jwk)) =
        interop_setup("authlib_txn_token_with_request_context", "authlib-app", policy).await
    else {
        return;
    };
    let python = root.join(VENV_PYTHON);
    let driver = root.join("tests/interop/python/authlib_client.py");
    let response = run_driver(
        &python,
        &[
            driver.to_str().unwrap(),
            "txn-token",
            "--issuer",
            &h.issuer,
            "--client-id",
            "authlib-app",
            "--jwk",
            jwk.to_str().unwrap(),
            "--subject-token",
            &user,
            "--subject-token-type",
            AT,
            "--audience",
            TRUST_DOMAIN,
            "--scope",
            "read",
            "--request-context",
            r#"{"req_ip":"192.0.2.7","authn":"urn:example:mfa"}"#,
            "--request-details",
            r#"{"action":"BUY","ticker":"MSFT"}"#,
        ],
    )
    .await;
    assert_eq!(response["issued_token_type"], TXN);
    assert_eq!(response["token_type"], "N_A");
    assert_eq!(response["refresh_token"], Value::Null);
    let c = h.verify_txn(response["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (c.sub.as_str(), c.aud.as_str(), c.req_wl.as_str()),
        ("alice", TRUST_DOMAIN, "authlib-app")
    );
    assert_eq!(c.rctx.as_ref().unwrap()["req_ip"], "192.0.2.7");
    assert_eq!(c.tctx.as_ref().unwrap()["ticker"], "MSFT");
    h.server.shutdown().await.unwrap();
}
