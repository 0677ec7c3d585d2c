//! SD-CWT interop with independent implementations.
//!
//! - **python-cwt** (PyPI `cwt` 3.3.0) verifies the COSE_Sign1 layer of Lanyard's SD-KBTs
//!   and the SD-CWTs inside them, and a disclosure checker written from the draft
//!   (`tests/interop/python/sd_cwt_interop.py`, cbor2) must restore exactly the claims
//!   Lanyard's verifier restores; the other way round, SD-CWTs and SD-KBTs made with
//!   python-cwt verify in Lanyard with the claims the checker expects. These need the
//!   Python venv (`scripts/install-interop.sh`): without it they print `skipped:` and pass,
//!   unless `LANYARD_INTEROP=1` is set, which turns a missing venv into a failure.
//! - The crates.io **`sd-cwt`** crate (ldclabs, 0.3.0, on `cose2`) always runs: it hashes
//!   the disclosure array only, so Lanyard runs in its content-only mode; each side
//!   accepts the other's tokens, and Lanyard's default (full-item) mode refuses the
//!   crate's. `docs/interop-sd-cwt.md` records the differences.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sd_cwt_fixtures;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{Report, ensure_eq};
use lanyard_core::cbor::{self, Value};
use lanyard_core::cose::{CoseKey, CoseSign1};
use lanyard_core::spice::sd_cwt::{
    DigestInput, HolderSdCwt, IssuerKey, KbtParams, PresentationContext, RandomSalts, SdCwtIssuer, SdCwtPolicy,
    SdCwtVerifier,
};
use lanyard_core::{Algorithm, DigestAlgorithm, SigningKey};
use lanyard_crypto::KeyPair;
use lanyard_testing::{NOW, provider};
use sd_cwt_fixtures::{Cose2Signer, Cose2Verifier, hex, sd_cwt_crate_verify, unhex, workload_claims};
use serde_json::{Value as Json, json};

const AUDIENCE: &str = "https://service.example.org";
const VENV_PYTHON: &str = "tests/interop/.venv/bin/python";
const DRIVER: &str = "tests/interop/python/sd_cwt_interop.py";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether the Python driver can run; a skip is printed, or a panic when required.
fn python_enabled(test: &str) -> bool {
    let ready = workspace_root().join(VENV_PYTHON).exists();
    let required = std::env::var("LANYARD_INTEROP").is_ok_and(|v| v == "1");
    assert!(
        ready || !required,
        "LANYARD_INTEROP=1 but {VENV_PYTHON} is missing: run scripts/install-interop.sh"
    );
    if !ready {
        let _ = writeln!(
            std::io::stderr().lock(),
            "interop_sd_cwt::{test} skipped: missing {VENV_PYTHON}; run scripts/install-interop.sh, or set \
             LANYARD_INTEROP=1 to make this a failure"
        );
    }
    ready
}

/// Runs the driver on a manifest and returns its per-case results by id.
fn run_driver(command: &str, manifest: &Json) -> Vec<Json> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.json");
    std::fs::write(&path, manifest.to_string()).unwrap();
    let root = workspace_root();
    let out = Command::new(root.join(VENV_PYTHON))
        .current_dir(&root)
        .args([DRIVER, command])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "driver {command} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Claims as deterministic CBOR, however the other side ordered them.
fn canonical(bytes: &[u8]) -> Result<Vec<u8>, String> {
    cbor::decode(bytes).map(|v| v.to_vec()).map_err(|e| e.to_string())
}

/// One Lanyard presentation: the SD-KBT, the keys, and what Lanyard restores from it.
struct Presentation {
    id: String,
    kbt: Vec<u8>,
    issuer: Arc<KeyPair>,
    holder: Arc<KeyPair>,
    input: DigestInput,
    /// Lanyard's restored claims (deterministic CBOR), or its error kind.
    lanyard: Result<Vec<u8>, String>,
}

fn verifier(issuer: &KeyPair, input: DigestInput) -> SdCwtVerifier {
    let key = provider()
        .verifying_key(&issuer.public_jwk(), issuer.algorithm())
        .unwrap();
    SdCwtVerifier::new(
        provider(),
        SdCwtPolicy {
            digest_input: input,
            ..SdCwtPolicy::default()
        },
    )
    .with_issuer(IssuerKey::new(key))
}

/// Lanyard's restored claims (deterministic CBOR) for [`AUDIENCE`] at [`NOW`], or the error kind.
fn lanyard_verify(kbt: &[u8], issuer: &KeyPair, input: DigestInput) -> Result<Vec<u8>, String> {
    verifier(issuer, input)
        .verify(
            kbt,
            &PresentationContext {
                audience: AUDIENCE,
                nonce: None,
            },
            NOW,
        )
        .map(|v| v.claims.to_vec())
        .map_err(|e| e.kind().to_owned())
}

/// Presentations across issuer/holder algorithms, digests and selections, plus three that
/// must fail on both sides.
fn lanyard_presentations() -> Vec<Presentation> {
    let mut out = Vec::new();
    for (issuer_alg, holder_alg, sd_alg, input) in [
        (
            Algorithm::ESP256,
            Algorithm::ESP256,
            DigestAlgorithm::Sha256,
            DigestInput::FullItem,
        ),
        (
            Algorithm::ES256,
            Algorithm::ES256,
            DigestAlgorithm::Sha256,
            DigestInput::FullItem,
        ),
        (
            Algorithm::ESP384,
            Algorithm::ES384,
            DigestAlgorithm::Sha384,
            DigestInput::FullItem,
        ),
        (
            Algorithm::ES384,
            Algorithm::ESP256,
            DigestAlgorithm::Sha512,
            DigestInput::FullItem,
        ),
        (
            Algorithm::Ed25519,
            Algorithm::Ed25519,
            DigestAlgorithm::Sha256,
            DigestInput::FullItem,
        ),
        (
            Algorithm::EdDSA,
            Algorithm::ESP256,
            DigestAlgorithm::Sha256,
            DigestInput::ContentOnly,
        ),
    ] {
        let issuer = Arc::new(KeyPair::generate(issuer_alg).unwrap());
        let holder = Arc::new(KeyPair::generate(holder_alg).unwrap());
        let issued = SdCwtIssuer::new(provider(), issuer.clone())
            .with_sd_alg(sd_alg)
            .with_digest_input(input)
            .issue(
                &workload_claims(holder.as_ref(), NOW),
                &mut RandomSalts::new(provider()),
            )
            .unwrap();
        let issuer_key = provider().verifying_key(&issuer.public_jwk(), issuer_alg).unwrap();
        let held = HolderSdCwt::receive(
            &issued.to_vec(),
            issuer_key.as_ref(),
            &CoseKey::from_jwk(&holder.public_jwk()).unwrap(),
            provider().as_ref(),
            &SdCwtPolicy {
                digest_input: input,
                ..SdCwtPolicy::default()
            },
            NOW,
        )
        .unwrap();
        let key_named = |name: &str| {
            let name = name.to_owned();
            move |d: &lanyard_core::spice::sd_cwt::Disclosure| matches!(d.kind(), lanyard_core::spice::sd_cwt::DisclosureKind::Claim { key, .. } if key.as_text() == Some(name.as_str()))
        };
        let selections: [(&str, Vec<usize>); 4] = [
            ("none", vec![]),
            ("env", held.select(key_named("env"))),
            ("commit", held.select(key_named("commit"))),
            ("all", (0..held.disclosures().len()).collect()),
        ];
        for (name, selection) in selections {
            let kbt = held
                .present(
                    &selection,
                    &KbtParams {
                        audience: AUDIENCE,
                        issued_at: Some(NOW),
                        ..KbtParams::default()
                    },
                    holder.as_ref(),
                )
                .unwrap();
            out.push(Presentation {
                id: format!("{issuer_alg}-{holder_alg}-{sd_alg}-{input:?}-{name}"),
                lanyard: lanyard_verify(&kbt, &issuer, input),
                kbt,
                issuer: issuer.clone(),
                holder: holder.clone(),
                input,
            });
        }
    }
    // Negative cases, on the first pair.
    let base = &out[3];
    let (issuer, holder) = (base.issuer.clone(), base.holder.clone());
    let mut flipped = base.kbt.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let sd_cwt_value = CoseSign1::decode(&base.kbt, &cbor::Limits::default())
        .unwrap()
        .protected_value(13)
        .cloned()
        .unwrap();
    let mut sd_cwt = CoseSign1::from_value(sd_cwt_value).unwrap();
    let mut unprotected = sd_cwt.unprotected().to_vec();
    let stranger = Value::Array(vec![Value::bytes(vec![7u8; 16]), Value::text("x"), Value::text("y")]).to_vec();
    if let Some((_, Value::Array(list))) = unprotected.iter_mut().find(|(k, _)| k.as_i64() == Some(17)) {
        list.push(Value::Bytes(stranger));
    }
    sd_cwt.set_unprotected(unprotected).unwrap();
    let extra = CoseSign1::sign(
        vec![(Value::int(13), sd_cwt.to_value()), (Value::int(16), Value::int(294))],
        vec![],
        Value::map([
            (Value::int(3), Value::text(AUDIENCE)),
            (Value::int(6), Value::int(NOW.as_secs() as i64)),
        ])
        .to_vec(),
        holder.as_ref(),
    )
    .unwrap()
    .to_vec();
    let stranger_issuer = Arc::new(KeyPair::generate(issuer.algorithm()).unwrap());
    for (id, kbt, issuer_key) in [
        ("negative-kbt-signature", flipped, issuer.clone()),
        ("negative-unmatched-disclosure", extra, issuer.clone()),
        ("negative-other-issuer", base.kbt.clone(), stranger_issuer),
    ] {
        out.push(Presentation {
            id: id.to_owned(),
            lanyard: lanyard_verify(&kbt, &issuer_key, DigestInput::FullItem),
            kbt,
            issuer: issuer_key,
            holder: holder.clone(),
            input: DigestInput::FullItem,
        });
    }
    out
}

fn public(jwk: &lanyard_core::Jwk) -> Json {
    serde_json::from_str(&jwk.to_public().to_json()).unwrap()
}

#[test]
fn python_cwt_verifies_lanyard_presentations_and_agrees_on_disclosures() {
    if !python_enabled("python_cwt_verifies_lanyard_presentations_and_agrees_on_disclosures") {
        return;
    }
    let presentations = lanyard_presentations();
    let manifest = json!({"cases": presentations.iter().map(|p| json!({
        "id": p.id,
        "kbt": hex(&p.kbt),
        "issuer_jwk": public(&p.issuer.public_jwk()),
        "holder_jwk": public(&p.holder.public_jwk()),
        "digest": if p.input == DigestInput::ContentOnly { "content" } else { "full" },
    })).collect::<Vec<_>>()});
    let results = run_driver("check", &manifest);
    let mut report = Report::default();
    for p in &presentations {
        let result = results
            .iter()
            .find(|r| r["id"] == p.id.as_str())
            .cloned()
            .unwrap_or_default();
        let outcome = match (&p.lanyard, result["ok"].as_bool()) {
            (Ok(ours), Some(true)) => {
                let theirs = canonical(&unhex(result["claims"].as_str().unwrap_or_default()));
                if theirs.as_ref() == Ok(ours) {
                    Ok(())
                } else {
                    Err(format!(
                        "claims differ: lanyard {} / python {:?}",
                        cbor::to_diagnostic(&cbor::decode(ours).unwrap()),
                        theirs.map(|t| cbor::to_diagnostic(&cbor::decode(&t).unwrap()))
                    ))
                }
            }
            (Err(_), Some(false)) => Ok(()),
            (ours, _) => Err(format!("lanyard {ours:?}, python {result}")),
        };
        report.case(p.id.clone(), outcome);
    }
    report.finish(presentations.len());
}

#[test]
fn lanyard_verifies_python_cwt_presentations() {
    if !python_enabled("lanyard_verifies_python_cwt_presentations") {
        return;
    }
    let pairs = [
        (Algorithm::ESP256, Algorithm::ESP256),
        (Algorithm::ES384, Algorithm::ES256),
        (Algorithm::Ed25519, Algorithm::ESP256),
    ];
    let keys: Vec<(KeyPair, KeyPair)> = pairs
        .iter()
        .map(|(i, h)| (KeyPair::generate(*i).unwrap(), KeyPair::generate(*h).unwrap()))
        .collect();
    let manifest = json!({"cases": keys.iter().zip(pairs).map(|((i, h), (ia, ha))| json!({
        "id": format!("{ia}-{ha}"),
        "issuer_jwk": serde_json::from_str::<Json>(&i.private_jwk().unwrap().to_json()).unwrap(),
        "holder_jwk": serde_json::from_str::<Json>(&h.private_jwk().unwrap().to_json()).unwrap(),
        "audience": AUDIENCE,
        "now": NOW.as_secs(),
    })).collect::<Vec<_>>()});
    let results = run_driver("issue", &manifest);
    let mut report = Report::default();
    for ((issuer, _), (ia, ha)) in keys.iter().zip(pairs) {
        let id = format!("{ia}-{ha}");
        let result = results
            .iter()
            .find(|r| r["id"] == id.as_str())
            .cloned()
            .unwrap_or_default();
        let outcome = if result["ok"].as_bool() != Some(true) {
            Err(format!("python-cwt could not issue: {result}"))
        } else {
            let kbt = unhex(result["kbt"].as_str().unwrap_or_default());
            let expected = canonical(&unhex(result["claims"].as_str().unwrap_or_default()));
            match lanyard_verify(&kbt, issuer, DigestInput::FullItem) {
                Ok(ours) => ensure_eq(
                    "restored claims (hex)",
                    &hex(&ours),
                    &hex(&expected.unwrap_or_default()),
                ),
                Err(kind) => Err(format!("lanyard refused it: {kind}")),
            }
        };
        report.case(id, outcome);
    }
    report.finish(pairs.len());
}

// ---- The crates.io sd-cwt crate (ldclabs) ------------------------------------------

fn to_cbor2(value: &Value) -> cbor2::Value {
    cbor2::from_slice(&value.to_vec()).unwrap()
}

#[test]
fn sd_cwt_crate_and_lanyard_accept_each_other_in_content_only_mode() {
    let p = provider();
    let issuer = Arc::new(KeyPair::generate(Algorithm::ESP256).unwrap());
    let holder = Arc::new(KeyPair::generate(Algorithm::ESP256).unwrap());
    let issuer_key = p.verifying_key(&issuer.public_jwk(), Algorithm::ESP256).unwrap();
    let holder_key = p.verifying_key(&holder.public_jwk(), Algorithm::ESP256).unwrap();
    let holder_cose = CoseKey::from_jwk(&holder.public_jwk()).unwrap();
    let (issuer_cose2, holder_cose2) = (Cose2Verifier(issuer_key.clone()), Cose2Verifier(holder_key.clone()));
    let content_only = SdCwtPolicy {
        digest_input: DigestInput::ContentOnly,
        ..SdCwtPolicy::default()
    };
    let params = KbtParams {
        audience: AUDIENCE,
        issued_at: Some(NOW),
        ..KbtParams::default()
    };

    // 1. The crate issues (salts from Lanyard's provider), Lanyard holds, presents and verifies.
    let mut salts = RandomSalts::new(p.clone());
    let mut next_salt = || -> [u8; 16] {
        use lanyard_core::spice::sd_cwt::{SaltRequest, SaltSource};
        salts.salt(SaltRequest::Decoy { index: 0 }).unwrap()
    };
    let issued = sd_cwt::issue_from_preissuance(
        to_cbor2(&workload_claims(holder.as_ref(), NOW)),
        &mut next_salt,
        &sd_cwt::Sha256RedactionHasher,
    )
    .unwrap();
    let mut message = cose2::Sign1Message::new(Some(cbor2::to_vec(&issued.value).unwrap()));
    sd_cwt::set_sd_cwt_typ(&mut message.protected);
    sd_cwt::set_sd_alg(&mut message.protected, -16);
    sd_cwt::set_disclosures(&mut message.unprotected, issued.disclosures.as_slice());
    let crate_token = message.sign_and_encode(&Cose2Signer(issuer.as_ref()), None).unwrap();

    let held = HolderSdCwt::receive(
        &crate_token,
        issuer_key.as_ref(),
        &holder_cose,
        p.as_ref(),
        &content_only,
        NOW,
    )
    .expect("Lanyard (content-only) accepts the sd-cwt crate's SD-CWT as its holder");
    assert_eq!(held.disclosures().len(), 7);
    let all: Vec<usize> = (0..held.disclosures().len()).collect();
    let kbt = held.present(&all, &params, holder.as_ref()).unwrap();
    let verified = lanyard_verify(&kbt, &issuer, DigestInput::ContentOnly)
        .expect("Lanyard verifies a presentation of the crate's SD-CWT");
    assert_eq!(
        cbor::decode(&verified).unwrap().get(&Value::text("env")),
        Some(&Value::text("prod"))
    );
    // The crate's own restore of the same presentation agrees with Lanyard's.
    let (theirs, _) = sd_cwt_crate_verify(&kbt, &issuer_cose2, &holder_cose2).unwrap();
    assert_eq!(theirs.to_vec(), verified);
    // In its default (full-item) mode Lanyard refuses: the digests are over the arrays only.
    assert_eq!(
        HolderSdCwt::receive(
            &crate_token,
            issuer_key.as_ref(),
            &holder_cose,
            p.as_ref(),
            &SdCwtPolicy::default(),
            NOW
        )
        .unwrap_err()
        .kind(),
        "sd_disclosure_unmatched"
    );

    // 2. Lanyard's default (full-item) tokens do not verify in the crate either...
    let full_item = SdCwtIssuer::new(p.clone(), issuer.clone())
        .issue(&workload_claims(holder.as_ref(), NOW), &mut RandomSalts::new(p.clone()))
        .unwrap()
        .to_vec();
    assert!(
        sd_cwt::verify_validate_and_restore_sd_cwt(
            &issuer_cose2,
            &full_item,
            None,
            sd_cwt::RestoreMode::Holder,
            sd_cwt::SdCwtValidationOptions::default(),
        )
        .is_err()
    );
    //    ...but in content-only mode the crate validates Lanyard's SD-CWT as holder and
    //    verifies Lanyard's presentations.
    let lanyard_token = SdCwtIssuer::new(p.clone(), issuer.clone())
        .with_digest_input(DigestInput::ContentOnly)
        .issue(&workload_claims(holder.as_ref(), NOW), &mut RandomSalts::new(p.clone()))
        .unwrap()
        .to_vec();
    let (_, report) = sd_cwt::verify_validate_and_restore_sd_cwt(
        &issuer_cose2,
        &lanyard_token,
        None,
        sd_cwt::RestoreMode::Holder,
        sd_cwt::SdCwtValidationOptions::default(),
    )
    .expect("the sd-cwt crate validates Lanyard's content-only SD-CWT as holder");
    assert_eq!(report.disclosed, 5);
    assert_eq!(report.decoys, 2);
    let held = HolderSdCwt::receive(
        &lanyard_token,
        issuer_key.as_ref(),
        &holder_cose,
        p.as_ref(),
        &content_only,
        NOW,
    )
    .unwrap();
    for selection in [vec![], vec![0], all.clone()] {
        let kbt = held.present(&selection, &params, holder.as_ref()).unwrap();
        let ours = lanyard_verify(&kbt, &issuer, DigestInput::ContentOnly).unwrap();
        let (theirs, _) = sd_cwt_crate_verify(&kbt, &issuer_cose2, &holder_cose2)
            .unwrap_or_else(|e| panic!("the sd-cwt crate refused Lanyard's presentation {selection:?}: {e}"));
        assert_eq!(theirs.to_vec(), ours, "selection {selection:?}");
    }
}
