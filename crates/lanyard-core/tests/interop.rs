//! Interop with independent JOSE implementations: panva/jose (npm), joserfc and PyJWT
//! (PyPI), driven as subprocesses through the drivers in `tests/interop/` (see its
//! README for the command-line contract).
//!
//! Both directions are covered: WITs, WPTs and JWT-SVIDs that Lanyard issues must verify
//! in every library with the same claims, and tokens every library signs (with keys
//! Lanyard generated and exported as JWKs) must verify in Lanyard. Explicit typing must
//! hold across the boundary, and RFC 7638 thumbprints must agree.
//!
//! The drivers need `npm ci --prefix tests/interop/node` and
//! `python3 -m venv tests/interop/.venv && tests/interop/.venv/bin/pip install -r
//! tests/interop/python/requirements.txt`. When they are missing, each test prints a
//! `skipped:` line and passes, unless `LANYARD_INTEROP=1` is set: then a missing tool
//! fails the test, so CI cannot skip interop by accident.
//!
//! Every check in a test runs before the test fails, and the failure lists each
//! library/algorithm case that broke together with the library's own error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Report, Scratch, ensure_eq, run_program, workspace_root};

use std::process::Command;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_core::jose::decode_unverified;
use lanyard_core::{
    Algorithm, Error, InMemoryReplayCache, Jwk, JwkSet, JwtSvidIssuer, JwtSvidPolicy, JwtSvidVerifier, KeyUse,
    ProofTokens, SigningKey, SpiffeId, TokenType, TrustStore, WitIssuer, WitPolicy, WitVerifier, WorkloadId, WptParams,
    WptPolicy, WptVerifier, create_wpt,
};
use lanyard_crypto::KeyPair;
use serde_json::{Map, Value, json};
// NOW: the verification time for every token here; passed to the drivers as `--now`.
use lanyard_testing::NOW;

const TRUST_DOMAIN: &str = "example.org";
/// The audience of the WPTs (a target URI without query).
const WPT_AUDIENCE: &str = "https://ledger.example.org/entries";
/// The audience of the JWT-SVIDs.
const SVID_AUDIENCE: &str = "spiffe://example.org/ledger";

/// The WIT+WPT algorithms the drivers allow (and so the ones exercised here).
const WIT_ALGS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];
/// The subset JWT-SVID.md allows (no EdDSA).
const SVID_ALGS: [Algorithm; 3] = [Algorithm::ES256, Algorithm::RS256, Algorithm::PS256];

/// One independent JOSE library and how to run its driver from the workspace root.
struct Lib {
    name: &'static str,
    /// The interpreter, relative to the workspace root when it contains a `/`.
    program: &'static str,
    /// The driver script, relative to the workspace root.
    script: &'static str,
    /// The Python driver's `--lib` value.
    lib_flag: Option<&'static str>,
    /// Whether the library has an RFC 7638 thumbprint API (PyJWT has none).
    thumbprint: bool,
}

const NODE_MODULES: &str = "tests/interop/node/node_modules/jose";
const VENV_PYTHON: &str = "tests/interop/.venv/bin/python";

const LIBS: [Lib; 3] = [
    Lib {
        name: "jose",
        program: "node",
        script: "tests/interop/node/interop.mjs",
        lib_flag: None,
        thumbprint: true,
    },
    Lib {
        name: "joserfc",
        program: VENV_PYTHON,
        script: "tests/interop/python/interop.py",
        lib_flag: Some("joserfc"),
        thumbprint: true,
    },
    Lib {
        name: "pyjwt",
        program: VENV_PYTHON,
        script: "tests/interop/python/interop.py",
        lib_flag: Some("pyjwt"),
        thumbprint: false,
    },
];

// ---------------------------------------------------------------------------------------
// Gating
// ---------------------------------------------------------------------------------------

/// How to install the drivers, for the skip and failure messages.
const INSTALL_HINT: &str = "run `npm ci --prefix tests/interop/node` and `python3 -m venv tests/interop/.venv && \
     tests/interop/.venv/bin/pip install -r tests/interop/python/requirements.txt` (tests/interop/README.md)";

/// What the drivers need that is not installed (empty when everything is there).
fn missing_tools() -> &'static [String] {
    static MISSING: OnceLock<Vec<String>> = OnceLock::new();
    MISSING.get_or_init(|| {
        let root = workspace_root();
        let node_runs = Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        let mut missing = Vec::new();
        if !node_runs {
            missing.push("Node 20+ (`node` is not on PATH)".to_owned());
        }
        for path in [NODE_MODULES, VENV_PYTHON] {
            if !root.join(path).exists() {
                missing.push(path.to_owned());
            }
        }
        missing
    })
}

/// Whether `test` should run ([`common::interop_enabled`]).
fn interop_enabled(test: &str) -> bool {
    common::interop_enabled(&format!("interop::{test}"), &missing_tools().join(", "), INSTALL_HINT)
}

// ---------------------------------------------------------------------------------------
// Drivers
// ---------------------------------------------------------------------------------------

/// Runs `lib`'s driver with `command` and `args` from the workspace root: the trimmed
/// stdout on exit status 0, otherwise the driver's stderr (its `error: ...` line).
fn run_driver(lib: &Lib, command: &str, args: &[&str]) -> Result<String, String> {
    let mut all = vec![command];
    if let Some(flag) = lib.lib_flag {
        all.extend(["--lib", flag]);
    }
    all.extend_from_slice(args);
    run_program(lib.name, lib.program, lib.script, &all)
}

/// `lib` verifies `token` against `keys` with `--typ typ` (and `--audience`) at [`NOW`],
/// returning the claims it printed.
fn lib_verify(
    lib: &Lib,
    dir: &Scratch,
    keys: &[Jwk],
    token: &str,
    typ: &str,
    audience: Option<&str>,
) -> Result<Value, String> {
    let jwks = dir.json("jwks", &JwkSet { keys: keys.to_vec() });
    let now = NOW.as_secs().to_string();
    let mut args = vec!["--jwks", &jwks, "--token", token, "--typ", typ, "--now", &now];
    if let Some(aud) = audience {
        args.extend(["--audience", aud]);
    }
    let stdout = run_driver(lib, "verify", &args)?;
    match serde_json::from_str(&stdout) {
        Ok(claims @ Value::Object(_)) => Ok(claims),
        _ => Err(format!("{}: verify printed {stdout:?}, not a claims object", lib.name)),
    }
}

/// `lib` signs `claims` with the private JWK `key` (alg and kid from the JWK) under `typ`.
fn lib_sign(lib: &Lib, dir: &Scratch, key: &KeyPair, claims: &Value, typ: &str) -> Result<String, String> {
    let jwk = dir.json("private-jwk", &key.private_jwk().unwrap());
    let claims = dir.json("claims", claims);
    run_driver(lib, "sign", &["--jwk", &jwk, "--claims", &claims, "--typ", typ])
}

/// `lib`'s RFC 7638 SHA-256 thumbprint of `jwk`.
fn lib_thumbprint(lib: &Lib, dir: &Scratch, jwk: &Jwk) -> Result<String, String> {
    run_driver(lib, "thumbprint", &["--jwk", &dir.json("jwk", jwk)])
}

// ---------------------------------------------------------------------------------------
// Lanyard side
// ---------------------------------------------------------------------------------------

fn key(alg: Algorithm, kid: Option<&str>) -> KeyPair {
    let key = KeyPair::generate(alg).unwrap();
    match kid {
        Some(kid) => key.with_kid(kid),
        None => key,
    }
}

/// An issuer key for `alg` whose kid names its use and algorithm.
fn issuer_key(alg: Algorithm, usage: &str) -> KeyPair {
    key(alg, Some(&format!("{usage}-{alg}")))
}

/// A trust store trusting `jwk` for `key_use` in [`TRUST_DOMAIN`].
fn store_with(key_use: KeyUse, jwk: &Jwk) -> Arc<TrustStore> {
    let store = Arc::new(TrustStore::new(lanyard_crypto::provider()));
    store.add_key(TRUST_DOMAIN, key_use, jwk).unwrap();
    store
}

/// A WIT subject, alternating between SPIFFE IDs and WIMSE identifiers.
fn wit_subject(i: usize, who: &str, alg: Algorithm) -> WorkloadId {
    let scheme = if i.is_multiple_of(2) { "spiffe" } else { "wimse" };
    WorkloadId::parse(&format!("{scheme}://{TRUST_DOMAIN}/interop/{who}/{alg}")).unwrap()
}

fn svid_subject(who: &str, alg: Algorithm) -> SpiffeId {
    SpiffeId::parse(&format!("spiffe://{TRUST_DOMAIN}/interop/{who}/{alg}")).unwrap()
}

/// `wth`: base64url(SHA-256(WIT)).
fn wth(wit: &str) -> String {
    URL_SAFE_NO_PAD.encode(lanyard_crypto::provider().sha256(wit.as_bytes()))
}

fn random_jti() -> String {
    let mut jti = [0u8; 16];
    lanyard_crypto::provider().fill_random(&mut jti).unwrap();
    URL_SAFE_NO_PAD.encode(jti)
}

fn wit_verifier(store: Arc<TrustStore>) -> WitVerifier {
    WitVerifier::new(store, WitPolicy::wimse())
}

fn wpt_verifier(store: Arc<TrustStore>) -> WptVerifier {
    WptVerifier::new(
        wit_verifier(store),
        WptPolicy::default(),
        Arc::new(InMemoryReplayCache::default()),
    )
}

/// Maps a Lanyard error to a case failure naming the token and the error kind.
fn rejected_by_lanyard(what: &'static str) -> impl Fn(Error) -> String {
    move |e| format!("Lanyard rejected the {what}: {e} (kind {})", e.kind())
}

fn as_value(jwk: &Jwk) -> Value {
    serde_json::to_value(jwk).unwrap()
}

// ---------------------------------------------------------------------------------------
// Lanyard -> libraries
// ---------------------------------------------------------------------------------------

/// Checks that `lib` accepts a Lanyard WIT and reports exactly the claims Lanyard does.
fn lib_accepts_lanyard_wit(
    lib: &Lib,
    dir: &Scratch,
    keys: &[Jwk],
    wit: &str,
    workload: &Jwk,
    lanyard_claims: &Map<String, Value>,
) -> Result<(), String> {
    let claims = lib_verify(lib, dir, keys, wit, "wit+jwt", None)?;
    let ours = Value::Object(lanyard_claims.clone());
    ensure_eq("sub", &claims["sub"], &ours["sub"])?;
    ensure_eq("exp", &claims["exp"], &json!(NOW.plus(3600).as_secs()))?;
    ensure_eq("cnf.jwk", &claims["cnf"]["jwk"], &as_value(workload))?;
    ensure_eq("claims", &claims, &ours)
}

/// Appends the token to a failure message, so a discrepancy can be replayed by hand.
fn with_token(token: &str) -> impl Fn(String) -> String + '_ {
    move |e| format!("{e}\n    token: {token}")
}

#[test]
fn lanyard_wits_verify_in_every_lib() {
    if !interop_enabled("lanyard_wits_verify_in_every_lib") {
        return;
    }
    let dir = Scratch::new();
    // Another trusted key in the set, so each library must pick the issuer key by kid.
    let decoy = issuer_key(Algorithm::ES256, "decoy").public_jwk();
    let mut report = Report::default();
    for (i, alg) in WIT_ALGS.into_iter().enumerate() {
        let issuer = issuer_key(alg, "wit");
        let jwk = issuer.public_jwk();
        // The workload key's type differs from the issuer's, so cnf.jwk covers every type.
        let workload = key(WIT_ALGS[(i + 1) % WIT_ALGS.len()], None).public_jwk();
        let issuer = WitIssuer::new(
            lanyard_crypto::provider(),
            Arc::new(issuer),
            jwk.kid.clone(),
            Some("https://issuer.example.org".into()),
            3600,
        );
        let wit = issuer.issue(&wit_subject(i, "lanyard", alg), &workload, NOW).unwrap();
        let ours = wit_verifier(store_with(KeyUse::WitSvid, &jwk))
            .verify(&wit, NOW)
            .unwrap();
        let keys = [decoy.clone(), jwk];
        for lib in &LIBS {
            let outcome = lib_accepts_lanyard_wit(lib, &dir, &keys, &wit, &workload, &ours.claims);
            report.case(
                format!("{} verifies a Lanyard {alg} WIT", lib.name),
                outcome.map_err(with_token(&wit)),
            );
        }
    }
    report.finish(WIT_ALGS.len() * LIBS.len());
}

/// Checks that `lib` accepts a Lanyard JWT-SVID for its audience with Lanyard's claims.
fn lib_accepts_lanyard_svid(lib: &Lib, dir: &Scratch, jwk: &Jwk, svid: &str, sub: &SpiffeId) -> Result<(), String> {
    let claims = lib_verify(lib, dir, std::slice::from_ref(jwk), svid, "JWT", Some(SVID_AUDIENCE))?;
    ensure_eq("sub", &claims["sub"], &json!(sub.as_str()))?;
    ensure_eq("aud", &claims["aud"], &json!(SVID_AUDIENCE))?;
    ensure_eq("exp", &claims["exp"], &json!(NOW.plus(300).as_secs()))?;
    ensure_eq("iat", &claims["iat"], &json!(NOW.as_secs()))
}

#[test]
fn lanyard_jwt_svids_verify_in_every_lib() {
    if !interop_enabled("lanyard_jwt_svids_verify_in_every_lib") {
        return;
    }
    let dir = Scratch::new();
    let mut report = Report::default();
    for alg in SVID_ALGS {
        let issuer = issuer_key(alg, "svid");
        let jwk = issuer.public_jwk();
        let kid = jwk.kid.clone().unwrap();
        let sub = svid_subject("lanyard", alg);
        let svid = JwtSvidIssuer::new(Arc::new(issuer), kid, None)
            .unwrap()
            .issue(&sub, SVID_AUDIENCE, NOW, 300)
            .unwrap();
        for lib in &LIBS {
            let outcome = lib_accepts_lanyard_svid(lib, &dir, &jwk, &svid, &sub);
            report.case(
                format!("{} verifies a Lanyard {alg} JWT-SVID", lib.name),
                outcome.map_err(with_token(&svid)),
            );
        }
    }
    report.finish(SVID_ALGS.len() * LIBS.len());
}

/// Checks that `lib` accepts a Lanyard WPT against the WIT's `cnf.jwk` alone.
fn lib_accepts_lanyard_wpt(lib: &Lib, dir: &Scratch, wit: &str, wpt: &str) -> Result<(), String> {
    let cnf: Jwk = serde_json::from_value(decode_unverified(wit).unwrap().claims["cnf"]["jwk"].clone()).unwrap();
    let claims = lib_verify(lib, dir, &[cnf], wpt, "wpt+jwt", Some(WPT_AUDIENCE))?;
    let ours = Value::Object(decode_unverified(wpt).unwrap().claims);
    ensure_eq("wth", &claims["wth"], &json!(wth(wit)))?;
    ensure_eq("aud", &claims["aud"], &json!(WPT_AUDIENCE))?;
    ensure_eq("exp", &claims["exp"], &json!(NOW.plus(60).as_secs()))?;
    ensure_eq("claims", &claims, &ours)
}

#[test]
fn lanyard_wpts_verify_in_every_lib() {
    if !interop_enabled("lanyard_wpts_verify_in_every_lib") {
        return;
    }
    let dir = Scratch::new();
    let provider = lanyard_crypto::provider();
    let issuer = issuer_key(Algorithm::ES256, "wit");
    let store = store_with(KeyUse::WitSvid, &issuer.public_jwk());
    let issuer = WitIssuer::new(provider.clone(), Arc::new(issuer), Some("wit-ES256".into()), None, 3600);
    let mut report = Report::default();
    for (i, alg) in WIT_ALGS.into_iter().enumerate() {
        let workload = key(alg, None);
        let wit = issuer
            .issue(&wit_subject(i, "lanyard-wpt", alg), &workload.public_jwk(), NOW)
            .unwrap();
        let params = WptParams {
            wit: &wit,
            audience: WPT_AUDIENCE,
            lifetime: 60,
            ..Default::default()
        };
        let wpt = create_wpt(&workload, &params, NOW, provider.as_ref()).unwrap();
        // Lanyard accepts its own pair, so a library's rejection is a real disagreement.
        let tokens = ProofTokens {
            wit: &wit,
            wpt: &wpt,
            ..Default::default()
        };
        wpt_verifier(store.clone()).verify(&tokens, WPT_AUDIENCE, NOW).unwrap();
        for lib in &LIBS {
            let outcome = lib_accepts_lanyard_wpt(lib, &dir, &wit, &wpt);
            report.case(
                format!("{} verifies a Lanyard {alg} WPT", lib.name),
                outcome.map_err(with_token(&wpt)),
            );
        }
    }
    report.finish(WIT_ALGS.len() * LIBS.len());
}

// ---------------------------------------------------------------------------------------
// Libraries -> Lanyard
// ---------------------------------------------------------------------------------------

/// The claims of a WIT for `sub` binding `workload`, valid for ten minutes from [`NOW`].
fn wit_claims(sub: &WorkloadId, workload: &KeyPair) -> Value {
    json!({
        "sub": sub.as_str(),
        "exp": NOW.plus(600).as_secs(),
        "iat": NOW.as_secs(),
        "cnf": { "jwk": workload.public_jwk() },
    })
}

/// `lib` signs a WIT with `issuer` and then a WPT for it with `workload`; Lanyard must
/// accept the WIT alone and the pair.
fn lanyard_accepts_lib_wit_and_wpt(
    lib: &Lib,
    dir: &Scratch,
    sub: &WorkloadId,
    issuer: &KeyPair,
    workload: &KeyPair,
) -> Result<(), String> {
    let wit = lib_sign(lib, dir, issuer, &wit_claims(sub, workload), "wit+jwt")?;
    let store = store_with(KeyUse::WitSvid, &issuer.public_jwk());
    let verified = wit_verifier(store.clone())
        .verify(&wit, NOW)
        .map_err(rejected_by_lanyard("WIT"))
        .map_err(with_token(&wit))?;
    ensure_eq("sub", &verified.sub, sub)?;
    ensure_eq("exp", &verified.exp, &NOW.plus(600))?;
    ensure_eq("cnf.jwk", &verified.cnf_jwk, &workload.public_jwk())?;
    ensure_eq("kid", &verified.kid, &issuer.public_jwk().kid)?;

    let jti = random_jti();
    let claims = json!({
        "aud": WPT_AUDIENCE,
        "exp": NOW.plus(60).as_secs(),
        "jti": jti,
        "wth": wth(&wit),
    });
    let wpt = lib_sign(lib, dir, workload, &claims, "wpt+jwt")?;
    let tokens = ProofTokens {
        wit: &wit,
        wpt: &wpt,
        ..Default::default()
    };
    let proof = wpt_verifier(store)
        .verify(&tokens, WPT_AUDIENCE, NOW)
        .map_err(rejected_by_lanyard("WIT+WPT pair"))
        .map_err(with_token(&wpt))?;
    ensure_eq("WPT jti", proof.wpt.jti.as_str(), jti.as_str())?;
    ensure_eq("WPT aud", proof.wpt.aud.as_slice(), &[WPT_AUDIENCE.to_owned()])?;
    ensure_eq("caller", &proof.wit.sub, sub)
}

#[test]
fn lib_signed_wits_and_wpts_verify_in_lanyard() {
    if !interop_enabled("lib_signed_wits_and_wpts_verify_in_lanyard") {
        return;
    }
    let dir = Scratch::new();
    let mut report = Report::default();
    for (i, alg) in WIT_ALGS.into_iter().enumerate() {
        let issuer = issuer_key(alg, "wit");
        // A different key type for the proof, so every library signs WPTs with all five.
        let pop_alg = WIT_ALGS[(i + 2) % WIT_ALGS.len()];
        let workload = key(pop_alg, None);
        for lib in &LIBS {
            let sub = wit_subject(i, lib.name, alg);
            let outcome = lanyard_accepts_lib_wit_and_wpt(lib, &dir, &sub, &issuer, &workload);
            report.case(format!("{}-signed {alg} WIT with a {pop_alg} WPT", lib.name), outcome);
        }
    }
    report.finish(WIT_ALGS.len() * LIBS.len());
}

/// `lib` signs a JWT-SVID with `issuer`; Lanyard's JWT-SVID verifier must accept it.
fn lanyard_accepts_lib_svid(lib: &Lib, dir: &Scratch, issuer: &KeyPair, sub: &SpiffeId) -> Result<(), String> {
    let claims = json!({
        "sub": sub.as_str(),
        "aud": SVID_AUDIENCE,
        "exp": NOW.plus(300).as_secs(),
        "iat": NOW.as_secs(),
    });
    let svid = lib_sign(lib, dir, issuer, &claims, "JWT")?;
    let verifier = JwtSvidVerifier::new(
        store_with(KeyUse::JwtSvid, &issuer.public_jwk()),
        JwtSvidPolicy::default(),
    );
    let verified = verifier
        .verify(&svid, SVID_AUDIENCE, NOW)
        .map_err(rejected_by_lanyard("JWT-SVID"))
        .map_err(with_token(&svid))?;
    ensure_eq("sub", &verified.sub, sub)?;
    ensure_eq("aud", verified.aud.as_slice(), &[SVID_AUDIENCE.to_owned()])?;
    ensure_eq("kid", &verified.kid, &issuer.public_jwk().kid)
}

#[test]
fn lib_signed_jwt_svids_verify_in_lanyard() {
    if !interop_enabled("lib_signed_jwt_svids_verify_in_lanyard") {
        return;
    }
    let dir = Scratch::new();
    let mut report = Report::default();
    for alg in SVID_ALGS {
        let issuer = issuer_key(alg, "svid");
        for lib in &LIBS {
            let outcome = lanyard_accepts_lib_svid(lib, &dir, &issuer, &svid_subject(lib.name, alg));
            report.case(format!("{}-signed {alg} JWT-SVID", lib.name), outcome);
        }
    }
    report.finish(SVID_ALGS.len() * LIBS.len());
}

// ---------------------------------------------------------------------------------------
// Explicit typing and audience across the boundary
// ---------------------------------------------------------------------------------------

/// `lib` signs otherwise valid WIT claims under `typ`; Lanyard's WIT verifier must refuse
/// the token as `wrong_typ` (and nothing else).
/// A generic or unknown `typ` is `wrong_typ`; the `typ` of another known token type is
/// `typ_confusion` (lanyard_core::jose::TypRule).
fn lanyard_refuses_lib_wit_typed(lib: &Lib, dir: &Scratch, alg: Algorithm, typ: &str) -> Result<(), String> {
    let issuer = issuer_key(alg, "wit");
    let workload = key(Algorithm::ES256, None);
    let sub = wit_subject(0, lib.name, alg);
    let token = lib_sign(lib, dir, &issuer, &wit_claims(&sub, &workload), typ)?;
    let header = decode_unverified(&token).map_err(|e| format!("{}: signed a malformed token: {e}", lib.name))?;
    ensure_eq("typ header", &header.header.get("typ"), &Some(&json!(typ)))?;
    match wit_verifier(store_with(KeyUse::WitSvid, &issuer.public_jwk())).verify(&token, NOW) {
        Ok(_) => Err(format!("Lanyard accepted a typ {typ:?} token as a WIT")),
        Err(e) => {
            let want = if TokenType::from_typ(typ).is_some() {
                "typ_confusion"
            } else {
                "wrong_typ"
            };
            ensure_eq("error kind", e.kind(), want)
        }
    }
    .map_err(with_token(&token))
}

#[test]
fn lanyard_refuses_lib_signed_wits_with_another_typ() {
    if !interop_enabled("lanyard_refuses_lib_signed_wits_with_another_typ") {
        return;
    }
    let dir = Scratch::new();
    let mut report = Report::default();
    let typs = ["JWT", "wpt+jwt", "application/at+jwt"];
    for (lib, alg) in LIBS.iter().zip(WIT_ALGS) {
        for typ in typs {
            let outcome = lanyard_refuses_lib_wit_typed(lib, &dir, alg, typ);
            report.case(format!("{}-signed {alg} WIT claims with typ {typ}", lib.name), outcome);
        }
    }
    report.finish(LIBS.len() * typs.len());
}

/// `lib` must accept `token` with `typ` (and `audience`) and reject every variation in
/// `wrong`, naming the mismatch in its error.
fn lib_accepts_only(
    lib: &Lib,
    dir: &Scratch,
    jwk: &Jwk,
    token: &str,
    (typ, audience): (&str, Option<&str>),
    wrong: &[(&str, Option<&str>)],
) -> Result<(), String> {
    let keys = std::slice::from_ref(jwk);
    lib_verify(lib, dir, keys, token, typ, audience)?;
    for &(bad_typ, bad_aud) in wrong {
        match lib_verify(lib, dir, keys, token, bad_typ, bad_aud) {
            Ok(_) => return Err(format!("accepted with --typ {bad_typ} --audience {bad_aud:?}")),
            Err(e) if bad_typ != typ && !e.contains("typ") => return Err(format!("rejected, not for typ: {e}")),
            Err(e) if bad_aud != audience && !e.to_lowercase().contains("aud") => {
                return Err(format!("rejected, not for aud: {e}"));
            }
            Err(_) => {}
        }
    }
    Ok(())
}

#[test]
fn libs_refuse_lanyard_tokens_with_wrong_typ_or_audience() {
    if !interop_enabled("libs_refuse_lanyard_tokens_with_wrong_typ_or_audience") {
        return;
    }
    let dir = Scratch::new();
    let issuer = issuer_key(Algorithm::ES256, "wit");
    let wit_jwk = issuer.public_jwk();
    let wit = WitIssuer::new(
        lanyard_crypto::provider(),
        Arc::new(issuer),
        wit_jwk.kid.clone(),
        None,
        3600,
    )
    .issue(
        &wit_subject(0, "lanyard", Algorithm::ES256),
        &key(Algorithm::ES256, None).public_jwk(),
        NOW,
    )
    .unwrap();
    let issuer = issuer_key(Algorithm::ES256, "svid");
    let svid_jwk = issuer.public_jwk();
    let svid = JwtSvidIssuer::new(Arc::new(issuer), "svid-ES256", None)
        .unwrap()
        .issue(&svid_subject("lanyard", Algorithm::ES256), SVID_AUDIENCE, NOW, 300)
        .unwrap();
    let other_aud = Some("spiffe://example.org/someone-else");
    let mut report = Report::default();
    for lib in &LIBS {
        let wrong = [("JWT", None), ("wpt+jwt", None), ("WIT+JWT", None)];
        let outcome = lib_accepts_only(lib, &dir, &wit_jwk, &wit, ("wit+jwt", None), &wrong);
        report.case(
            format!("{}: Lanyard WIT under another typ", lib.name),
            outcome.map_err(with_token(&wit)),
        );
        let right = ("JWT", Some(SVID_AUDIENCE));
        let wrong = [("JWT", other_aud), ("wit+jwt", Some(SVID_AUDIENCE))];
        let outcome = lib_accepts_only(lib, &dir, &svid_jwk, &svid, right, &wrong);
        report.case(
            format!("{}: Lanyard JWT-SVID for another audience", lib.name),
            outcome.map_err(with_token(&svid)),
        );
    }
    report.finish(LIBS.len() * 2);
}

// ---------------------------------------------------------------------------------------
// RFC 7638 thumbprints
// ---------------------------------------------------------------------------------------

/// The RFC 7638 §3.1 example key and its published thumbprint.
const RFC7638_KEY: &str = r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#;
const RFC7638_THUMBPRINT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

/// `lib`'s thumbprint of every form of `jwk` equals Lanyard's.
fn lib_thumbprints_agree(lib: &Lib, dir: &Scratch, forms: &[Jwk], ours: &str) -> Result<(), String> {
    for jwk in forms {
        let form = if jwk.is_private() { "private" } else { "public" };
        ensure_eq(
            &format!("{form} JWK thumbprint"),
            lib_thumbprint(lib, dir, jwk)?.as_str(),
            ours,
        )?;
    }
    Ok(())
}

#[test]
fn thumbprints_match_jose_and_joserfc() {
    if !interop_enabled("thumbprints_match_jose_and_joserfc") {
        return;
    }
    let dir = Scratch::new();
    let provider = lanyard_crypto::provider();
    let rfc = Jwk::from_json(RFC7638_KEY.as_bytes()).unwrap();
    assert_eq!(rfc.thumbprint(provider.as_ref()).unwrap(), RFC7638_THUMBPRINT);
    // Each key type and curve, public and private (private members must not count).
    let mut keys = vec![("RFC 7638 example".to_owned(), vec![rfc])];
    for alg in [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
        Algorithm::RS256,
    ] {
        let pair = issuer_key(alg, "tp");
        keys.push((
            format!("{alg} key"),
            vec![pair.public_jwk(), pair.private_jwk().unwrap()],
        ));
    }
    let libs: Vec<&Lib> = LIBS.iter().filter(|l| l.thumbprint).collect();
    let mut report = Report::default();
    for (name, forms) in &keys {
        let ours = forms[0].thumbprint(provider.as_ref()).unwrap();
        for lib in &libs {
            let outcome = lib_thumbprints_agree(lib, &dir, forms, &ours);
            report.case(format!("{} thumbprint of the {name}", lib.name), outcome);
        }
    }
    report.finish(keys.len() * libs.len());
}
