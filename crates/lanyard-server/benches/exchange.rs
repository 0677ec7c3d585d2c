//! In-process cost of token exchange (RFC 8693) and of the Transaction Token Service,
//! next to the raw signature operations they cannot avoid, in the same run (issue 13,
//! "Performance": at most 1.3× the raw operations). Results are in `docs/benchmarks.md`.
//!
//! Run with `cargo bench -p lanyard-server --bench exchange`. Benchmark ids:
//!
//! - `exchange/delegation`: `AuthorizationServer::token` for a token exchange by an
//!   already authenticated client: an ES256 access token as subject (verified with the
//!   server's JWK Set, revocation looked up in the SQLite store), an ES256 JWT-SVID as actor
//!   token (verified with the trust bundle), the decision, and an ES256 access token with
//!   nested `act` signed — two verifications and one signature.
//! - `exchange/txn_token`: the same call asking for a Txn-Token (one verification, one
//!   signature, the call-chain record).
//! - `raw/two_verify_one_sign`, `raw/one_verify_one_sign`: the signature work alone,
//!   through `lanyard_crypto` (pre-parsed keys, the same signing inputs).
//!
//! Client authentication is not included (it is measured with the token endpoint in
//! `bench/oauth-load`). The server runs in-process (`lanyard_server::start`, SQLite in a
//! temp dir, logging off); every timed call unwraps, so a failing path cannot look fast.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use lanyard_core::jose::CompactJws;
use lanyard_core::oauth::{
    AccessTokenClaims, AuthMethod, Form, FormLimits, GrantType, SpiffeIdPattern, TokenRequest, TokenTypeUri,
    encode_form, issue_access_token,
};
use lanyard_core::{Algorithm, Clock, SpiffeId, SystemClock};
use lanyard_server::model::{ExchangePolicy, OAuthClientSpec};
use lanyard_server::oauth::AuthenticatedClient;
use lanyard_server::oauth::clients::create_client;
use lanyard_server::{RunningServer, ServerConfig};
use serde_json::json;
use tokio::runtime::Runtime;

const AT: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

struct Fixture {
    rt: Runtime,
    server: RunningServer,
    client: AuthenticatedClient,
    user: String,
    actor: String,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (server, client, user, actor) = rt.block_on(async {
        let config = ServerConfig {
            data_dir: dir.path().join("data"),
            public_address: "127.0.0.1:0".into(),
            agent_address: "127.0.0.1:0".into(),
            log_level: "off".into(),
            ..ServerConfig::default()
        };
        let server = lanyard_server::start(config).await.unwrap();
        let now = SystemClock.now();
        let spec = OAuthClientSpec {
            spiffe_ids: vec![SpiffeIdPattern::parse("spiffe://example.org/gateway").unwrap()],
            auth_methods: vec![AuthMethod::SpiffeJwt],
            jwks: None,
            jwks_uri: None,
            grant_types: vec![GrantType::TokenExchange],
            scopes: vec!["read".into(), "write".into()],
            audiences: vec!["https://ledger.example.org".into()],
            access_token_ttl: 0,
            require_dpop: false,
            require_certificate_binding: false,
            exchange: ExchangePolicy {
                delegate: true,
                subject_token_types: vec![TokenTypeUri::AccessToken],
                actor_token_types: vec![TokenTypeUri::Jwt],
                subject_audiences: vec!["https://ledger.example.org".into()],
                txn_tokens: true,
                ..ExchangePolicy::default()
            },
        };
        let created = create_client(&server.state, "gateway", spec, now).await.unwrap();
        let gateway = SpiffeId::parse("spiffe://example.org/gateway").unwrap();
        let client = AuthenticatedClient {
            client: std::sync::Arc::new(created.client),
            method: AuthMethod::SpiffeJwt,
            spiffe_id: Some(gateway.clone()),
            certificate_thumbprint: None,
        };
        let t = now.as_secs();
        let claims = json!({"iss": server.oauth.issuer(), "sub": "alice", "aud": "https://ledger.example.org",
                            "client_id": "web", "scope": "read write", "iat": t, "exp": t + 3600, "jti": "u-1"});
        let claims = AccessTokenClaims::from_claims(claims.as_object().unwrap()).unwrap();
        let (key, kid) = server.state.keys.access_token_signer().await.unwrap();
        let user = issue_access_token(key.as_ref(), &kid, &claims).unwrap();
        let actor = lanyard_server::issue::mint_jwt_svid(&server.state, &gateway, &[server.oauth.issuer()], Some(3600))
            .await
            .unwrap()
            .token;
        (server, client, user, actor)
    });
    Fixture {
        rt,
        server,
        client,
        user,
        actor,
        _dir: dir,
    }
}

fn request(pairs: &[(&str, &str)]) -> TokenRequest {
    let body = encode_form(pairs.iter().copied());
    TokenRequest::from_form(&Form::parse(body.as_bytes(), FormLimits::default()).unwrap()).unwrap()
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let exchange = "urn:ietf:params:oauth:grant-type:token-exchange";
    let delegation = request(&[
        ("grant_type", exchange),
        ("subject_token", &f.user),
        ("subject_token_type", AT),
        ("actor_token", &f.actor),
        ("actor_token_type", JWT),
        ("scope", "read"),
    ]);
    let txn = request(&[
        ("grant_type", exchange),
        ("subject_token", &f.user),
        ("subject_token_type", AT),
        ("requested_token_type", "urn:ietf:params:oauth:token-type:txn_token"),
        ("audience", "example.org"),
        ("scope", "read"),
        ("request_context", r#"{"req_ip":"192.0.2.7"}"#),
    ]);
    let run = |r: &TokenRequest| {
        f.rt.block_on(f.server.oauth.token(r, &f.client, None, SystemClock.now()))
            .unwrap()
    };
    // Check once that both paths issue what they should.
    assert!(run(&delegation).response.access_token.contains('.'));
    assert_eq!(run(&txn).response.token_type.as_str(), "N_A");

    // The raw work: verify the subject and actor tokens' signatures, sign one token.
    let provider = lanyard_crypto::provider();
    let signer = provider.generate_key(Algorithm::ES256).unwrap();
    let verifier = provider.verifying_key(&signer.public_jwk(), Algorithm::ES256).unwrap();
    let inputs: Vec<(Vec<u8>, Vec<u8>)> = [&f.user, &f.actor]
        .iter()
        .map(|t| {
            let jws = CompactJws::parse(t).unwrap();
            let input = jws.signing_input().to_vec();
            (input.clone(), signer.sign(&input).unwrap())
        })
        .collect();
    let sign_input = inputs[0].0.clone();

    let mut g = c.benchmark_group("exchange");
    g.bench_function("delegation", |b| b.iter(|| black_box(run(&delegation))));
    g.bench_function("txn_token", |b| b.iter(|| black_box(run(&txn))));
    g.finish();
    let mut g = c.benchmark_group("raw");
    g.bench_function("two_verify_one_sign", |b| {
        b.iter(|| {
            for (input, signature) in &inputs {
                verifier.verify(input, signature).unwrap();
            }
            black_box(signer.sign(&sign_input).unwrap())
        })
    });
    g.bench_function("one_verify_one_sign", |b| {
        b.iter(|| {
            verifier.verify(&inputs[0].0, &inputs[0].1).unwrap();
            black_box(signer.sign(&sign_input).unwrap())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
