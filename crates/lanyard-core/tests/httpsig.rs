//! HTTP Message Signatures (draft-ietf-wimse-http-signature): the draft's examples as
//! vectors, and sign → verify round trips with every failure mode the profile defines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use lanyard_core::httpsig::{
    self, HttpSigPolicy, HttpSigVerifier, RequestParts, RequestSigning, ResponseParts, ResponseSigning, SignatureCheck,
    TargetComponents, sign_request, sign_response, verify_request_signature, verify_response_signature,
};
use lanyard_core::{
    Algorithm, CryptoProvider, InMemoryReplayCache, Jwk, SigningKey, UnixTime, WitPolicy, WitVerifier, WorkloadId,
};
use lanyard_testing::{NOW, WitWorld};
use serde_json::Value;

fn vectors() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors/httpsig/draft_examples.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn headers(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| (h[0].as_str().unwrap().to_owned(), h[1].as_str().unwrap().to_owned()))
        .collect()
}

fn view(h: &[(String, String)]) -> Vec<(&str, &[u8])> {
    h.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect()
}

fn public(v: &Value) -> Arc<dyn lanyard_core::VerifyingKey> {
    let jwk = Jwk::from_json(v.to_string().as_bytes()).unwrap().to_public();
    lanyard_crypto::provider()
        .verifying_key(&jwk, Algorithm::EdDSA)
        .unwrap()
}

fn check<'a>(
    key: &'a Arc<dyn lanyard_core::VerifyingKey>,
    policy: &'a HttpSigPolicy,
    provider: &'a Arc<dyn CryptoProvider>,
    now: UnixTime,
) -> SignatureCheck<'a> {
    SignatureCheck {
        key: key.as_ref(),
        policy,
        now,
        provider: provider.as_ref(),
    }
}

#[test]
fn draft_examples_verify() {
    let provider = lanyard_crypto::provider();
    for case in vectors()["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        // The published examples (-06, -05) cover @request-target: -06 compatibility only.
        assert_eq!(case["compat"], "http-signature-06", "{id}");
        let policy = HttpSigPolicy {
            accept_request_target: true,
            ..HttpSigPolicy::default()
        };
        let now = UnixTime(case["now"].as_u64().unwrap());
        let req_h = headers(&case["request"]["headers"]);
        let request = RequestParts {
            method: case["request"]["method"].as_str().unwrap(),
            target: case["request"]["target"].as_str().unwrap(),
            authority: case["request"]["authority"].as_str(),
            scheme: Some("https"),
            headers: view(&req_h),
        };
        assert_eq!(
            httpsig::request_signature_base(&request).unwrap(),
            case["request_signature_base"].as_str().unwrap(),
            "{id}: request base"
        );
        let audience = case["audience"].as_str().unwrap();
        let caller = public(&case["caller_key"]);
        let callee = public(&case["callee_key"]);
        let info = verify_request_signature(&request, b"", audience, &check(&caller, &policy, &provider, now))
            .unwrap_or_else(|e| panic!("{id}: request: {e}"));
        // Under the -07 rules (the default policy) the same signature is refused.
        let default = HttpSigPolicy::default();
        assert_eq!(
            verify_request_signature(&request, b"", audience, &check(&caller, &default, &provider, now))
                .unwrap_err()
                .kind(),
            "signature_legacy_target",
            "{id}"
        );
        assert_eq!(info.nonce, case["request_nonce"].as_str().unwrap());

        let resp_h = headers(&case["response"]["headers"]);
        let response = ResponseParts {
            status: u16::try_from(case["response"]["status"].as_u64().unwrap()).unwrap(),
            headers: view(&resp_h),
        };
        let body = case["response"]["body"].as_str().unwrap().as_bytes();
        assert_eq!(
            httpsig::response_signature_base(&response, &request).unwrap(),
            case["response_signature_base"].as_str().unwrap(),
            "{id}: response base"
        );
        let nonce = Some(info.nonce.as_str());
        verify_response_signature(
            &response,
            body,
            &request,
            nonce,
            &check(&callee, &policy, &provider, now),
        )
        .unwrap_or_else(|e| panic!("{id}: response: {e}"));

        // Negative variants of the same examples, each failing for its own reason.
        let request_error = |r: &RequestParts<'_>, body: &[u8], aud: &str, key, at| {
            verify_request_signature(r, body, aud, &check(key, &policy, &provider, at))
                .unwrap_err()
                .kind()
        };
        let other_target = RequestParts {
            target: "/gimme-ice-cream?flavor=chocolate",
            ..request.clone()
        };
        assert_eq!(
            request_error(&other_target, b"", audience, &caller, now),
            "bad_signature",
            "{id}"
        );
        assert_eq!(
            request_error(&request, b"", "https://svcc.example.com/", &caller, now),
            "wrong_audience"
        );
        assert_eq!(
            request_error(&request, b"", audience, &callee, now),
            "bad_signature",
            "wrong key"
        );
        assert_eq!(request_error(&request, b"{}", audience, &caller, now), "digest_missing");
        assert_eq!(
            request_error(&request, b"", audience, &caller, now.plus(400)),
            "expired"
        );
        let response_error = |body: &[u8], nonce: Option<&str>| {
            verify_response_signature(
                &response,
                body,
                &request,
                nonce,
                &check(&callee, &policy, &provider, now),
            )
            .unwrap_err()
            .kind()
        };
        assert_eq!(response_error(b"No ice cream today!\n\n", nonce), "digest_mismatch");
        assert_eq!(response_error(body, Some("other")), "signature_request_nonce");
    }
}

struct Party {
    key: Arc<dyn SigningKey>,
    wit: String,
}

/// `example.org` with an ES256 WIT issuer (`kid` "i1").
struct World(WitWorld);

impl std::ops::Deref for World {
    type Target = WitWorld;

    fn deref(&self) -> &WitWorld {
        &self.0
    }
}

impl World {
    fn new() -> World {
        World(WitWorld::new("example.org", Algorithm::ES256, Some("i1")))
    }

    fn party(&self, name: &str, alg: Algorithm) -> Party {
        let key = self.provider.generate_key(alg).unwrap();
        let id = WorkloadId::parse(&format!("spiffe://example.org/{name}")).unwrap();
        let wit = self.issuer.issue(&id, &key.public_jwk(), NOW).unwrap();
        Party { key, wit }
    }

    fn verifier(&self) -> HttpSigVerifier {
        self.verifier_for(TargetComponents::default())
    }

    /// A verifier that accepts signatures in the `target` form (-06 needs the switch).
    fn verifier_for(&self, target: TargetComponents) -> HttpSigVerifier {
        HttpSigVerifier::new(
            WitVerifier::new(self.store.clone(), WitPolicy::wimse()),
            HttpSigPolicy {
                accept_request_target: target == TargetComponents::RequestTarget,
                ..HttpSigPolicy::default()
            },
            Arc::new(InMemoryReplayCache::new(1024)),
        )
    }
}

/// Headers after applying what the signer returned.
fn apply(base: &[(&str, &str)], signed: &httpsig::SignedHeaders) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = base.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
    h.retain(|(n, _)| !signed.headers.iter().any(|(s, _)| s.eq_ignore_ascii_case(n)));
    h.extend(signed.headers.iter().map(|(n, v)| ((*n).to_owned(), v.clone())));
    h
}

#[test]
fn round_trip_request_and_response() {
    let world = World::new();
    for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::ES384, Algorithm::PS256] {
        for target in [TargetComponents::RequestTarget, TargetComponents::PathAndQuery] {
            let verifier = world.verifier_for(target);
            let client = world.party("client", alg);
            let server = world.party("server", alg);
            let body = br#"{"amount": 10}"#;
            let base = [("Content-Type", "application/json"), ("Txn-Token", "txn.tok.en")];
            let base_owned: Vec<(String, String)> =
                base.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
            let unsigned = RequestParts {
                method: "POST",
                target: "/orders?id=7",
                headers: view(&base_owned),
                ..RequestParts::default()
            };
            let opts = RequestSigning {
                wit: &client.wit,
                audience: "https://server.example.org/orders",
                lifetime: 60,
                sign_response: true,
                target,
            };
            let signed = sign_request(
                client.key.as_ref(),
                &unsigned,
                body,
                &opts,
                NOW,
                world.provider.as_ref(),
            )
            .unwrap();
            let h = apply(&base, &signed);
            let request = RequestParts {
                headers: view(&h),
                ..unsigned.clone()
            };
            if target == TargetComponents::RequestTarget {
                // The -06 form is refused unless the verifier has the compatibility switch on.
                assert_eq!(
                    world
                        .verifier()
                        .verify_request(&request, body, opts.audience, NOW)
                        .unwrap_err()
                        .kind(),
                    "signature_legacy_target"
                );
            }
            let ok = verifier.verify_request(&request, body, opts.audience, NOW).unwrap();
            assert_eq!(ok.wit.sub.as_str(), "spiffe://example.org/client");
            assert_eq!(ok.signature.target, target);
            assert!(ok.signature.sign_response);
            assert!(ok.signature.covered.iter().any(|c| c == "\"txn-token\""));
            assert!(ok.signature.covered.iter().any(|c| c == "\"content-digest\""));
            // The same request again is a replayed nonce.
            assert_eq!(
                verifier
                    .verify_request(&request, body, opts.audience, NOW)
                    .unwrap_err()
                    .kind(),
                "replay"
            );
            // A different body breaks the digest.
            assert_eq!(
                world
                    .verifier_for(target)
                    .verify_request(&request, b"{}", opts.audience, NOW)
                    .unwrap_err()
                    .kind(),
                "digest_mismatch"
            );
            // A header added after signing that the profile requires covered.
            let mut extra = h.clone();
            extra.push(("Authorization".into(), "Bearer x".into()));
            let with_extra = RequestParts {
                headers: view(&extra),
                ..unsigned.clone()
            };
            assert_eq!(
                world
                    .verifier_for(target)
                    .verify_request(&with_extra, body, opts.audience, NOW)
                    .unwrap_err()
                    .kind(),
                "signature_components"
            );

            // The server signs its response, bound to the request's nonce.
            let resp_base = [("Content-Type", "text/plain")];
            let resp_owned: Vec<(String, String)> = resp_base
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect();
            let unsigned_resp = ResponseParts {
                status: 201,
                headers: view(&resp_owned),
            };
            let resp_opts = ResponseSigning {
                wit: &server.wit,
                request_nonce: &signed.nonce,
                lifetime: 60,
                target,
            };
            let signed_resp = sign_response(
                server.key.as_ref(),
                &unsigned_resp,
                b"created",
                &request,
                &resp_opts,
                NOW,
                world.provider.as_ref(),
            )
            .unwrap();
            let rh = apply(&resp_base, &signed_resp);
            let response = ResponseParts {
                status: 201,
                headers: view(&rh),
            };
            let ok = world
                .verifier_for(target)
                .verify_response(&response, b"created", &request, &signed.nonce, NOW)
                .unwrap();
            assert_eq!(ok.wit.sub.as_str(), "spiffe://example.org/server");
            assert_eq!(
                world
                    .verifier_for(target)
                    .verify_response(&response, b"created", &request, "another-nonce", NOW)
                    .unwrap_err()
                    .kind(),
                "signature_request_nonce"
            );
            let wrong_status = ResponseParts {
                status: 200,
                headers: view(&rh),
            };
            assert_eq!(
                world
                    .verifier_for(target)
                    .verify_response(&wrong_status, b"created", &request, &signed.nonce, NOW)
                    .unwrap_err()
                    .kind(),
                "bad_signature"
            );
        }
    }
}

#[test]
fn message_level_failures() {
    let world = World::new();
    let client = world.party("client", Algorithm::ES256);
    let unsigned = RequestParts {
        method: "GET",
        target: "/x",
        ..RequestParts::default()
    };
    let opts = RequestSigning {
        wit: &client.wit,
        audience: "https://s.example.org/x",
        lifetime: 60,
        sign_response: false,
        target: TargetComponents::default(),
    };
    let signed = sign_request(client.key.as_ref(), &unsigned, b"", &opts, NOW, world.provider.as_ref()).unwrap();
    let h = apply(&[], &signed);

    // Two WIT headers.
    let mut two = h.clone();
    two.push(("workload-identity-token".into(), client.wit.clone()));
    let r = RequestParts {
        headers: view(&two),
        ..unsigned.clone()
    };
    assert_eq!(
        world
            .verifier()
            .verify_request(&r, b"", opts.audience, NOW)
            .unwrap_err()
            .kind(),
        "header"
    );

    // No signature at all.
    let none: Vec<(String, String)> = h.iter().filter(|(n, _)| !n.starts_with("Signature")).cloned().collect();
    let r = RequestParts {
        headers: view(&none),
        ..unsigned.clone()
    };
    assert_eq!(
        world
            .verifier()
            .verify_request(&r, b"", opts.audience, NOW)
            .unwrap_err()
            .kind(),
        "signature_missing"
    );

    // A WIT from an untrusted issuer fails before the signature is looked at.
    let stranger = World::new();
    let other = stranger.party("client", Algorithm::ES256);
    let forged = sign_request(
        other.key.as_ref(),
        &unsigned,
        b"",
        &RequestSigning {
            wit: &other.wit,
            ..opts
        },
        NOW,
        world.provider.as_ref(),
    )
    .unwrap();
    let fh = apply(&[], &forged);
    let r = RequestParts {
        headers: view(&fh),
        ..unsigned.clone()
    };
    assert_eq!(
        world
            .verifier()
            .verify_request(&r, b"", opts.audience, NOW)
            .unwrap_err()
            .kind(),
        "bad_signature"
    );

    // The signer's key must be the WIT's: a message signed with another key fails.
    let wrong_key = world.provider.generate_key(Algorithm::ES256).unwrap();
    let mismatched = sign_request(wrong_key.as_ref(), &unsigned, b"", &opts, NOW, world.provider.as_ref()).unwrap();
    let mh = apply(&[], &mismatched);
    let r = RequestParts {
        headers: view(&mh),
        ..unsigned
    };
    assert_eq!(
        world
            .verifier()
            .verify_request(&r, b"", opts.audience, NOW)
            .unwrap_err()
            .kind(),
        "bad_signature"
    );
}
