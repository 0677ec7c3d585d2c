//! SD-CWT cost, measured in one binary and one run so the ratios in `docs/benchmarks.md`
//! compare like with like.
//!
//! Run with `cargo bench -p lanyard-core --bench sd_cwt`. Keys are ESP256 (P-256) for the
//! issuer and the holder, through the aws-lc-rs provider. Benchmark ids:
//!
//! - `sd_cwt/issue/{10,50}`: `SdCwtIssuer::issue` of a claims set with 10 or 50
//!   selectively disclosable claims (random salts, SHA-256, one signature).
//! - `sd_cwt/verify/5_of_50`: `SdCwtVerifier::verify` of an SD-KBT disclosing 5 of 50
//!   redacted claims (full-item digests, Lanyard's default): decode, both signatures, every
//!   §9 rule, the restore walk.
//! - `sd_cwt/raw/two_signatures`: the two signature checks inside that presentation alone
//!   (issuer over the SD-CWT's Sig_structure, holder over the SD-KBT's), with both keys
//!   already parsed; `sd_cwt/raw/two_signatures_holder_key_parsed`: the same, parsing the
//!   holder key from its JWK on each call, as a verifier must (it comes from `cnf`).
//! - `sd_cwt/verify_content_only/5_of_50`: Lanyard verifying the content-only presentation
//!   the `sd-cwt` crate can read; `sd_cwt/sd_cwt_crate/5_of_50`: the `sd-cwt` crate 0.3.0
//!   verifying that same presentation: `cose2` decodes the SD-KBT and checks the holder
//!   signature, then `verify_validate_and_restore_sd_cwt` checks the issuer signature,
//!   validates and restores. Its signatures go through the same aws-lc-rs keys (pre-parsed,
//!   holder included: the crate does not read `cnf`), so the difference is the framework.
//!
//! Setup asserts that every path verifies to the same five claims; a timed call panics on
//! an error, so a broken benchmark cannot report fast failures.
//!
//! On this shared machine wall-clock medians move by ±25 % from run to run, so the same
//! cases also run outside criterion for instruction counts:
//! `SD_CWT_CALLGRIND=<id>:<n> valgrind --tool=callgrind <bench binary>` (see `main`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/sd_cwt_fixtures/mod.rs"]
mod sd_cwt_fixtures;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group};
use lanyard_core::cbor::Value;
use lanyard_core::cose::{CoseKey, CoseSign1};
use lanyard_core::cwt::Confirmation;
use lanyard_core::spice::sd_cwt::{
    DigestInput, HolderSdCwt, IssuerKey, KbtParams, PresentationContext, RandomSalts, SdCwtIssuer, SdCwtPolicy,
    SdCwtVerifier,
};
use lanyard_core::{Algorithm, CryptoProvider, SigningKey, UnixTime, VerifyingKey};
use lanyard_crypto::{KeyPair, PublicKey};
use sd_cwt_fixtures::{Cose2Verifier, sd_cwt_crate_verify};

const NOW: UnixTime = UnixTime(1_800_000_000);
const AUDIENCE: &str = "https://ledger.example.org";

/// A claims set with `redacted` selectively disclosable claims (`claim-00` ...).
fn claims(redacted: usize, holder: &KeyPair) -> Value {
    let cnf = Confirmation::Key(CoseKey::from_jwk(&holder.public_jwk()).unwrap()).to_value();
    let mut entries = vec![
        (Value::int(1), Value::text("https://lanyard.example.org")),
        (Value::int(2), Value::text("spiffe://example.org/billing")),
        (Value::int(4), Value::int(NOW.as_secs() as i64 + 3600)),
        (Value::int(6), Value::int(NOW.as_secs() as i64 - 60)),
        (Value::int(8), cnf),
    ];
    for i in 0..redacted {
        entries.push((
            Value::Tag(58, Box::new(Value::text(format!("claim-{i:02}")))),
            Value::text(format!("value of claim {i:02}, twenty-odd bytes")),
        ));
    }
    Value::Map(entries)
}

struct Setup {
    provider: Arc<dyn CryptoProvider>,
    issuer: Arc<KeyPair>,
    holder: Arc<KeyPair>,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            provider: lanyard_crypto::provider(),
            issuer: Arc::new(KeyPair::generate(Algorithm::ESP256).unwrap()),
            holder: Arc::new(KeyPair::generate(Algorithm::ESP256).unwrap()),
        }
    }

    fn issuer(&self, input: DigestInput) -> SdCwtIssuer {
        SdCwtIssuer::new(self.provider.clone(), self.issuer.clone()).with_digest_input(input)
    }

    fn policy(input: DigestInput) -> SdCwtPolicy {
        SdCwtPolicy {
            digest_input: input,
            ..SdCwtPolicy::default()
        }
    }

    fn issuer_key(&self) -> Arc<dyn VerifyingKey> {
        self.provider
            .verifying_key(&self.issuer.public_jwk(), Algorithm::ESP256)
            .unwrap()
    }

    fn holder_key(&self) -> Arc<dyn VerifyingKey> {
        self.provider
            .verifying_key(&self.holder.public_jwk(), Algorithm::ESP256)
            .unwrap()
    }

    /// An SD-KBT disclosing claims 0, 10, 20, 30 and 40 of 50.
    fn presentation(&self, input: DigestInput) -> Vec<u8> {
        let issued = self
            .issuer(input)
            .issue(&claims(50, &self.holder), &mut RandomSalts::new(self.provider.clone()))
            .unwrap();
        let held = HolderSdCwt::receive(
            &issued.to_vec(),
            self.issuer_key().as_ref(),
            &CoseKey::from_jwk(&self.holder.public_jwk()).unwrap(),
            self.provider.as_ref(),
            &Setup::policy(input),
            NOW,
        )
        .unwrap();
        let wanted: Vec<String> = [0, 10, 20, 30, 40].iter().map(|i| format!("claim-{i:02}")).collect();
        let selection = held.select(|d| match d.kind() {
            lanyard_core::spice::sd_cwt::DisclosureKind::Claim { key, .. } => {
                key.as_text().is_some_and(|k| wanted.iter().any(|w| w == k))
            }
            _ => false,
        });
        assert_eq!(selection.len(), 5);
        held.present(
            &selection,
            &KbtParams {
                audience: AUDIENCE,
                issued_at: Some(NOW),
                ..KbtParams::default()
            },
            self.holder.as_ref(),
        )
        .unwrap()
    }

    fn verifier(&self, input: DigestInput) -> SdCwtVerifier {
        SdCwtVerifier::new(self.provider.clone(), Setup::policy(input)).with_issuer(IssuerKey::new(self.issuer_key()))
    }
}

fn context() -> PresentationContext<'static> {
    PresentationContext {
        audience: AUDIENCE,
        nonce: None,
    }
}

/// The two signed messages of a presentation and their signatures.
struct RawChecks {
    issuer_message: Vec<u8>,
    issuer_signature: Vec<u8>,
    holder_message: Vec<u8>,
    holder_signature: Vec<u8>,
}

fn raw_checks(kbt: &[u8]) -> RawChecks {
    let kbt = CoseSign1::decode(kbt, &lanyard_core::cbor::Limits::default()).unwrap();
    let sd_cwt = CoseSign1::from_value(kbt.protected_value(13).cloned().unwrap()).unwrap();
    RawChecks {
        issuer_message: sd_cwt.sig_structure(b""),
        issuer_signature: sd_cwt.signature().to_vec(),
        holder_message: kbt.sig_structure(b""),
        holder_signature: kbt.signature().to_vec(),
    }
}

/// Everything the timed cases use, built once (outside any measurement).
struct Cases {
    s: Setup,
    inputs: Vec<(usize, Value)>,
    full: Vec<u8>,
    verifier: SdCwtVerifier,
    raw: RawChecks,
    issuer_key: Arc<dyn VerifyingKey>,
    holder_key: Arc<dyn VerifyingKey>,
    holder_jwk: lanyard_core::Jwk,
    content: Vec<u8>,
    content_verifier: SdCwtVerifier,
    issuer_cose2: Cose2Verifier,
    holder_cose2: Cose2Verifier,
}

/// The benchmark ids, in order.
const IDS: [&str; 7] = [
    "issue/10",
    "issue/50",
    "verify/5_of_50",
    "raw/two_signatures",
    "raw/two_signatures_holder_key_parsed",
    "verify_content_only/5_of_50",
    "sd_cwt_crate/5_of_50",
];

impl Cases {
    /// Builds the presentations and checks that every path verifies to the same claims.
    fn new() -> Cases {
        let s = Setup::new();
        let inputs = vec![(10, claims(10, &s.holder)), (50, claims(50, &s.holder))];
        for (n, input) in &inputs {
            let issued = s
                .issuer(DigestInput::FullItem)
                .issue(input, &mut RandomSalts::new(s.provider.clone()))
                .unwrap();
            assert_eq!(issued.disclosures().len(), *n);
        }
        let full = s.presentation(DigestInput::FullItem);
        let verifier = s.verifier(DigestInput::FullItem);
        assert_eq!(verifier.verify(&full, &context(), NOW).unwrap().disclosed, 5);
        let raw = raw_checks(&full);
        let (issuer_key, holder_key) = (s.issuer_key(), s.holder_key());
        issuer_key.verify(&raw.issuer_message, &raw.issuer_signature).unwrap();
        holder_key.verify(&raw.holder_message, &raw.holder_signature).unwrap();
        let content = s.presentation(DigestInput::ContentOnly);
        let content_verifier = s.verifier(DigestInput::ContentOnly);
        let ours = content_verifier.verify(&content, &context(), NOW).unwrap();
        assert_eq!(ours.disclosed, 5);
        let (issuer_cose2, holder_cose2) = (Cose2Verifier(s.issuer_key()), Cose2Verifier(s.holder_key()));
        let (theirs, disclosed) = sd_cwt_crate_verify(&content, &issuer_cose2, &holder_cose2).unwrap();
        assert_eq!(disclosed, 5);
        assert_eq!(
            theirs.to_vec(),
            ours.claims.to_vec(),
            "the crate and Lanyard restore the same claims"
        );
        Cases {
            holder_jwk: s.holder.public_jwk(),
            s,
            inputs,
            full,
            verifier,
            raw,
            issuer_key,
            holder_key,
            content,
            content_verifier,
            issuer_cose2,
            holder_cose2,
        }
    }

    /// One iteration of benchmark `id`; panics on any error.
    fn run(&self, id: &str) {
        match id {
            "issue/10" | "issue/50" => {
                let input = &self.inputs[usize::from(id == "issue/50")].1;
                black_box(
                    self.s
                        .issuer(DigestInput::FullItem)
                        .issue(black_box(input), &mut RandomSalts::new(self.s.provider.clone()))
                        .unwrap(),
                );
            }
            "verify/5_of_50" => {
                black_box(self.verifier.verify(black_box(&self.full), &context(), NOW).unwrap());
            }
            "raw/two_signatures" => {
                self.issuer_key
                    .verify(black_box(&self.raw.issuer_message), &self.raw.issuer_signature)
                    .unwrap();
                self.holder_key
                    .verify(black_box(&self.raw.holder_message), &self.raw.holder_signature)
                    .unwrap();
            }
            "raw/two_signatures_holder_key_parsed" => {
                self.issuer_key
                    .verify(black_box(&self.raw.issuer_message), &self.raw.issuer_signature)
                    .unwrap();
                PublicKey::from_jwk(black_box(&self.holder_jwk), Algorithm::ESP256)
                    .unwrap()
                    .verify(black_box(&self.raw.holder_message), &self.raw.holder_signature)
                    .unwrap();
            }
            "verify_content_only/5_of_50" => {
                black_box(
                    self.content_verifier
                        .verify(black_box(&self.content), &context(), NOW)
                        .unwrap(),
                );
            }
            "sd_cwt_crate/5_of_50" => {
                black_box(
                    sd_cwt_crate_verify(black_box(&self.content), &self.issuer_cose2, &self.holder_cose2).unwrap(),
                );
            }
            other => panic!("no benchmark {other}"),
        }
    }
}

fn benches(c: &mut Criterion) {
    let cases = Cases::new();
    let mut g = c.benchmark_group("sd_cwt");
    for id in IDS {
        g.bench_function(id, |b| b.iter(|| cases.run(id)));
    }
    g.finish();
}

criterion_group!(sd_cwt_benches, benches);

/// `SD_CWT_CALLGRIND=<id>:<iterations>` runs one benchmark that many times, outside
/// criterion, for instruction counts under `valgrind --tool=callgrind` (counted once with
/// the iterations and once with 0; the difference divided by the iterations is the cost of
/// one). Otherwise the criterion benchmarks run.
fn main() {
    if let Ok(spec) = std::env::var("SD_CWT_CALLGRIND") {
        let (id, iterations) = spec.split_once(':').expect("SD_CWT_CALLGRIND=<id>:<iterations>");
        let cases = Cases::new();
        for _ in 0..iterations.parse::<usize>().expect("iterations") {
            cases.run(id);
        }
        return;
    }
    sd_cwt_benches();
    Criterion::default().configure_from_args().final_summary();
}
