//! The resource-server layer against DPoP proofs made by an independent implementation:
//! panva/jose through `tests/interop/node/oauth.mjs sign-dpop` (the driver the
//! lanyard-core interop tests use), for ES256, ES384 and EdDSA proof keys, with and without
//! a server nonce.
//!
//! Gated like the other interop tests: without Node and the driver's `node_modules`
//! (`scripts/install-interop.sh`) the test prints `skipped:` and passes, unless
//! `LANYARD_INTEROP=1` makes that a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use lanyard_core::oauth::{AccessTokenClaims, Audience, Confirmation, Scope, VerificationKeys, issue_access_token};
use lanyard_core::{Algorithm, FixedClock, JwkSet, SigningKey, UnixTime};
use lanyard_crypto::KeyPair;
use lanyard_tower::oauth::{AccessTokenConfig, AccessTokenLayer, DpopNonces, KeySource, VerifiedAccessToken};
use tower::ServiceExt;

const NOW: UnixTime = UnixTime(1_800_000_000);
const ISSUER: &str = "https://as.example.org";
const AUDIENCE: &str = "https://ledger.example.org";
const URL: &str = "https://ledger.example.org/entries";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether the driver can run; `false` (after saying why) when it cannot and
/// `LANYARD_INTEROP` is not set.
fn available() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let modules = root().join("tests/interop/node/node_modules/jose").is_dir();
    if node && modules {
        return true;
    }
    let why = "Node 20+ and tests/interop/node/node_modules (run scripts/install-interop.sh)";
    assert!(
        std::env::var_os("LANYARD_INTEROP").is_none(),
        "LANYARD_INTEROP is set but {why} are missing"
    );
    println!("skipped: needs {why}");
    false
}

/// `node oauth.mjs sign-dpop ...`: a proof by jose.
fn jose_proof(jwk_file: &Path, method: &str, uri: &str, token: &str, nonce: Option<&str>) -> String {
    let iat = NOW.as_secs().to_string();
    let mut args = vec![
        "tests/interop/node/oauth.mjs",
        "sign-dpop",
        "--jwk",
        jwk_file.to_str().unwrap(),
        "--method",
        method,
        "--uri",
        uri,
        "--access-token",
        token,
        "--iat",
        &iat,
    ];
    if let Some(n) = nonce {
        args.extend(["--nonce", n]);
    }
    let out = Command::new("node").args(&args).current_dir(root()).output().unwrap();
    assert!(out.status.success(), "jose: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn send(app: &Router, token: &str, proof: &str) -> (StatusCode, http::HeaderMap, String) {
    let request = Request::get("/entries")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn the_layer_accepts_dpop_proofs_made_by_jose() {
    if !available() {
        return;
    }
    let provider = lanyard_crypto::provider();
    let as_key = provider.generate_key(Algorithm::ES256).unwrap();
    let mut jwk = as_key.public_jwk();
    jwk.kid = Some("as-1".into());
    let keys = VerificationKeys::from_jwks(provider.as_ref(), ISSUER, &JwkSet { keys: vec![jwk] }).unwrap();
    let app_with = |nonces: Option<Arc<DpopNonces>>| {
        let mut config = AccessTokenConfig::new(ISSUER, AUDIENCE);
        config.clock = Arc::new(FixedClock(NOW));
        config.dpop_nonces = nonces;
        Router::new()
            .route(
                "/entries",
                get(|t: VerifiedAccessToken| async move { t.cnf().and_then(|c| c.jkt.clone()).unwrap_or_default() }),
            )
            .layer(AccessTokenLayer::new(KeySource::fixed(keys.clone()), config))
    };
    let plain = app_with(None);
    let nonces = Arc::new(DpopNonces::random(300).unwrap());
    let with_nonce = app_with(Some(Arc::clone(&nonces)));
    let dir = tempfile::tempdir().unwrap();
    for (i, alg) in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA]
        .into_iter()
        .enumerate()
    {
        let client_key = KeyPair::generate(alg).unwrap();
        let jwk_file = dir.path().join(format!("dpop-{i}.json"));
        std::fs::write(&jwk_file, client_key.private_jwk().unwrap().to_json()).unwrap();
        let jkt = client_key.public_jwk().thumbprint(provider.as_ref()).unwrap();
        let claims = AccessTokenClaims {
            iss: ISSUER.into(),
            sub: "billing".into(),
            aud: Audience::one(AUDIENCE),
            client_id: "billing".into(),
            scope: Some(Scope::parse("ledger.read").unwrap()),
            iat: NOW,
            exp: NOW.plus(300),
            nbf: None,
            jti: format!("at-{i}"),
            cnf: Some(Confirmation::dpop(jkt.clone())),
            act: None,
            extra: Default::default(),
        };
        let token = issue_access_token(as_key.as_ref(), "as-1", &claims).unwrap();

        let proof = jose_proof(&jwk_file, "GET", URL, &token, None);
        let (status, _, body) = send(&plain, &token, &proof).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, jkt.as_str()), "{alg}");
        // jose's proof for another URI is refused: the layer really checks it.
        let elsewhere = jose_proof(&jwk_file, "GET", "https://ledger.example.org/other", &token, None);
        let (status, _, body) = send(&plain, &token, &elsewhere).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{alg}: {body}");
        assert!(
            body.contains("invalid_dpop_proof") && body.contains("htu"),
            "{alg}: {body}"
        );

        // With a server nonce: refused with use_dpop_nonce, then accepted with the nonce.
        let (status, headers, body) = send(&with_nonce, &token, &jose_proof(&jwk_file, "GET", URL, &token, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{alg}: {body}");
        assert!(body.contains("use_dpop_nonce"), "{alg}: {body}");
        let nonce = headers["dpop-nonce"].to_str().unwrap().to_owned();
        let proof = jose_proof(&jwk_file, "GET", URL, &token, Some(&nonce));
        let (status, _, body) = send(&with_nonce, &token, &proof).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, jkt.as_str()),
            "{alg} with nonce"
        );
    }
}
