//! Interop of Lanyard's HTTP Message Signatures (the RFC 9421 profile of
//! draft-ietf-wimse-http-signature-07: `@method`, `@path`, `@query`, with `@query` `?` when
//! the request has none) with an independent RFC 9421 implementation:
//! pyauth's `http-message-signatures` (PyPI), driven as a subprocess through
//! `tests/interop/python/httpsig_interop.py` (see `tests/interop/README.md`).
//!
//! For Ed25519 and ECDSA P-256, in both directions:
//! - requests Lanyard signs (a GET, and a POST with a JSON body and `Content-Digest`)
//!   verify in the library, which rebuilds the same signature base;
//! - requests the library signs verify in Lanyard. With the WIMSE parameters (no
//!   `keyid`/`alg`, plus `wimse-aud`) they pass Lanyard's full profile check. Signed the
//!   library's own way (it always adds `keyid` and cannot add `wimse-aud`) they verify on
//!   the shared RFC 9421 core (same base, same signature), and the profile check rejects
//!   them for `keyid` (`signature_params`);
//! - a request whose method, target or body changed after signing fails on both sides.
//!
//! The driver needs `python3 -m venv tests/interop/.venv && tests/interop/.venv/bin/pip
//! install -r tests/interop/python/requirements.txt`. When it is missing, each test
//! prints a `skipped:` line and passes, unless `LANYARD_INTEROP=1` is set: then a missing
//! tool fails the test, so CI cannot skip interop by accident. Every case in a test runs
//! before the test fails, and the failure lists each case that broke.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Report, Scratch, ensure_eq, run_program, workspace_root};
use std::fmt::Debug;

use std::process::Command;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lanyard_core::httpsig::{
    self, HttpSigPolicy, HttpSigVerifier, RequestParts, RequestSigning, SignatureCheck, SignatureInfo,
    TargetComponents, sign_request, verify_request_signature,
};
use lanyard_core::{Algorithm, Error, InMemoryReplayCache, Jwk, SigningKey, WorkloadId};
use lanyard_crypto::KeyPair;
use lanyard_testing::{NOW, WitWorld};
use serde_json::{Value, json};

/// Signing and verification time; passed to the driver as `--created` / `--now`.
const TRUST_DOMAIN: &str = "example.org";
const AUTHORITY: &str = "ledger.example.org";
/// `wimse-aud`: the target URI without query.
const AUDIENCE: &str = "https://ledger.example.org/entries";
const LIFETIME: u64 = 60;
/// The algorithms RFC 9421 and the profile share: `ed25519` and `ecdsa-p256-sha256`.
const ALGS: [Algorithm; 2] = [Algorithm::EdDSA, Algorithm::ES256];

const VENV_PYTHON: &str = "tests/interop/.venv/bin/python";
const DRIVER: &str = "tests/interop/python/httpsig_interop.py";
const INSTALL_HINT: &str = "run `python3 -m venv tests/interop/.venv && tests/interop/.venv/bin/pip install -r \
     tests/interop/python/requirements.txt` (tests/interop/README.md)";

// ---------------------------------------------------------------------------------------
// Gating
// ---------------------------------------------------------------------------------------

/// What the driver needs that is not installed (empty when everything is there).
fn missing_tools() -> &'static str {
    static MISSING: OnceLock<String> = OnceLock::new();
    MISSING.get_or_init(|| {
        let python = workspace_root().join(VENV_PYTHON);
        if !python.exists() {
            return VENV_PYTHON.to_owned();
        }
        let imports = Command::new(&python)
            .args(["-c", "import http_message_signatures"])
            .output()
            .is_ok_and(|o| o.status.success());
        if imports {
            String::new()
        } else {
            "the http-message-signatures package in tests/interop/.venv".to_owned()
        }
    })
}

/// Whether `test` should run ([`common::interop_enabled`]).
fn interop_enabled(test: &str) -> bool {
    common::interop_enabled(&format!("interop_httpsig::{test}"), missing_tools(), INSTALL_HINT)
}

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

/// An owned HTTP request, as Lanyard and the driver both see it.
#[derive(Clone, Debug)]
struct Message {
    method: String,
    /// Origin form: `/path?query`.
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Message {
    fn new(method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Message {
        Message {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.to_owned(),
        }
    }

    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            target: &self.target,
            authority: Some(AUTHORITY),
            scheme: Some("https"),
            headers: self.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect(),
        }
    }

    fn body(&self) -> &[u8] {
        self.body.as_bytes()
    }

    /// The driver's request file: `{method, url, headers, body}`.
    fn to_json(&self) -> Value {
        json!({
            "method": self.method,
            "url": format!("https://{AUTHORITY}{}", self.target),
            "headers": self.headers.iter().map(|(n, v)| [n, v]).collect::<Vec<_>>(),
            "body": self.body,
        })
    }

    /// The message with `headers` as returned by a signer, replacing fields of the same name.
    fn with_headers<'h>(&self, headers: impl IntoIterator<Item = (&'h str, &'h str)> + Clone) -> Message {
        let mut out = self.clone();
        out.headers
            .retain(|(n, _)| !headers.clone().into_iter().any(|(s, _)| s.eq_ignore_ascii_case(n)));
        out.headers
            .extend(headers.into_iter().map(|(n, v)| (n.to_owned(), v.to_owned())));
        out
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The bytes of the `Signature` entry labelled `wimse` (the only one here).
    fn signature(&self) -> Result<Vec<u8>, String> {
        let field = self.header("Signature").ok_or("no Signature field")?;
        let b64 = field
            .strip_prefix("wimse=:")
            .and_then(|s| s.strip_suffix(':'))
            .ok_or_else(|| format!("Signature {field:?} is not wimse=:<base64>:"))?;
        STANDARD.decode(b64).map_err(|e| format!("Signature {field:?}: {e}"))
    }

    fn tampered(&self, what: &str) -> Message {
        let mut out = self.clone();
        match what {
            "method" => out.method = if self.method == "GET" { "DELETE" } else { "PUT" }.to_owned(),
            "target" => out.target = format!("{}x", self.target),
            "body" => out.body = r#"{"amount": 1000000, "memo": "coffee"}"#.to_owned(),
            other => unreachable!("no tampering {other}"),
        }
        out
    }
}

/// The two requests each direction signs: a GET covering a `Txn-Token`, and a POST with
/// a JSON body (so `Content-Type` and `Content-Digest` are covered) asking for a signed
/// response (`wimse-sign-response`, Lanyard only). Neither carries the WIT yet.
fn requests() -> [(&'static str, Message, bool); 2] {
    [
        (
            "GET",
            Message::new(
                "GET",
                "/entries?id=7&fields=amount",
                &[("Accept", "application/json"), ("Txn-Token", "eyJ.txn.token")],
                "",
            ),
            false,
        ),
        (
            "POST",
            Message::new(
                "POST",
                "/entries",
                &[("Content-Type", "application/json")],
                r#"{"amount": 10, "memo": "coffee"}"#,
            ),
            true,
        ),
    ]
}

// ---------------------------------------------------------------------------------------
// Lanyard side
// ---------------------------------------------------------------------------------------

/// A trust domain with a WIT issuer, mirroring `tests/httpsig.rs`.
struct World(WitWorld);

impl std::ops::Deref for World {
    type Target = WitWorld;

    fn deref(&self) -> &WitWorld {
        &self.0
    }
}

/// A workload: its key (with a `kid`, which the library's own signing mode needs) and WIT.
struct Party {
    alg: Algorithm,
    key: KeyPair,
    wit: String,
}

impl World {
    fn new() -> World {
        World(WitWorld::new(TRUST_DOMAIN, Algorithm::ES256, Some("wit-issuer")))
    }

    fn party(&self, name: &str, alg: Algorithm) -> Party {
        let key = KeyPair::generate(alg).unwrap().with_kid(format!("{name}-{alg}"));
        let id = WorkloadId::parse(&format!("spiffe://{TRUST_DOMAIN}/interop/{name}/{alg}")).unwrap();
        let wit = self.issuer.issue(&id, &key.public_jwk(), NOW).unwrap();
        Party { alg, key, wit }
    }

    /// The full profile check of `msg`'s signature, with the key of the WIT it carries.
    fn verify(&self, msg: &Message) -> Result<SignatureInfo, Error> {
        let wit = msg
            .header("Workload-Identity-Token")
            .expect("the request carries a WIT");
        let wit = self.wit_verifier().verify(wit, NOW)?;
        let policy = HttpSigPolicy::default();
        let check = SignatureCheck {
            key: wit.pop_key().as_ref(),
            policy: &policy,
            now: NOW,
            provider: self.provider.as_ref(),
        };
        verify_request_signature(&msg.parts(), msg.body(), AUDIENCE, &check)
    }

    /// The end-to-end check (WIT, signature, nonce replay) with a fresh replay cache.
    fn verify_end_to_end(&self, msg: &Message) -> Result<(), String> {
        let verifier = HttpSigVerifier::new(
            self.wit_verifier(),
            HttpSigPolicy::default(),
            Arc::new(InMemoryReplayCache::new(16)),
        );
        let verified = verifier
            .verify_request(&msg.parts(), msg.body(), AUDIENCE, NOW)
            .map_err(rejected_by_lanyard("request end to end"))?;
        let sub = verified.wit.sub.as_str();
        if !sub.starts_with("spiffe://example.org/interop/") {
            return Err(format!("end to end: unexpected caller {sub}"));
        }
        match verifier.verify_request(&msg.parts(), msg.body(), AUDIENCE, NOW) {
            Err(e) if e.kind() == "replay" => Ok(()),
            Err(e) => Err(format!(
                "a replayed request must fail as replay, got {e} (kind {})",
                e.kind()
            )),
            Ok(_) => Err("a replayed request was accepted".to_owned()),
        }
    }

    /// Lanyard signs `msg` as `party` (adding the WIT and, with a body, Content-Digest).
    fn sign(&self, party: &Party, msg: &Message, sign_response: bool) -> (Message, String) {
        let opts = RequestSigning {
            wit: &party.wit,
            audience: AUDIENCE,
            lifetime: LIFETIME,
            sign_response,
            target: TargetComponents::PathAndQuery,
        };
        let signed = sign_request(&party.key, &msg.parts(), msg.body(), &opts, NOW, self.provider.as_ref()).unwrap();
        let signed_msg = msg.with_headers(signed.headers.iter().map(|(n, v)| (*n, v.as_str())));
        (signed_msg, signed.nonce)
    }
}

/// `msg` with the party's WIT, as the driver is given it to sign.
fn with_wit(msg: &Message, party: &Party) -> Message {
    msg.with_headers([("Workload-Identity-Token", party.wit.as_str())])
}

/// Maps a Lanyard error to a case failure naming its kind.
fn rejected_by_lanyard(what: &'static str) -> impl Fn(Error) -> String {
    move |e| format!("Lanyard rejected the {what}: {e} (kind {})", e.kind())
}

/// Lanyard's rebuilt signature base of `msg`.
fn lanyard_base(msg: &Message) -> Result<String, String> {
    httpsig::request_signature_base(&msg.parts()).map_err(rejected_by_lanyard("signature base"))
}

/// The RFC 9421 core without the profile: Lanyard's base of `msg` and the signature in it
/// verify with the party's public key.
fn lanyard_core_verify(party: &Party, msg: &Message) -> Result<(), Error> {
    let base = httpsig::request_signature_base(&msg.parts())?;
    let signature = msg.signature().map_err(Error::Crypto)?;
    lanyard_crypto::provider()
        .verifying_key(&party.key.public_jwk(), party.alg)?
        .verify(base.as_bytes(), &signature)
}

// ---------------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------------

/// Runs the driver from the workspace root: the parsed stdout on exit status 0,
/// otherwise its stderr (the `error: ...` line).
fn run_driver(command: &str, args: &[&str]) -> Result<Value, String> {
    let mut all = vec![command];
    all.extend_from_slice(args);
    let stdout = run_program("http-message-signatures", VENV_PYTHON, DRIVER, &all)?;
    serde_json::from_str(&stdout).map_err(|e| format!("{command} printed {stdout:?}: {e}"))
}

/// The library verifies `msg` with the party's public JWK, requiring label `wimse`,
/// `wimse-aud` = [`AUDIENCE`] and, at [`NOW`], created/expires.
fn py_verify(dir: &Scratch, party: &Party, msg: &Message) -> Result<Value, String> {
    let jwk = dir.json("public-jwk", &party.key.public_jwk());
    let request = dir.json("request", &msg.to_json());
    let now = NOW.as_secs().to_string();
    run_driver(
        "verify",
        &[
            "--jwk",
            &jwk,
            "--request",
            &request,
            "--label",
            "wimse",
            "--audience",
            AUDIENCE,
            "--now",
            &now,
        ],
    )
}

/// The library signs `msg` with the party's private JWK in `mode` (`wimse` or
/// `library`); returns the signed message and the signature base the library signed.
fn py_sign(
    dir: &Scratch,
    party: &Party,
    msg: &Message,
    mode: &str,
    extra: &[&str],
) -> Result<(Message, String), String> {
    let jwk: Jwk = party.key.private_jwk().unwrap();
    let jwk = dir.json("private-jwk", &jwk);
    let request = dir.json("request", &msg.to_json());
    let created = NOW.as_secs().to_string();
    let lifetime = LIFETIME.to_string();
    let mut args = vec![
        "--jwk",
        &jwk,
        "--request",
        &request,
        "--mode",
        mode,
        "--created",
        &created,
        "--lifetime",
        &lifetime,
    ];
    args.extend(extra);
    let out = run_driver("sign", &args)?;
    let headers: Vec<(String, String)> = serde_json::from_value(out["headers"].clone())
        .map_err(|e| format!("sign printed headers {}: {e}", out["headers"]))?;
    let base = out["signature_base"]
        .as_str()
        .ok_or("sign printed no signature_base")?
        .to_owned();
    Ok((Message { headers, ..msg.clone() }, base))
}

// ---------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------

/// Appends the request to a failure message, so a discrepancy can be replayed by hand.
fn with_request(msg: &Message) -> impl Fn(String) -> String + '_ {
    move |e| format!("{e}\n    request: {}", msg.to_json())
}

// ---------------------------------------------------------------------------------------
// Lanyard -> library
// ---------------------------------------------------------------------------------------

/// The library accepts a Lanyard-signed request, covering what Lanyard covered, with the
/// same parameters and the same signature base.
fn py_accepts_lanyard_request(
    world: &World,
    dir: &Scratch,
    party: &Party,
    msg: &Message,
    sign_response: bool,
) -> Result<(), String> {
    let (signed, nonce) = world.sign(party, msg, sign_response);
    // Lanyard accepts its own request, so a library rejection is a real disagreement.
    let ours = world.verify(&signed).map_err(rejected_by_lanyard("own request"))?;
    let theirs = py_verify(dir, party, &signed).map_err(with_request(&signed))?;
    let check = || -> Result<(), String> {
        ensure_eq("label", &theirs["label"], &json!("wimse"))?;
        ensure_eq("covered", &theirs["covered"], &json!(ours.covered))?;
        let params = &theirs["params"];
        ensure_eq("nonce", &params["nonce"], &json!(nonce))?;
        ensure_eq("created", &params["created"], &json!(NOW.as_secs()))?;
        ensure_eq("expires", &params["expires"], &json!(NOW.plus(LIFETIME).as_secs()))?;
        ensure_eq("tag", &params["tag"], &json!(httpsig::WIMSE_TAG))?;
        let sign_response_param = if sign_response { json!(true) } else { Value::Null };
        ensure_eq(
            "wimse-sign-response",
            &params["wimse-sign-response"],
            &sign_response_param,
        )?;
        ensure_eq(
            "signature base (library vs Lanyard)",
            theirs["signature_base"].as_str().unwrap_or_default(),
            lanyard_base(&signed)?.as_str(),
        )
    };
    check().map_err(with_request(&signed))
}

#[test]
fn lanyard_signed_requests_verify_in_http_message_signatures() {
    if !interop_enabled("lanyard_signed_requests_verify_in_http_message_signatures") {
        return;
    }
    let (world, dir) = (World::new(), Scratch::new());
    let mut report = Report::default();
    for alg in ALGS {
        let party = world.party("lanyard", alg);
        for (name, msg, sign_response) in requests() {
            let outcome = py_accepts_lanyard_request(&world, &dir, &party, &msg, sign_response);
            report.case(format!("library verifies a Lanyard {alg} {name}"), outcome);
        }
    }
    report.finish(ALGS.len() * requests().len());
}

// ---------------------------------------------------------------------------------------
// Library -> Lanyard
// ---------------------------------------------------------------------------------------

/// The library signs with the WIMSE parameters; Lanyard's full profile check and the
/// end-to-end verifier (WIT, signature, replay) accept the request.
fn lanyard_accepts_py_wimse_request(world: &World, dir: &Scratch, party: &Party, msg: &Message) -> Result<(), String> {
    let (signed, py_base) = py_sign(dir, party, &with_wit(msg, party), "wimse", &["--audience", AUDIENCE])?;
    let check = || -> Result<(), String> {
        ensure_eq(
            "signature base (Lanyard vs library)",
            lanyard_base(&signed)?.as_str(),
            py_base.as_str(),
        )?;
        let info = world
            .verify(&signed)
            .map_err(rejected_by_lanyard("WIMSE-profile request"))?;
        ensure_eq("label", info.label.as_str(), "wimse")?;
        ensure_eq("created", &info.created, &NOW)?;
        ensure_eq("expires", &info.expires, &NOW.plus(LIFETIME))?;
        ensure_eq("wimse-aud", &info.audience.as_deref(), &Some(AUDIENCE))?;
        let mut want = vec!["\"@method\"", "\"@path\"", "\"@query\""];
        want.extend(
            [
                ("Content-Type", "\"content-type\""),
                ("Txn-Token", "\"txn-token\""),
                ("Workload-Identity-Token", "\"workload-identity-token\""),
                ("Content-Digest", "\"content-digest\""),
            ]
            .into_iter()
            .filter(|(h, _)| signed.header(h).is_some())
            .map(|(_, c)| c),
        );
        let mut covered = info.covered.clone();
        covered.sort();
        want.sort_unstable();
        ensure_eq("covered", &covered, &want.iter().map(|c| (*c).to_owned()).collect())?;
        ensure_eq(
            "Content-Digest present",
            &signed.header("Content-Digest").is_some(),
            &!msg.body.is_empty(),
        )?;
        world.verify_end_to_end(&signed)
    };
    check().map_err(with_request(&signed))
}

#[test]
fn http_message_signatures_wimse_requests_verify_in_lanyard() {
    if !interop_enabled("http_message_signatures_wimse_requests_verify_in_lanyard") {
        return;
    }
    let (world, dir) = (World::new(), Scratch::new());
    let mut report = Report::default();
    for alg in ALGS {
        let party = world.party("pyhms-wimse", alg);
        for (name, msg, _) in requests() {
            let outcome = lanyard_accepts_py_wimse_request(&world, &dir, &party, &msg);
            report.case(
                format!("Lanyard verifies a library-signed {alg} {name} (WIMSE parameters)"),
                outcome,
            );
        }
    }
    report.finish(ALGS.len() * requests().len());
}

/// The library signs its own way (`keyid` always; `alg` with `include_alg`; no
/// `wimse-aud`). Lanyard rebuilds the same base and the signature verifies on it, but
/// the profile check refuses the request because of `keyid`.
fn lanyard_core_accepts_py_library_request(
    world: &World,
    dir: &Scratch,
    party: &Party,
    msg: &Message,
    include_alg: bool,
) -> Result<(), String> {
    let extra: &[&str] = if include_alg { &["--include-alg"] } else { &[] };
    let (signed, py_base) = py_sign(dir, party, &with_wit(msg, party), "library", extra)?;
    let check = || -> Result<(), String> {
        let input = signed.header("Signature-Input").unwrap_or_default();
        let kid = party.key.kid().unwrap();
        if !input.contains(&format!(";keyid=\"{kid}\"")) || input.contains("wimse-aud") {
            return Err(format!("unexpected library Signature-Input {input:?}"));
        }
        ensure_eq("alg parameter signed", &input.contains(";alg="), &include_alg)?;
        ensure_eq(
            "signature base (Lanyard vs library)",
            lanyard_base(&signed)?.as_str(),
            py_base.as_str(),
        )?;
        lanyard_core_verify(party, &signed).map_err(rejected_by_lanyard("RFC 9421 core signature"))?;
        match world.verify(&signed) {
            Ok(_) => Err("Lanyard's profile check accepted a signature with keyid".to_owned()),
            Err(e) if e.kind() == "signature_params" && e.to_string().contains("keyid") => Ok(()),
            Err(e) => Err(format!(
                "the profile check must reject keyid (signature_params), got {e} (kind {})",
                e.kind()
            )),
        }
    };
    check().map_err(with_request(&signed))
}

#[test]
fn http_message_signatures_own_requests_verify_on_the_rfc9421_core() {
    if !interop_enabled("http_message_signatures_own_requests_verify_on_the_rfc9421_core") {
        return;
    }
    let (world, dir) = (World::new(), Scratch::new());
    let mut report = Report::default();
    for alg in ALGS {
        let party = world.party("pyhms-library", alg);
        for (name, msg, _) in requests() {
            for include_alg in [false, true] {
                let outcome = lanyard_core_accepts_py_library_request(&world, &dir, &party, &msg, include_alg);
                let alg_param = if include_alg { "keyid and alg" } else { "keyid" };
                report.case(
                    format!("Lanyard's RFC 9421 core verifies a library-signed {alg} {name} ({alg_param})"),
                    outcome,
                );
            }
        }
    }
    report.finish(ALGS.len() * requests().len() * 2);
}

// ---------------------------------------------------------------------------------------
// Tampering
// ---------------------------------------------------------------------------------------

/// What changes after signing: the method and target (which break the signature), and
/// the body (which breaks Content-Digest).
const TAMPERING: [&str; 3] = ["method", "target", "body"];

/// The library's error for a tampered request: a failed signature, or a digest mismatch.
fn py_rejects(dir: &Scratch, party: &Party, msg: &Message, what: &str) -> Result<(), String> {
    let want = if what == "body" {
        "Content-Digest does not match the message body"
    } else {
        "InvalidSignature: cryptography.exceptions.InvalidSignature"
    };
    match py_verify(dir, party, msg) {
        Ok(out) => Err(format!("the library accepted it: {out}")),
        Err(e) if e.contains(want) => Ok(()),
        Err(e) => Err(format!("the library rejected it, but not with {want:?}: {e}")),
    }
}

fn lanyard_rejects(result: Result<impl Debug, Error>, what: &str) -> Result<(), String> {
    let want = if what == "body" {
        "digest_mismatch"
    } else {
        "bad_signature"
    };
    match result {
        Ok(v) => Err(format!("Lanyard accepted it: {v:?}")),
        Err(e) => ensure_eq("Lanyard error kind", e.kind(), want),
    }
}

/// Each tampered variant of a request signed by Lanyard, by the library with WIMSE
/// parameters, and by the library its own way fails in both implementations.
fn tampering_fails_everywhere(world: &World, dir: &Scratch, party: &Party, what: &str) -> Result<(), String> {
    let msg = &requests()[1].1; // the POST, so the body can change too
    let (by_lanyard, _) = world.sign(party, msg, false);
    let (by_wimse, _) = py_sign(dir, party, &with_wit(msg, party), "wimse", &["--audience", AUDIENCE])?;
    let (by_library, _) = py_sign(dir, party, &with_wit(msg, party), "library", &[])?;
    for (signer, signed) in [("Lanyard", &by_lanyard), ("library (WIMSE parameters)", &by_wimse)] {
        // The untampered request passes both sides, so only the change can fail it.
        world
            .verify(signed)
            .map_err(rejected_by_lanyard("untampered request"))?;
        py_verify(dir, party, signed).map_err(|e| format!("untampered {signer} request: {e}"))?;
        let tampered = signed.tampered(what);
        let context = |e: String| format!("{signer}-signed, {what} changed: {e}");
        py_rejects(dir, party, &tampered, what).map_err(context)?;
        lanyard_rejects(world.verify(&tampered), what).map_err(context)?;
    }
    // Signed the library's own way, Lanyard checks the core (the digest is outside it).
    lanyard_core_verify(party, &by_library).map_err(rejected_by_lanyard("untampered core signature"))?;
    let tampered = by_library.tampered(what);
    let context = |e: String| format!("library-signed (keyid), {what} changed: {e}");
    // The library verifies signatures with keyid by the JWK's kid; it must reject this one.
    py_rejects(dir, party, &tampered, what).map_err(context)?;
    if what != "body" {
        lanyard_rejects(lanyard_core_verify(party, &tampered), what).map_err(context)?;
    }
    Ok(())
}

#[test]
fn tampered_requests_fail_on_both_sides() {
    if !interop_enabled("tampered_requests_fail_on_both_sides") {
        return;
    }
    let (world, dir) = (World::new(), Scratch::new());
    let mut report = Report::default();
    for alg in ALGS {
        let party = world.party("tamper", alg);
        for what in TAMPERING {
            let outcome = tampering_fails_everywhere(&world, &dir, &party, what);
            report.case(format!("{alg} POST with its {what} changed after signing"), outcome);
        }
    }
    report.finish(ALGS.len() * TAMPERING.len());
}
