//! The OAuth authorization server with independent clients (issue 12 "Interop"): a real
//! server on loopback; Python Authlib (`tests/interop/python/authlib_client.py`) and Node
//! openid-client v6 (`tests/interop/node/oauth_client.mjs`) discover it through its RFC
//! 8414 metadata and run `client_credentials` with `private_key_jwt`; openid-client also
//! gets a DPoP-bound token; Node `jose` (`tests/interop/node/oauth.mjs`) verifies each
//! access token against the keys served at the metadata's `jwks_uri`, requiring
//! `typ: at+jwt`.
//!
//! Without the drivers installed (`scripts/install-interop.sh`) each test prints
//! `skipped:` and passes, unless `LANYARD_INTEROP=1` makes that a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use lanyard_core::oauth::{AuthMethod, SpiffeIdPattern};
use lanyard_core::{Algorithm, Clock, JwkSet, SystemClock};
use lanyard_crypto::KeyPair;
use lanyard_server::ServerConfig;
use lanyard_server::model::OAuthClientSpec;
use lanyard_server::oauth::clients::create_client;

const LEDGER: &str = "https://ledger.example.org";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether the drivers are installed; when not, fails under `LANYARD_INTEROP=1`.
fn drivers_ready() -> bool {
    let root = root();
    let ready = root.join("tests/interop/node/node_modules/openid-client").is_dir()
        && root.join("tests/interop/node/node_modules/jose").is_dir()
        && root.join("tests/interop/.venv/bin/python").is_file()
        && Command::new(root.join("tests/interop/.venv/bin/python"))
            .args(["-c", "import authlib, requests, joserfc"])
            .output()
            .is_ok_and(|o| o.status.success())
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ready {
        assert!(
            std::env::var("LANYARD_INTEROP").as_deref() != Ok("1"),
            "LANYARD_INTEROP=1 but the OAuth interop drivers are not installed: run scripts/install-interop.sh"
        );
        eprintln!("skipped: OAuth interop drivers not installed (run scripts/install-interop.sh)");
    }
    ready
}

/// Runs a driver; returns its one JSON line, or panics with its error line.
fn run(program: &Path, args: &[&str]) -> Value {
    let out = Command::new(program).args(args).current_dir(root()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{stdout}\n{stderr}",
        program.display()
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| Value::String(stdout.trim().to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_and_openid_client_get_tokens_that_jose_verifies() {
    if !drivers_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = lanyard_server::start(ServerConfig {
        data_dir: dir.path().join("data"),
        public_address: "127.0.0.1:0".into(),
        agent_address: "127.0.0.1:0".into(),
        log_level: "warn".into(),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let issuer = server.oauth.issuer().to_owned();
    let key = KeyPair::generate(Algorithm::ES256).unwrap().with_kid("interop-1");
    let mut private = key.private_jwk().unwrap();
    private.kid = Some("interop-1".into());
    private.alg = Some("ES256".into());
    let jwk_file = dir.path().join("client.jwk");
    std::fs::write(&jwk_file, private.to_json()).unwrap();
    let mut public = lanyard_core::SigningKey::public_jwk(&key);
    public.kid = Some("interop-1".into());
    let spec = OAuthClientSpec {
        spiffe_ids: Vec::<SpiffeIdPattern>::new(),
        auth_methods: vec![AuthMethod::PrivateKeyJwt],
        jwks: Some(JwkSet { keys: vec![public] }),
        jwks_uri: None,
        grant_types: Vec::new(),
        scopes: vec!["read".into(), "write".into()],
        audiences: vec![LEDGER.into()],
        access_token_ttl: 0,
        require_dpop: false,
        require_certificate_binding: false,
        exchange: Default::default(),
    };
    create_client(&server.state, "interop", spec, SystemClock.now())
        .await
        .unwrap();

    // The access-token keys, as a relying party fetches them from jwks_uri.
    let metadata: Value = reqwest::get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks = reqwest::get(metadata["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let jwks_file = dir.path().join("as.jwks");
    std::fs::write(&jwks_file, jwks).unwrap();

    let python = root().join("tests/interop/.venv/bin/python");
    let node = PathBuf::from("node");
    let jwk = jwk_file.to_str().unwrap();
    let verify = |token: &str| {
        run(
            &node,
            &[
                "tests/interop/node/oauth.mjs",
                "verify-access-token",
                "--jwks",
                jwks_file.to_str().unwrap(),
                "--token",
                token,
                "--issuer",
                &issuer,
                "--audience",
                LEDGER,
            ],
        )
    };
    let common = [
        "--issuer",
        issuer.as_str(),
        "--client-id",
        "interop",
        "--jwk",
        jwk,
        "--scope",
        "read",
    ];

    // Authlib, twice (a fresh assertion each time).
    for _ in 0..2 {
        let mut args = vec!["tests/interop/python/authlib_client.py", "client-credentials"];
        args.extend(common);
        let token = run(&python, &args);
        assert_eq!(token["token_type"], "Bearer", "{token}");
        let claims = verify(token["access_token"].as_str().unwrap());
        assert_eq!(claims["client_id"], "interop", "{claims}");
    }
    // openid-client: bearer, then DPoP-bound.
    let mut args = vec!["tests/interop/node/oauth_client.mjs", "client-credentials"];
    args.extend(common);
    let token = run(&node, &args);
    assert_eq!(
        token["token_type"].as_str().unwrap().to_ascii_lowercase(),
        "bearer",
        "{token}"
    );
    verify(token["access_token"].as_str().unwrap());
    args.push("--dpop");
    let token = run(&node, &args);
    assert_eq!(
        token["token_type"].as_str().unwrap().to_ascii_lowercase(),
        "dpop",
        "{token}"
    );
    let claims = verify(token["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["jkt"], token["dpop_jkt"], "{claims}");
    server.shutdown().await.unwrap();
}
