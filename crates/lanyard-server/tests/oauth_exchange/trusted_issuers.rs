//! Trusted external issuers (issue 13 item 2): platform tokens (a Kubernetes
//! service-account token with a static JWK Set; a CI token whose issuer is discovered over
//! HTTP and rotates its key; a real panva `oidc-provider` in the interop test) exchanged by
//! the `platform` workload for an access token about the mapped workload identity. Every
//! bad input asserts `invalid_request` (RFC 8693 §2.2.2) and the reason.

use std::sync::Arc;

use lanyard_core::SigningKey;
use lanyard_server::config::{ClaimConditionConfig, MappingRuleConfig, TrustedIssuerConfig};
use lanyard_testing::key_host::KeyHost;

use super::*;

const K8S: &str = "https://k8s.example.test";
const AUDIENCE: &str = "https://lanyard.example.test";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const WIT: &str = "urn:lanyard:params:oauth:token-type:wit";
const SA_TEMPLATE: &str = "spiffe://{td}/ns/{kubernetes.io.namespace}/sa/{kubernetes.io.serviceaccount.name}";

/// An ES256 key with `kid`, and its public JWK.
fn key(kid: &str) -> (lanyard_crypto::KeyPair, lanyard_core::Jwk) {
    let key = lanyard_crypto::KeyPair::generate(Algorithm::ES256)
        .unwrap()
        .with_kid(kid);
    let mut jwk = key.public_jwk();
    jwk.kid = Some(kid.into());
    (key, jwk)
}

/// A JWT signed by `key` with header `typ` and `claims`.
fn sign(key: &lanyard_crypto::KeyPair, kid: &str, typ: Option<&str>, claims: &Value) -> String {
    lanyard_core::jose::sign_compact(typ, Some(kid), claims, key).unwrap()
}

/// A JWT with header `header` and an arbitrary signature (for `alg` values no key makes).
fn forged(header: &Value, claims: &Value) -> String {
    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.c2ln", b64(header), b64(claims))
}

/// A service-account token's claims, as the Kubernetes API server issues them.
fn sa_claims(ns: &str, sa: &str) -> Value {
    let t = now().as_secs();
    json!({
        "iss": K8S, "aud": [AUDIENCE, "https://kubernetes.default.svc"], "iat": t, "nbf": t, "exp": t + 600,
        "sub": format!("system:serviceaccount:{ns}:{sa}"), "jti": format!("sa-{}", rand()),
        "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": sa, "uid": "a087d5a0"}},
    })
}

/// `claims` with `changes` applied.
fn with(mut claims: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

fn trusted(issuer: &str, identity: &str, require: Vec<ClaimConditionConfig>) -> TrustedIssuerConfig {
    TrustedIssuerConfig {
        issuer: issuer.into(),
        jwks_uri: None,
        jwks: None,
        audience: AUDIENCE.into(),
        algorithms: vec!["ES256".into(), "RS256".into()],
        leeway: 60,
        max_token_lifetime: 3600,
        jwks_refetch_interval: 30,
        rules: vec![MappingRuleConfig {
            identity: identity.into(),
            require,
        }],
    }
}

/// The Kubernetes issuer with the static JWK Set `jwks`; only namespaces `prod` and
/// `staging` map.
fn k8s_issuer(jwks: &[lanyard_core::Jwk]) -> TrustedIssuerConfig {
    TrustedIssuerConfig {
        jwks: Some(json!({ "keys": jwks }).to_string()),
        ..trusted(
            K8S,
            SA_TEMPLATE,
            vec![ClaimConditionConfig {
                claim: "kubernetes.io.namespace".into(),
                equals: None,
                one_of: vec!["prod".into(), "staging".into()],
            }],
        )
    }
}

async fn start(issuers: Vec<TrustedIssuerConfig>) -> (tempfile::TempDir, Harness) {
    start_with(OAuthConfig {
        trusted_issuers: issuers,
        ..OAuthConfig::default()
    })
    .await
}

async fn start_with(oauth: OAuthConfig) -> (tempfile::TempDir, Harness) {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_with(dir.path(), TRUST_DOMAIN, oauth).await;
    (dir, h)
}

impl Harness {
    /// `client` exchanges `token` of `token_type` for an access token for the ledger.
    async fn exchange_external(&self, client: &str, token: &str, token_type: &str) -> Reply {
        self.exchange(
            client,
            &[
                ("subject_token", token),
                ("subject_token_type", token_type),
                ("audience", LEDGER),
            ],
        )
        .await
    }
}

#[tokio::test]
async fn a_platform_token_becomes_its_workload_identity() {
    let (k, jwk) = key("k8s-1");
    let (_dir, h) = start(vec![k8s_issuer(&[jwk])]).await;
    let claims = sa_claims("prod", "billing");
    let token = sign(&k, "k8s-1", None, &claims);
    for token_type in [JWT, ID_TOKEN] {
        let reply = h.exchange_external("platform", &token, token_type).await;
        let c = h.verify_at(&reply.token(AT, "Bearer")).await;
        assert_eq!(c.sub, "spiffe://example.org/ns/prod/sa/billing");
        assert_eq!(c.client_id, "platform");
        assert!(c.act.is_none(), "impersonation: no actor");
        assert!(
            c.exp.as_secs() <= claims["exp"].as_u64().unwrap(),
            "never outlives the platform token"
        );
    }
    // A client whose policy does not list the issuer cannot use its tokens, not even as
    // an actor token.
    let user = h.user_token(json!({})).await;
    let reply = h
        .exchange(
            "gateway",
            &[
                ("subject_token", &user),
                ("subject_token_type", AT),
                ("actor_token", &token),
                ("actor_token_type", JWT),
            ],
        )
        .await;
    reply.refused(400, "invalid_request", "not accepted");
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_platform_token_becomes_a_wit_for_a_proven_key() {
    let (k, jwk) = key("k8s-1");
    let (_dir, h) = start_with(wit_settings(vec![k8s_issuer(&[jwk])])).await;
    let claims = sa_claims("staging", "deployer");
    let token = sign(&k, "k8s-1", None, &claims);
    let holder = lanyard_crypto::KeyPair::generate(Algorithm::ES256).unwrap();
    let proof = || dpop_proof(&h, &holder);
    let params = [
        ("subject_token", token.as_str()),
        ("subject_token_type", JWT),
        ("requested_token_type", WIT),
    ];
    let verified = exchange_for_wit(&h, &token, JWT, &holder).await;
    assert_eq!(verified.sub.as_str(), "spiffe://example.org/ns/staging/sa/deployer");
    let mut proven = holder.public_jwk();
    proven.alg = Some("ES256".into());
    assert_eq!(verified.cnf_jwk, proven, "bound to the proof's key, with its alg");
    assert!(verified.exp.as_secs() <= claims["exp"].as_u64().unwrap());

    // No proof of a key: no WIT.
    h.token("platform", &with_exchange(&params))
        .await
        .refused(400, "invalid_request", "DPoP proof");
    // A WIT names no actor: a client that would act itself (delegation) gets none.
    let svid = h.svid("billing", &h.issuer).await;
    let as_gateway = [
        ("subject_token", svid.as_str()),
        ("subject_token_type", JWT),
        ("requested_token_type", WIT),
    ];
    h.token_with_headers("gateway", &with_exchange(&as_gateway), &[("DPoP", &proof())])
        .await
        .refused(400, "invalid_request", "a WIT names no actor");
    h.server.shutdown().await.unwrap();

    // Off by default.
    let (_dir, h) = start(vec![k8s_issuer(&[key("k8s-1").1])]).await;
    h.exchange("platform", &params)
        .await
        .refused(400, "invalid_request", WIT);
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_platform_token_becomes_a_jwt_svid_when_enabled() {
    let (k, jwk) = key("k8s-1");
    let settings = OAuthConfig {
        trusted_issuers: vec![k8s_issuer(std::slice::from_ref(&jwk))],
        issue_jwt_svids: true,
        ..OAuthConfig::default()
    };
    let (_dir, h) = start_with(settings).await;
    let claims = sa_claims("staging", "deployer");
    let token = sign(&k, "k8s-1", None, &claims);
    let params = [
        ("subject_token", token.as_str()),
        ("subject_token_type", JWT),
        ("requested_token_type", JWT),
        ("audience", LEDGER),
    ];
    let reply = h.exchange("platform", &params).await;
    let svid = reply.token(JWT, "N_A");
    let store = Arc::new(lanyard_core::TrustStore::new(lanyard_crypto::provider()));
    store.set_bundle(&h.server.state.keys.bundle().await.unwrap()).unwrap();
    let verified = lanyard_core::JwtSvidVerifier::new(store, lanyard_core::JwtSvidPolicy::default())
        .verify(&svid, LEDGER, now())
        .unwrap();
    assert_eq!(verified.sub.as_str(), "spiffe://example.org/ns/staging/sa/deployer");
    assert_eq!(verified.aud, vec![LEDGER.to_owned()]);
    assert!(verified.exp.as_secs() <= claims["exp"].as_u64().unwrap());
    // expires_in is the JWT-SVID's own remaining life.
    let expires_in = reply.body["expires_in"].as_u64().unwrap();
    assert!(
        verified.exp.as_secs().abs_diff(now().as_secs() + expires_in) <= 1,
        "{}",
        reply.body
    );

    // An audience must be asked for: a bearer JWT-SVID is never for every registered one.
    h.exchange("platform", &params[..3])
        .await
        .refused(400, "invalid_target", "needs an audience");
    // Only registered audiences (RFC 8707).
    let elsewhere = [
        ("subject_token", token.as_str()),
        ("subject_token_type", JWT),
        ("requested_token_type", JWT),
        ("audience", "https://elsewhere.example.test"),
    ];
    h.exchange("platform", &elsewhere)
        .await
        .refused(400, "invalid_target", "not a registered");
    // A JWT-SVID names no actor: a client that would act itself gets none.
    let svid = h.svid("billing", &h.issuer).await;
    let as_gateway = [
        ("subject_token", svid.as_str()),
        ("subject_token_type", JWT),
        ("requested_token_type", JWT),
        ("audience", LEDGER),
    ];
    h.exchange("gateway", &as_gateway)
        .await
        .refused(400, "invalid_request", "a JWT-SVID names no actor");
    // A Txn-Token is only replaced or chained: never exchanged for a bearer JWT-SVID.
    let from_txn = [
        ("subject_token", token.as_str()),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:txn_token"),
        ("requested_token_type", JWT),
        ("audience", LEDGER),
    ];
    h.exchange("platform", &from_txn)
        .await
        .refused(400, "invalid_request", "(for a JWT-SVID)");
    h.server.shutdown().await.unwrap();

    // Off by default.
    let (_dir, h) = start(vec![k8s_issuer(&[jwk])]).await;
    h.exchange("platform", &params)
        .await
        .refused(400, "invalid_target", "issue_jwt_svids");
    h.server.shutdown().await.unwrap();
}

/// The `platform` workload exchanges `token` of `token_type` for a WIT bound to
/// `holder`'s key (proven with a DPoP proof); the WIT, verified with the server's bundle.
async fn exchange_for_wit(
    h: &Harness,
    token: &str,
    token_type: &str,
    holder: &lanyard_crypto::KeyPair,
) -> Arc<lanyard_core::VerifiedWit> {
    let params = [
        ("subject_token", token),
        ("subject_token_type", token_type),
        ("requested_token_type", WIT),
    ];
    let before = now().as_secs();
    let reply = h
        .token_with_headers("platform", &with_exchange(&params), &[("DPoP", &dpop_proof(h, holder))])
        .await;
    let after = now().as_secs();
    let wit = reply.token(WIT, "N_A");
    let store = Arc::new(lanyard_core::TrustStore::new(lanyard_crypto::provider()));
    store.set_bundle(&h.server.state.keys.bundle().await.unwrap()).unwrap();
    let verified = lanyard_core::WitVerifier::new(store, lanyard_core::WitPolicy::wit_svid())
        .verify(&wit, now())
        .unwrap();
    // `expires_in` is what the WIT itself says, counted from the second the server answered.
    let expires_in = reply.body["expires_in"].as_u64().unwrap();
    let exp = verified.exp.as_secs();
    assert!((exp - after..=exp - before).contains(&expires_in), "{}", reply.body);
    verified
}

/// Settings that issue WITs for DPoP proofs without a server nonce (a test shortcut).
fn wit_settings(issuers: Vec<TrustedIssuerConfig>) -> OAuthConfig {
    OAuthConfig {
        trusted_issuers: issuers,
        issue_wits: true,
        require_dpop_nonce: false,
        ..OAuthConfig::default()
    }
}

/// `params` after `grant_type=...:token-exchange`.
fn with_exchange<'a>(params: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![("grant_type", EXCHANGE)];
    pairs.extend_from_slice(params);
    pairs
}

#[tokio::test]
async fn platform_token_bad_inputs() {
    let (k, jwk) = key("k8s-1");
    let (other, _) = key("k8s-1");
    let (_dir, h) = start(vec![k8s_issuer(&[jwk])]).await;
    let t = now().as_secs();
    let ok = sa_claims("prod", "billing");
    let signed = |claims: Value| sign(&k, "k8s-1", None, &claims);
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "untrusted issuer",
            signed(with(ok.clone(), json!({"iss": "https://rogue.example.test"}))),
            JWT,
            "are not accepted",
        ),
        (
            "untrusted issuer as an id_token",
            signed(with(ok.clone(), json!({"iss": "https://rogue.example.test"}))),
            ID_TOKEN,
            "are not accepted",
        ),
        (
            "a foreign access token",
            signed(with(ok.clone(), json!({"iss": "https://rogue.example.test"}))),
            AT,
            "are not accepted",
        ),
        (
            "wrong audience",
            signed(with(ok.clone(), json!({"aud": "https://kubernetes.default.svc"}))),
            JWT,
            "wrong audience",
        ),
        (
            "expired",
            signed(with(
                ok.clone(),
                json!({"iat": t - 900, "nbf": t - 900, "exp": t - 120}),
            )),
            JWT,
            "expired",
        ),
        (
            "nbf in the future",
            signed(with(ok.clone(), json!({"nbf": t + 300}))),
            JWT,
            "not valid before nbf",
        ),
        (
            "living too long",
            signed(with(ok.clone(), json!({"exp": t + 7200}))),
            JWT,
            "lifetime",
        ),
        (
            "bad signature",
            sign(&other, "k8s-1", None, &ok),
            JWT,
            "signature verification failed",
        ),
        (
            "alg none",
            forged(&json!({"alg": "none", "kid": "k8s-1"}), &ok),
            JWT,
            "",
        ),
        (
            "alg HS256",
            forged(&json!({"alg": "HS256", "kid": "k8s-1"}), &ok),
            JWT,
            "HS256",
        ),
        (
            "claims matching no rule",
            signed(sa_claims("dev", "billing")),
            JWT,
            "match no mapping rule",
        ),
        (
            "a claim climbing the path",
            signed(sa_claims("prod", "..")),
            JWT,
            "cannot be part of a workload identifier",
        ),
        (
            "a claim forging a segment",
            signed(sa_claims("prod", "billing/admin")),
            JWT,
            "cannot be part of a workload identifier",
        ),
        (
            "a percent-encoded segment",
            signed(sa_claims("prod", "%2e%2e")),
            JWT,
            "cannot be part of a workload identifier",
        ),
        ("typ of a WIT", sign(&k, "k8s-1", Some("wit+jwt"), &ok), JWT, "typ says"),
        (
            "typ of a Txn-Token",
            sign(&k, "k8s-1", Some("txntoken+jwt"), &ok),
            JWT,
            "typ says",
        ),
    ];
    for (why, token, token_type, fragment) in cases {
        let reply = h.exchange_external("platform", &token, token_type).await;
        assert_eq!(reply.body["error"], "invalid_request", "{why}: {}", reply.body);
        reply.refused(400, "invalid_request", fragment);
    }
    // A trusted issuer, but not one this client may exchange tokens of.
    let reply = h.exchange_external("gateway", &signed(ok.clone()), JWT).await;
    reply.refused(400, "invalid_request", "are not accepted");
    // The token is fine.
    h.exchange_external("platform", &signed(ok), JWT)
        .await
        .token(AT, "Bearer");
    h.server.shutdown().await.unwrap();
}

/// An issuer whose keys cannot be fetched is asked once, not once per token: concurrent
/// requests share one fetch, and after a failure the next attempt waits
/// `jwks_refetch_interval`; then the keys are fetched and used.
#[tokio::test]
async fn an_unreachable_issuer_is_not_fetched_per_request() {
    let ci = KeyHost::start(&JwkSet { keys: Vec::new() }).await;
    ci.set_down(true);
    let (first, first_jwk) = key("ci-1");
    let issuer = TrustedIssuerConfig {
        jwks_refetch_interval: 2,
        ..trusted(ci.issuer(), "wimse://{td}/ci/{repository_owner}/{workflow}", Vec::new())
    };
    let (_dir, h) = start(vec![issuer]).await;
    let t = now().as_secs();
    let claims = json!({
        "iss": ci.issuer(), "aud": AUDIENCE, "iat": t, "exp": t + 300, "sub": "repo:octo/app",
        "repository_owner": "octo", "workflow": "deploy",
    });
    let token = sign(&first, "ci-1", None, &claims);
    let exchange = || h.exchange_external("platform", &token, JWT);
    let replies = tokio::join!(exchange(), exchange(), exchange(), exchange());
    for reply in [replies.0, replies.1, replies.2, replies.3] {
        reply.refused(400, "invalid_request", "are unavailable");
    }
    assert_eq!(ci.fetches(), 1, "one fetch for concurrent requests");
    for _ in 0..3 {
        exchange()
            .await
            .refused(400, "invalid_request", "not fetched again for");
    }
    assert_eq!(ci.fetches(), 1, "no fetch within the interval after a failure");
    // The issuer is back; after the interval the keys are fetched and the token accepted.
    ci.publish(&JwkSet { keys: vec![first_jwk] });
    ci.set_down(false);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let reply = exchange().await;
    assert_eq!(
        h.verify_at(&reply.token(AT, "Bearer")).await.sub,
        "wimse://example.org/ci/octo/deploy"
    );
    assert_eq!(ci.fetches(), 2);
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn discovery_and_key_rotation() {
    let ci = KeyHost::start(&JwkSet { keys: Vec::new() }).await;
    let (first, first_jwk) = key("ci-1");
    let (second, second_jwk) = key("ci-2");
    ci.publish(&JwkSet { keys: vec![first_jwk] });
    let issuer = TrustedIssuerConfig {
        jwks_refetch_interval: 2,
        ..trusted(
            ci.issuer(),
            "wimse://{td}/ci/{repository_owner}/{workflow}",
            vec![ClaimConditionConfig {
                claim: "ref".into(),
                equals: Some("refs/heads/main".into()),
                one_of: Vec::new(),
            }],
        )
    };
    let (_dir, h) = start(vec![issuer]).await;
    let t = now().as_secs();
    let claims = json!({
        "iss": ci.issuer(), "aud": AUDIENCE, "iat": t, "exp": t + 300, "sub": "repo:octo/app:ref:refs/heads/main",
        "repository_owner": "octo", "workflow": "deploy", "ref": "refs/heads/main",
    });
    let reply = h
        .exchange_external("platform", &sign(&first, "ci-1", Some("JWT"), &claims), JWT)
        .await;
    let c = h.verify_at(&reply.token(AT, "Bearer")).await;
    assert_eq!(c.sub, "wimse://example.org/ci/octo/deploy");
    assert_eq!(ci.fetches(), 1);
    let feature = with(claims.clone(), json!({"ref": "refs/heads/feature"}));
    h.exchange_external("platform", &sign(&first, "ci-1", None, &feature), JWT)
        .await
        .refused(400, "invalid_request", "match no mapping rule");

    // The issuer rotates to a new key: the unknown kid makes the server fetch again (once
    // the last fetch is older than jwks_refetch_interval).
    ci.publish(&JwkSet { keys: vec![second_jwk] });
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let reply = h
        .exchange_external("platform", &sign(&second, "ci-2", None, &claims), JWT)
        .await;
    assert_eq!(h.verify_at(&reply.token(AT, "Bearer")).await.sub, c.sub);
    assert_eq!(ci.fetches(), 2);
    // Made-up kids do not make it fetch again within the interval.
    let (ghost, _) = key("ghost");
    for _ in 0..3 {
        h.exchange_external("platform", &sign(&ghost, "ghost", None, &claims), JWT)
            .await
            .refused(400, "invalid_request", "ghost");
    }
    assert_eq!(ci.fetches(), 2, "refetches are rate-limited");
    // Once the interval has passed, concurrent requests with unknown kids make one fetch.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let ghost_token = sign(&ghost, "ghost", None, &claims);
    let ghost = || h.exchange_external("platform", &ghost_token, JWT);
    let replies = tokio::join!(ghost(), ghost(), ghost(), ghost());
    for reply in [replies.0, replies.1, replies.2, replies.3] {
        reply.refused(400, "invalid_request", "ghost");
    }
    assert_eq!(ci.fetches(), 3, "one refetch for concurrent requests");
    // The old key is gone from the issuer's set.
    h.exchange_external("platform", &sign(&first, "ci-1", None, &claims), JWT)
        .await
        .refused(400, "invalid_request", "ci-1");
    h.server.shutdown().await.unwrap();
}

#[test]
fn trusted_issuer_settings_are_checked() {
    let (_, jwk) = key("k8s-1");
    let good = k8s_issuer(std::slice::from_ref(&jwk));
    let check = |t: TrustedIssuerConfig| {
        let mut config = ServerConfig::default();
        config.oauth.trusted_issuers = vec![t];
        config.validate()
    };
    check(good.clone()).unwrap();
    let bad: Vec<(TrustedIssuerConfig, &str)> = vec![
        (
            TrustedIssuerConfig {
                algorithms: vec!["HS256".into()],
                ..good.clone()
            },
            "HS256",
        ),
        (
            TrustedIssuerConfig {
                algorithms: vec!["none".into()],
                ..good.clone()
            },
            "none",
        ),
        (
            TrustedIssuerConfig {
                audience: String::new(),
                ..good.clone()
            },
            "audience",
        ),
        (
            TrustedIssuerConfig {
                issuer: "http://k8s.example.test".into(),
                ..good.clone()
            },
            "issuer",
        ),
        (
            TrustedIssuerConfig {
                jwks_uri: Some("https://k8s.example.test/jwks".into()),
                ..good.clone()
            },
            "not both",
        ),
        (
            TrustedIssuerConfig {
                jwks: None,
                jwks_uri: Some("https://svc:secret@k8s.example.test/jwks".into()),
                ..good.clone()
            },
            "must have no userinfo",
        ),
        (
            TrustedIssuerConfig {
                jwks: None,
                jwks_uri: Some("http://localhost.evil.example/jwks".into()),
                ..good.clone()
            },
            "plain http only to a loopback host",
        ),
        (
            TrustedIssuerConfig {
                jwks: Some("/nonexistent/jwks.json".into()),
                ..good.clone()
            },
            "jwks",
        ),
        (
            TrustedIssuerConfig {
                rules: Vec::new(),
                ..good.clone()
            },
            "at least one mapping rule",
        ),
        (
            trusted(K8S, "spiffe://other.example/ns/{ns}", Vec::new()),
            "trust domain",
        ),
        (trusted(K8S, "spiffe://{td}/ns/{ns", Vec::new()), "unmatched"),
        (
            trusted(
                K8S,
                SA_TEMPLATE,
                vec![ClaimConditionConfig {
                    claim: "ns".into(),
                    equals: None,
                    one_of: Vec::new(),
                }],
            ),
            "exactly one of equals or one_of",
        ),
    ];
    for (t, fragment) in bad {
        let e = check(t).unwrap_err().to_string();
        assert!(e.contains(fragment), "{e:?} lacks {fragment:?}");
    }
    let mut twice = ServerConfig::default();
    twice.oauth.trusted_issuers = vec![good.clone(), good];
    assert!(twice.validate().unwrap_err().to_string().contains("more than once"));
}

// ---- interop: panva oidc-provider as the external issuer ----

/// The workspace root when Node and oidc-provider are installed (see
/// [`interop_available`]).
fn oidc_provider_available(test: &str) -> Option<std::path::PathBuf> {
    interop_available(
        test,
        &["tests/interop/node/node_modules/oidc-provider"],
        "Node 20+ with oidc-provider (scripts/install-interop.sh)",
    )
}

#[tokio::test]
async fn oidc_provider_access_token_is_exchanged() {
    use tokio::io::AsyncBufReadExt as _;
    let Some(root) = oidc_provider_available("oidc_provider_access_token_is_exchanged") else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let mut peer = tokio::process::Command::new("node")
        .arg(root.join("tests/interop/node/oidc_issuer.mjs"))
        .args([port.as_str(), "ci-runner", "ci-runner-secret", AUDIENCE])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(peer.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("oidc-provider did not start")
        .unwrap()
        .expect("oidc-provider exited");
    let issuer = serde_json::from_str::<Value>(&ready).unwrap()["issuer"]
        .as_str()
        .unwrap()
        .to_owned();

    // Lanyard trusts it through discovery; its client_credentials tokens map by client_id.
    let config = trusted(
        &issuer,
        "spiffe://{td}/oidc/{client_id}",
        vec![ClaimConditionConfig {
            claim: "client_id".into(),
            equals: Some("ci-runner".into()),
            one_of: Vec::new(),
        }],
    );
    let (_dir, h) = start_with(wit_settings(vec![config])).await;

    // oidc-provider issues an RFC 9068 JWT access token for Lanyard (resource indicator).
    let r = h
        .http
        .post(format!("{issuer}/token"))
        .basic_auth("ci-runner", Some("ci-runner-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(
            [
                ("grant_type", "client_credentials"),
                ("resource", AUDIENCE),
                ("scope", "read"),
            ]
            .into_iter(),
        ))
        .send()
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let platform_token = body["access_token"].as_str().expect("an access token").to_owned();
    let header = lanyard_core::jose::CompactJws::parse(&platform_token)
        .unwrap()
        .header()
        .typ
        .clone();
    assert_eq!(header.as_deref(), Some("at+jwt"), "a JWT access token");

    let reply = h.exchange_external("platform", &platform_token, AT).await;
    let c = h.verify_at(&reply.token(AT, "Bearer")).await;
    assert_eq!(c.sub, "spiffe://example.org/oidc/ci-runner");
    assert_eq!((c.iss.as_str(), c.client_id.as_str()), (h.issuer.as_str(), "platform"));
    // The same token, with proof of a key, for a WIT bound to it.
    let holder = lanyard_crypto::KeyPair::generate(Algorithm::ES256).unwrap();
    let wit = exchange_for_wit(&h, &platform_token, AT, &holder).await;
    assert_eq!(wit.sub.as_str(), "spiffe://example.org/oidc/ci-runner");
    assert_eq!(wit.cnf_jwk.x, holder.public_jwk().x);
    h.server.shutdown().await.unwrap();
    peer.kill().await.unwrap();
}
