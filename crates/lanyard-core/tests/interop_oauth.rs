//! OAuth interop with independent JOSE implementations, through `tests/interop/node/oauth.mjs`
//! (panva/jose) and `tests/interop/python/oauth_interop.py` (joserfc):
//!
//! - jose and joserfc verify RFC 9068 access tokens Lanyard issues, requiring
//!   `typ: at+jwt` (a Lanyard-signed copy with `typ: JWT` must fail in both);
//! - jose verifies DPoP proofs Lanyard creates and computes the same `jkt`;
//! - Lanyard verifies DPoP proofs and `private_key_jwt` assertions made by jose and by
//!   joserfc (explicitly typed and untyped).
//!
//! Gated like the other interop tests: without the drivers installed
//! (`scripts/install-interop.sh`) each test prints `skipped:` and passes, unless
//! `LANYARD_INTEROP=1` makes that a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::sync::OnceLock;

use common::{Report, Scratch, ensure_eq, run_program, workspace_root};
use lanyard_core::jose::{decode_unverified, sign_compact};
use lanyard_core::oauth::{
    AccessTokenClaims, Actor, Audience, ClientAssertionPolicy, Confirmation, DpopNonce, DpopPolicy, DpopProofParams,
    DpopRequest, DpopVerifier, PrivateKeyJwtVerifier, Scope, VerificationKeys, create_dpop_proof, issue_access_token,
};
use lanyard_core::{Algorithm, JwkSet, SigningKey};
use lanyard_crypto::KeyPair;
use lanyard_testing::{NOW, key, provider};
use serde_json::{Value, json};

/// `--now`/`--iat` for every driver call.
const ISSUER: &str = "https://as.example.org";
const RS: &str = "https://ledger.example.org";
const CLIENT: &str = "billing";
const TOKEN_ENDPOINT: &str = "https://as.example.org/token";
const RESOURCE_URI: &str = "https://ledger.example.org/entries";
/// The algorithms both drivers allow.
const ALGS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];

const NODE_MODULES: &str = "tests/interop/node/node_modules/jose";
const VENV_PYTHON: &str = "tests/interop/.venv/bin/python";
const INSTALL_HINT: &str = "run scripts/install-interop.sh (tests/interop/README.md)";

/// One driver: jose (Node) or joserfc (Python).
struct Lib {
    name: &'static str,
    program: &'static str,
    script: &'static str,
}

const JOSE: Lib = Lib {
    name: "jose",
    program: "node",
    script: "tests/interop/node/oauth.mjs",
};
const JOSERFC: Lib = Lib {
    name: "joserfc",
    program: VENV_PYTHON,
    script: "tests/interop/python/oauth_interop.py",
};

fn missing_tools() -> &'static str {
    static MISSING: OnceLock<String> = OnceLock::new();
    MISSING.get_or_init(|| {
        let node_runs = Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        let mut missing = Vec::new();
        if !node_runs {
            missing.push("Node 20+ (`node` is not on PATH)");
        }
        for path in [NODE_MODULES, VENV_PYTHON] {
            if !workspace_root().join(path).exists() {
                missing.push(path);
            }
        }
        missing.join(", ")
    })
}

fn interop_enabled(test: &str) -> bool {
    common::interop_enabled(&format!("interop_oauth::{test}"), missing_tools(), INSTALL_HINT)
}

fn run(lib: &Lib, args: &[&str]) -> Result<String, String> {
    run_program(lib.name, lib.program, lib.script, args)
}

fn now_arg() -> String {
    NOW.as_secs().to_string()
}

// ---------------------------------------------------------------------------------------
// Lanyard -> libraries
// ---------------------------------------------------------------------------------------

fn claims(i: usize, cnf: Option<Confirmation>) -> AccessTokenClaims {
    AccessTokenClaims {
        iss: ISSUER.into(),
        sub: CLIENT.into(),
        aud: Audience::new(vec!["https://other.example.org".into(), RS.into()]).unwrap(),
        client_id: CLIENT.into(),
        scope: Some(Scope::parse("entries:read entries:write").unwrap()),
        iat: NOW,
        exp: NOW.plus(300),
        nbf: None,
        jti: format!("at-{i}"),
        cnf,
        act: Some(Actor::new("spiffe://example.org/agent").acting_after(Some(Actor::new("user-7")))),
        extra: Default::default(),
    }
}

/// `lib` verifies `token` as an RFC 9068 access token for [`RS`] from [`ISSUER`].
fn lib_verify_access_token(lib: &Lib, dir: &Scratch, jwks: &JwkSet, token: &str) -> Result<Value, String> {
    let jwks = dir.json("jwks", jwks);
    let now = now_arg();
    let out = run(
        lib,
        &[
            "verify-access-token",
            "--jwks",
            &jwks,
            "--token",
            token,
            "--issuer",
            ISSUER,
            "--audience",
            RS,
            "--now",
            &now,
        ],
    )?;
    serde_json::from_str(&out).map_err(|e| format!("{}: printed {out:?}: {e}", lib.name))
}

#[test]
fn lanyard_access_tokens_verify_in_jose_and_joserfc() {
    if !interop_enabled("lanyard_access_tokens_verify_in_jose_and_joserfc") {
        return;
    }
    let dir = Scratch::new();
    let mut report = Report::default();
    for (i, alg) in ALGS.into_iter().enumerate() {
        let kid = format!("as-{alg}");
        let as_key = key(alg, &kid);
        // A decoy key in the set, so each library must select by kid.
        let jwks = JwkSet {
            keys: vec![key(Algorithm::ES256, "decoy").public_jwk(), as_key.public_jwk()],
        };
        let token = issue_access_token(&as_key, &kid, &claims(i, Some(Confirmation::dpop("jkt-value")))).unwrap();
        let ours = Value::Object(decode_unverified(&token).unwrap().claims);
        // The same claims under typ JWT: RFC 9068 §4 says reject.
        let untyped = sign_compact(Some("JWT"), Some(&kid), &ours, &as_key as &dyn SigningKey).unwrap();
        for lib in [&JOSE, &JOSERFC] {
            let outcome = lib_verify_access_token(lib, &dir, &jwks, &token).and_then(|claims| {
                ensure_eq("claims", &claims, &ours)?;
                match lib_verify_access_token(lib, &dir, &jwks, &untyped) {
                    Ok(_) => Err("accepted an access token with typ JWT".into()),
                    Err(_) => Ok(()),
                }
            });
            report.case(format!("{} verifies a Lanyard {alg} at+jwt", lib.name), outcome);
        }
    }
    report.finish(ALGS.len() * 2);
}

#[test]
fn lanyard_dpop_proofs_verify_in_jose() {
    if !interop_enabled("lanyard_dpop_proofs_verify_in_jose") {
        return;
    }
    let p = provider();
    let mut report = Report::default();
    for alg in ALGS {
        let k = KeyPair::generate(alg).unwrap();
        let ours = k.public_jwk().thumbprint(p.as_ref()).unwrap();
        for (method, uri, token) in [
            ("POST", TOKEN_ENDPOINT, None),
            ("GET", RESOURCE_URI, Some("an-access-token")),
        ] {
            let params = DpopProofParams {
                method,
                uri,
                access_token: token,
                nonce: Some("server-nonce"),
            };
            let proof = create_dpop_proof(&k, &params, NOW, p.as_ref()).unwrap();
            let now = now_arg();
            let mut args = vec![
                "verify-dpop",
                "--proof",
                &proof,
                "--method",
                method,
                "--uri",
                uri,
                "--now",
                &now,
            ];
            if let Some(t) = token {
                args.extend(["--access-token", t]);
            }
            let outcome = run(&JOSE, &args).and_then(|out| {
                let v: Value = serde_json::from_str(&out).map_err(|e| format!("printed {out:?}: {e}"))?;
                ensure_eq("jkt", &v["jkt"], &json!(ours))?;
                ensure_eq("nonce", &v["claims"]["nonce"], &json!("server-nonce"))?;
                ensure_eq("jti", &v["jti"], &decode_unverified(&proof).unwrap().claims["jti"])
            });
            report.case(
                format!("jose verifies a Lanyard {alg} DPoP proof for {method}"),
                outcome,
            );
        }
    }
    report.finish(ALGS.len() * 2);
}

// ---------------------------------------------------------------------------------------
// Libraries -> Lanyard
// ---------------------------------------------------------------------------------------

/// `lib` makes a DPoP proof with `k`; Lanyard verifies it and derives the same `jkt`.
fn lanyard_accepts_lib_dpop(lib: &Lib, dir: &Scratch, k: &KeyPair, token: Option<&str>) -> Result<(), String> {
    let p = provider();
    let jwk = dir.json("private-jwk", &k.private_jwk().unwrap());
    let (method, uri) = if token.is_some() {
        ("GET", RESOURCE_URI)
    } else {
        ("POST", TOKEN_ENDPOINT)
    };
    let iat = now_arg();
    let mut args = vec![
        "sign-dpop",
        "--jwk",
        &jwk,
        "--method",
        method,
        "--uri",
        uri,
        "--iat",
        &iat,
        "--nonce",
        "n-1",
    ];
    if let Some(t) = token {
        args.extend(["--access-token", t]);
    }
    let proof = run(lib, &args)?;
    let request = DpopRequest {
        method,
        uri,
        access_token: token,
        nonce: DpopNonce::Required(&["n-0", "n-1"]),
    };
    let verified = DpopVerifier::new(p.clone(), DpopPolicy::default())
        .verify(&proof, &request, NOW.plus(3))
        .map_err(|e| {
            format!(
                "Lanyard refused the {} proof: {e} ({})\n    proof: {proof}",
                lib.name,
                e.kind()
            )
        })?;
    ensure_eq("jkt", &verified.jkt, &k.public_jwk().thumbprint(p.as_ref()).unwrap())
}

#[test]
fn lib_dpop_proofs_verify_in_lanyard() {
    if !interop_enabled("lib_dpop_proofs_verify_in_lanyard") {
        return;
    }
    let dir = Scratch::new();
    let mut report = Report::default();
    for alg in ALGS {
        let k = key(alg, &format!("dpop-{alg}"));
        for lib in [&JOSE, &JOSERFC] {
            for token in [None, Some("at-123")] {
                let outcome = lanyard_accepts_lib_dpop(lib, &dir, &k, token);
                let place = if token.is_some() { "resource" } else { "token endpoint" };
                report.case(format!("{}-made {alg} DPoP proof at the {place}", lib.name), outcome);
            }
        }
    }
    report.finish(ALGS.len() * 2 * 2);
}

/// `lib` makes a `private_key_jwt` assertion with `k` (typed when `typ` is given); Lanyard
/// verifies it against the client's registered keys.
fn lanyard_accepts_lib_assertion(lib: &Lib, dir: &Scratch, k: &KeyPair, typ: Option<&str>) -> Result<(), String> {
    let p = provider();
    let jwk = dir.json("private-jwk", &k.private_jwk().unwrap());
    let iat = now_arg();
    let mut args = vec![
        "sign-client-assertion",
        "--jwk",
        &jwk,
        "--client-id",
        CLIENT,
        "--audience",
        ISSUER,
        "--iat",
        &iat,
        "--lifetime",
        "60",
    ];
    if let Some(t) = typ {
        args.extend(["--typ", t]);
    }
    let assertion = run(lib, &args)?;
    let keys = VerificationKeys::from_jwks(
        p.as_ref(),
        CLIENT,
        &JwkSet {
            keys: vec![key(Algorithm::ES256, "old").public_jwk(), k.public_jwk()],
        },
    )
    .unwrap();
    let verified = PrivateKeyJwtVerifier::new(ISSUER, ClientAssertionPolicy::default())
        .verify(&assertion, CLIENT, &keys, NOW.plus(1))
        .map_err(|e| {
            format!(
                "Lanyard refused the {} assertion: {e} ({})\n    assertion: {assertion}",
                lib.name,
                e.kind()
            )
        })?;
    ensure_eq("client", verified.client_id.as_str(), CLIENT)?;
    ensure_eq("kid", &verified.kid, &k.public_jwk().kid)
}

#[test]
fn lib_client_assertions_verify_in_lanyard() {
    if !interop_enabled("lib_client_assertions_verify_in_lanyard") {
        return;
    }
    let dir = Scratch::new();
    let mut report = Report::default();
    for alg in ALGS {
        let k = key(alg, &format!("client-{alg}"));
        for lib in [&JOSE, &JOSERFC] {
            for typ in [None, Some("client-authentication+jwt")] {
                let outcome = lanyard_accepts_lib_assertion(lib, &dir, &k, typ);
                report.case(format!("{}-made {alg} assertion with typ {typ:?}", lib.name), outcome);
            }
        }
    }
    report.finish(ALGS.len() * 2 * 2);
}
