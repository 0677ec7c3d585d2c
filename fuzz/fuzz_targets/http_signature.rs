//! RFC 9421 parsing and checking (draft-ietf-wimse-http-signature-07 profile, and -06 with
//! the compatibility switch): the input is
//! a request as header lines (`name: value`, one per `\n` line) followed by a blank line
//! and a body. `Signature-Input`, `Signature` and `Content-Digest` go through the
//! structured-field parser and the profile checks with a fixed Ed25519 key; nothing may
//! panic, and no input may verify (the fuzzer cannot produce a valid Ed25519 signature).

#![no_main]

use std::sync::LazyLock;

use lanyard_core::httpsig::{self, HttpSigPolicy, RequestParts, ResponseParts, SignatureCheck};
use lanyard_core::{Algorithm, UnixTime, VerifyingKey};
use libfuzzer_sys::fuzz_target;

static KEY: LazyLock<std::sync::Arc<dyn VerifyingKey>> = LazyLock::new(|| {
    let provider = lanyard_crypto::provider();
    let key = provider.generate_key(Algorithm::EdDSA).expect("key");
    provider.verifying_key(&key.public_jwk(), Algorithm::EdDSA).expect("public key")
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let target = lines.next().unwrap_or("/");
    let headers: Vec<(&str, &[u8])> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim(), v.trim().as_bytes()))
        .collect();
    let request = RequestParts {
        method: "POST",
        target,
        authority: Some("svc.example.org"),
        scheme: Some("https"),
        headers: headers.clone(),
    };
    let _ = httpsig::request_signature_base(&request);
    let provider = lanyard_crypto::provider();
    let response = ResponseParts { status: 200, headers };
    let _ = httpsig::response_signature_base(&response, &request);
    for accept_request_target in [false, true] {
        let policy = HttpSigPolicy { accept_request_target, ..HttpSigPolicy::default() };
        let check = SignatureCheck {
            key: KEY.as_ref(),
            policy: &policy,
            now: UnixTime(1_785_155_800),
            provider: provider.as_ref(),
        };
        let verified = httpsig::verify_request_signature(&request, body.as_bytes(), "https://svc.example.org/x", &check);
        assert!(verified.is_err(), "a fuzzed request verified: {verified:?}");
        let verified = httpsig::verify_response_signature(&response, body.as_bytes(), &request, Some("n"), &check);
        assert!(verified.is_err(), "a fuzzed response verified: {verified:?}");
    }
});
