//! The conformance harness: every case under `testdata/vectors/` runs here.
//!
//! Positive cases must verify (and match the listed claims); negative cases must fail
//! with exactly the error kind the case names. Known divergences are listed, with a
//! reason, in `testdata/vectors/exceptions.json`; a listed case that starts passing fails
//! the run so the list cannot go stale (the runner is `lanyard_testing::vectors`, shared
//! with the vector suites of other crates).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sd_cwt_fixtures;

use std::sync::Arc;

use lanyard_core::cbor;
use lanyard_core::cose::CoseKey;
use lanyard_core::httpsig::{
    self, HttpSigPolicy, RequestParts, ResponseParts, SignatureCheck, verify_request_signature,
    verify_response_signature,
};
use lanyard_core::jose::decode_unverified;
use lanyard_core::oauth::{
    AccessTokenPolicy, AccessTokenVerifier, ClientAssertionPolicy, DpopNonce, DpopPolicy, DpopRequest, DpopVerifier,
    Form, FormLimits, PrivateKeyJwtVerifier, SpiffeAssertionPolicy, SpiffeAssertionVerifier, TokenRequest,
    VerificationKeys,
};
use lanyard_core::spice::glue_id::GlueId;
use lanyard_core::spice::oidc_claims;
use lanyard_core::spice::sd_cwt::{
    AeadKey, DigestInput, HolderSdCwt, IssuerKey, KbtParams, PresentationContext, SdCwtIssuer, SdCwtPolicy,
    SdCwtVerifier,
};
use lanyard_core::wimse::{CarriageConfig, extract_credentials};
use lanyard_core::{
    AeadAlgorithm, Algorithm, CryptoProvider, DigestAlgorithm, Error, InMemoryReplayCache, Jwk, JwkSet, JwtSvidPolicy,
    JwtSvidVerifier, KeyUse, ProofTokens, TrustStore, UnixTime, VerifyingKey, WitPolicy, WitVerifier, WorkloadId,
    WptPolicy, WptVerifier,
};
use lanyard_testing::vectors::{expect_outcome, field as s, load, run};
use sd_cwt_fixtures::{DeterministicSigner, FixedSalts, hex, unhex};
use serde_json::{Map, Value};

fn check_identifier(case: &Value) -> Result<(), String> {
    let input = s(case, "input").ok_or("no input")?;
    match (WorkloadId::parse(input), case["valid"].as_bool()) {
        (Ok(id), Some(true)) => {
            if Some(id.trust_domain()) != s(case, "trust_domain") {
                return Err(format!("trust domain {:?}", id.trust_domain()));
            }
            if Some(id.path()) != s(case, "path") {
                return Err(format!("path {:?}", id.path()));
            }
            if id.as_str() != input {
                return Err("not byte-identical".into());
            }
            Ok(())
        }
        (Err(e), Some(false)) if Some(e.kind.as_str()) == s(case, "error") => Ok(()),
        (Err(e), Some(false)) => Err(format!("expected {}, got {}", s(case, "error").unwrap_or("?"), e.kind)),
        (Ok(_), _) => Err("accepted".into()),
        (Err(e), _) => Err(format!("rejected: {e}")),
    }
}

#[test]
fn spiffe_identifiers() {
    run("identifiers/spiffe.json", check_identifier);
}

#[test]
fn wimse_identifiers() {
    run("identifiers/wimse.json", check_identifier);
}

struct Fixture {
    keys: Map<String, Value>,
}

impl Fixture {
    fn new() -> Fixture {
        match load("keys.json") {
            Value::Object(keys) => Fixture { keys },
            _ => panic!("keys.json must be an object"),
        }
    }

    fn jwk(&self, name: &str) -> Jwk {
        let v = self.keys.get(name).unwrap_or_else(|| panic!("no key {name}"));
        Jwk::from_json(v.to_string().as_bytes()).expect("key parses")
    }

    /// A store trusting the case's anchors (public parts only) for its trust domain.
    fn store(&self, case: &Value, key_use: KeyUse) -> Arc<TrustStore> {
        let store = Arc::new(TrustStore::new(lanyard_crypto::provider()));
        let td = s(case, "trust_domain").expect("trust_domain");
        for name in case["anchors"].as_array().into_iter().flatten() {
            let jwk = self.jwk(name.as_str().expect("anchor name")).to_public();
            store.add_key(td, key_use, &jwk).expect("anchor loads");
        }
        store
    }

    fn wit_verifier(&self, case: &Value) -> WitVerifier {
        let policy = match s(case, "profile") {
            Some("wit-svid") => WitPolicy::wit_svid(),
            _ => WitPolicy::wimse(),
        };
        WitVerifier::new(self.store(case, KeyUse::WitSvid), policy)
    }
}

fn now(case: &Value) -> UnixTime {
    UnixTime(case["now"].as_u64().expect("now"))
}

fn check_claims(case: &Value, claims: &Map<String, Value>) -> Result<(), String> {
    for (name, expected) in case["claims"].as_object().into_iter().flatten() {
        if claims.get(name) != Some(expected) {
            return Err(format!("claim {name}: expected {expected}, got {:?}", claims.get(name)));
        }
    }
    Ok(())
}

fn check_decode(case: &Value) -> Result<(), String> {
    let decoded = decode_unverified(s(case, "token").ok_or("no token")?).map_err(|e| e.to_string())?;
    check_claims(case, &decoded.claims)
}

#[test]
fn wit_vectors() {
    let fx = Fixture::new();
    run("tokens/wit.json", |case| match s(case, "kind") {
        Some("decode") => check_decode(case),
        Some("wit") => {
            let token = s(case, "token").ok_or("no token")?;
            expect_outcome(case, fx.wit_verifier(case).verify(token, now(case)), |wit| {
                check_claims(case, &wit.claims)
            })
        }
        other => Err(format!("unexpected kind {other:?}")),
    });
}

/// The tokens of a `wit+wpt` case, or of a `wpt-request` case's headers (read as a
/// receiver reads them, so carriage errors are the case's outcome).
fn presented_tokens<'c>(
    case: &'c Value,
    headers: &'c [(String, String)],
    carriage: &CarriageConfig,
) -> Result<ProofTokens<'c>, Error> {
    match s(case, "kind") {
        Some("wpt-request") => {
            let found = extract_credentials(headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())), carriage)?;
            Ok(ProofTokens {
                wit: found.wit,
                wpt: found.wpt,
                access_token: found.access_token,
                txn_token: found.txn_token,
                other_tokens: &[],
            })
        }
        _ => Ok(ProofTokens {
            wit: s(case, "wit").unwrap_or_default(),
            wpt: s(case, "wpt").unwrap_or_default(),
            access_token: s(case, "access_token"),
            txn_token: s(case, "txn_token"),
            other_tokens: &[],
        }),
    }
}

#[test]
fn wpt_vectors() {
    let fx = Fixture::new();
    run("tokens/wpt.json", |case| {
        let other: Vec<(String, String)> = case["other_tokens"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let other: Vec<(&str, &str)> = other.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let headers = header_pairs(&case["request"]);
        // "compat": "wpt-01" turns on the draft-ietf-wimse-wpt-01 switch; otherwise the -02 rules.
        let wpt01 = match s(case, "compat") {
            None => false,
            Some("wpt-01") => true,
            Some(other) => return Err(format!("unknown compat {other:?}")),
        };
        let verifier = WptVerifier::new(
            fx.wit_verifier(case),
            WptPolicy {
                accept_wpt01: wpt01,
                ..WptPolicy::default()
            },
            Arc::new(InMemoryReplayCache::new(1024)),
        );
        let audience = s(case, "audience").ok_or("no audience")?;
        let carriage = CarriageConfig {
            accept_legacy_header: wpt01,
        };
        let tokens = match presented_tokens(case, &headers, &carriage) {
            Ok(t) => ProofTokens {
                other_tokens: &other,
                ..t
            },
            Err(e) => return expect_outcome(case, Err::<(), _>(e), |()| Ok(())),
        };
        let result = verifier.verify(&tokens, audience, now(case));
        expect_outcome(case, result, |proof| {
            let claims = decode_unverified(tokens.wpt).map_err(|e| e.to_string())?.claims;
            check_claims(case, &claims)?;
            // The same proof a second time is a replay.
            match verifier.verify(&tokens, audience, now(case)) {
                Err(e) if e.kind() == "replay" => Ok(()),
                other => Err(format!(
                    "second use of {} was not refused as a replay: {other:?}",
                    proof.wpt.jti
                )),
            }
        })
    });
}

#[test]
fn jwt_svid_vectors() {
    let fx = Fixture::new();
    run("tokens/jwt_svid.json", |case| match s(case, "kind") {
        Some("decode") => check_decode(case),
        Some("jwt-svid") => {
            let verifier = JwtSvidVerifier::new(fx.store(case, KeyUse::JwtSvid), JwtSvidPolicy::default());
            let result = verifier.verify(
                s(case, "token").ok_or("no token")?,
                s(case, "audience").ok_or("no audience")?,
                now(case),
            );
            expect_outcome(case, result, |svid| check_claims(case, &svid.claims))
        }
        other => Err(format!("unexpected kind {other:?}")),
    });
}

/// The SD-CWT draft's keys and the verifier set-up shared by the `sd_cwt` cases.
struct SdCwtFixture {
    provider: Arc<dyn CryptoProvider>,
    keys: Map<String, Value>,
    issuer_public: Arc<dyn VerifyingKey>,
    holder: CoseKey,
}

impl SdCwtFixture {
    fn new(doc: &Value) -> SdCwtFixture {
        let provider = lanyard_crypto::provider();
        let keys = doc["keys"].as_object().expect("keys").clone();
        let jwk = |name: &str| Jwk::from_json(keys[name].to_string().as_bytes()).expect("key");
        let issuer_public = provider
            .verifying_key(&jwk("issuer").to_public(), Algorithm::ES384)
            .expect("issuer key");
        let holder = CoseKey::from_jwk(&jwk("holder").to_public()).expect("holder key");
        SdCwtFixture {
            provider,
            keys,
            issuer_public,
            holder,
        }
    }

    fn private(&self, name: &str) -> Jwk {
        Jwk::from_json(self.keys[name].to_string().as_bytes()).expect("key")
    }

    fn policy(case: &Value) -> SdCwtPolicy {
        let mut policy = SdCwtPolicy::default();
        if let Some(max) = case["policy"]["max_size"].as_u64() {
            policy.max_size = max as usize;
        }
        if case["policy"]["digest_input"].as_str() == Some("content") {
            policy.digest_input = DigestInput::ContentOnly;
        }
        policy
    }

    fn verifier(&self, case: &Value) -> SdCwtVerifier {
        let issuer = IssuerKey::new(self.issuer_public.clone())
            .with_kid(b"https://issuer.example/cose-key3".to_vec())
            .with_issuer("https://issuer.example");
        let mut verifier = SdCwtVerifier::new(self.provider.clone(), Self::policy(case)).with_issuer(issuer);
        for key in case["aead"].as_array().into_iter().flatten() {
            verifier = verifier.with_aead_key(AeadKey::new(
                AeadAlgorithm::Aes128Gcm,
                unhex(key["key"].as_str().expect("aead key")),
                key["context"].as_str().map(cbor::Value::text),
            ));
        }
        verifier
    }
}

/// The restored claims must be exactly the case's (compared as deterministic CBOR).
fn check_restored(case: &Value, claims: &cbor::Value) -> Result<(), String> {
    let want = s(case, "claims").ok_or("a valid case needs claims")?;
    let got = hex(&claims.to_vec());
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "restored claims differ:\n got {}\nwant {}",
            cbor::to_diagnostic(claims),
            s(case, "claims_edn").unwrap_or(want)
        ))
    }
}

fn bytes_equal(what: &str, got: &[u8], want: &str) -> Result<(), String> {
    if hex(got) == want {
        Ok(())
    } else {
        Err(format!("{what} differs:\n got {}\nwant {want}", hex(got)))
    }
}

#[test]
fn sd_cwt_vectors() {
    let fx = SdCwtFixture::new(&load("sd_cwt/cases.json"));
    run("sd_cwt/cases.json", |case| {
        let now = UnixTime(case["now"].as_u64().unwrap_or(0));
        match s(case, "kind") {
            Some("verify") => {
                let token = unhex(s(case, "token").ok_or("no token")?);
                let nonce = s(case, "nonce").map(unhex);
                let context = PresentationContext {
                    audience: s(case, "audience").ok_or("no audience")?,
                    nonce: nonce.as_deref(),
                };
                let result = fx.verifier(case).verify(&token, &context, now);
                expect_outcome(case, result, |v| check_restored(case, &v.claims))
            }
            Some("holder") => {
                let token = unhex(s(case, "token").ok_or("no token")?);
                let result = HolderSdCwt::receive(
                    &token,
                    fx.issuer_public.as_ref(),
                    &fx.holder,
                    fx.provider.as_ref(),
                    &SdCwtFixture::policy(case),
                    now,
                );
                expect_outcome(case, result, |h| check_restored(case, h.claims()))
            }
            Some("issue") => {
                let input = cbor::decode(&unhex(s(case, "input").ok_or("no input")?)).map_err(|e| e.to_string())?;
                let alg = Algorithm::from_cose_id(case["alg"].as_i64().unwrap_or(0)).map_err(|e| e.to_string())?;
                let signer = Arc::new(DeterministicSigner::from_jwk(&fx.private("issuer"), alg));
                let sd_alg = DigestAlgorithm::from_cose_id(case["sd_alg"].as_i64().unwrap_or(0)).ok_or("sd_alg")?;
                let issuer = SdCwtIssuer::new(fx.provider.clone(), signer)
                    .with_kid(unhex(s(case, "kid").ok_or("no kid")?))
                    .with_sd_alg(sd_alg);
                let mut salts =
                    FixedSalts::from_hex(case["salts"].as_array().into_iter().flatten().filter_map(Value::as_str));
                let result = issuer.issue(&input, &mut salts);
                expect_outcome(case, result, |issued| {
                    bytes_equal(
                        "the issued SD-CWT",
                        &issued.to_vec(),
                        s(case, "token").unwrap_or_default(),
                    )
                })
            }
            Some("present") => {
                let token = unhex(s(case, "token").ok_or("no token")?);
                let policy = SdCwtPolicy::default();
                let held = HolderSdCwt::receive(
                    &token,
                    fx.issuer_public.as_ref(),
                    &fx.holder,
                    fx.provider.as_ref(),
                    &policy,
                    now,
                )
                .map_err(|e| format!("receive: {e}"))?;
                let select: Vec<usize> = case["select"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_u64)
                    .map(|i| i as usize)
                    .collect();
                let cnonce = s(case, "cnonce").map(unhex);
                let params = KbtParams {
                    audience: s(case, "audience").ok_or("no audience")?,
                    issued_at: case["iat"].as_u64().map(UnixTime),
                    cnonce: cnonce.as_deref(),
                    ..KbtParams::default()
                };
                let signer = DeterministicSigner::from_jwk(&fx.private("holder"), Algorithm::ES256);
                let result = held.present(&select, &params, &signer);
                expect_outcome(case, result, |kbt| {
                    bytes_equal("the SD-KBT", &kbt, s(case, "kbt").unwrap_or_default())
                })
            }
            other => Err(format!("unexpected kind {other:?}")),
        }
    });
}

#[test]
fn glue_id_vectors() {
    run("spice/glue_id.json", |case| {
        let input = s(case, "input").ok_or("no input")?;
        match (GlueId::parse(input), case["valid"].as_bool()) {
            (Ok(id), Some(true)) => {
                for (what, got, want) in [
                    ("canonical form", id.as_str(), s(case, "canonical")),
                    ("authority", id.authority(), s(case, "authority")),
                    ("external identifier", id.external_id(), s(case, "external")),
                ] {
                    if Some(got) != want {
                        return Err(format!("{what} {got:?}, want {want:?}"));
                    }
                }
                if id.equivalent_urn().as_deref() != s(case, "equivalent") {
                    return Err(format!("equivalent URN {:?}", id.equivalent_urn()));
                }
                match (GlueId::parse_canonical(input), s(case, "strict")) {
                    (Ok(strict), Some("valid")) if strict == id => Ok(()),
                    (Err(e), Some(kind)) if e.kind.as_str() == kind => Ok(()),
                    (other, want) => Err(format!("parse_canonical gave {other:?}, want {want:?}")),
                }
            }
            (Err(e), Some(false)) if Some(e.kind.as_str()) == s(case, "error") => Ok(()),
            (Err(e), Some(false)) => Err(format!(
                "expected {}, got {}",
                s(case, "error").unwrap_or("?"),
                e.kind.as_str()
            )),
            (Ok(id), _) => Err(format!("accepted as {id}")),
            (Err(e), _) => Err(format!("rejected: {e}")),
        }
    });
}

#[test]
fn oidc_cwt_vectors() {
    run("spice/oidc_cwt.json", |case| {
        let json = case["json"].as_object().ok_or("no json")?;
        expect_outcome(case, oidc_claims::json_to_cbor(json), |cwt| {
            bytes_equal("the CWT claims", &cwt.to_vec(), s(case, "cbor").unwrap_or_default())?;
            // And back: the same JWT claims object.
            let back = oidc_claims::cbor_to_json(&cwt).map_err(|e| e.to_string())?;
            if &back == json {
                Ok(())
            } else {
                Err(format!("CBOR to JSON gave {back:?}"))
            }
        })
    });
}

fn header_pairs(message: &Value) -> Vec<(String, String)> {
    message["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            (
                h[0].as_str().unwrap_or_default().to_owned(),
                h[1].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn view(headers: &[(String, String)]) -> Vec<(&str, &[u8])> {
    headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect()
}

/// draft-ietf-wimse-http-signature-07 cases: a request (checked for `audience`) or a
/// response to it (checked against `request_nonce`), with the message-signature key the
/// case names; the default policy, so -06 forms are refused.
#[test]
fn httpsig_vectors() {
    let fx = Fixture::new();
    let provider = lanyard_crypto::provider();
    run("httpsig/wimse_07.json", |case| {
        let (req, resp) = (&case["request"], &case["response"]);
        let req_headers = header_pairs(req);
        let request = RequestParts {
            method: req["method"].as_str().ok_or("no method")?,
            target: req["target"].as_str().ok_or("no target")?,
            authority: req["authority"].as_str(),
            scheme: Some("https"),
            headers: view(&req_headers),
        };
        let signer = s(
            case,
            if s(case, "message") == Some("response") {
                "callee_key"
            } else {
                "caller_key"
            },
        )
        .ok_or("no key")?;
        let key = provider
            .verifying_key(&fx.jwk(signer).to_public(), lanyard_core::Algorithm::EdDSA)
            .map_err(|e| e.to_string())?;
        let policy = HttpSigPolicy::default();
        let check = SignatureCheck {
            key: key.as_ref(),
            policy: &policy,
            now: now(case),
            provider: provider.as_ref(),
        };
        match s(case, "message") {
            Some("request") => {
                let body = req["body"].as_str().unwrap_or_default().as_bytes();
                let result =
                    verify_request_signature(&request, body, s(case, "audience").ok_or("no audience")?, &check);
                expect_outcome(case, result, |_| {
                    let base = httpsig::request_signature_base(&request).map_err(|e| e.to_string())?;
                    (Some(base.as_str()) == s(case, "signature_base"))
                        .then_some(())
                        .ok_or(format!("base {base}"))
                })
            }
            Some("response") => {
                let resp_headers = header_pairs(resp);
                let response = ResponseParts {
                    status: resp["status"]
                        .as_u64()
                        .and_then(|s| u16::try_from(s).ok())
                        .ok_or("no status")?,
                    headers: view(&resp_headers),
                };
                let body = resp["body"].as_str().unwrap_or_default().as_bytes();
                let result = verify_response_signature(&response, body, &request, s(case, "request_nonce"), &check);
                expect_outcome(case, result, |_| {
                    let base = httpsig::response_signature_base(&response, &request).map_err(|e| e.to_string())?;
                    (Some(base.as_str()) == s(case, "signature_base"))
                        .then_some(())
                        .ok_or(format!("base {base}"))
                })
            }
            other => Err(format!("unknown message {other:?}")),
        }
    });
}

// ---------------------------------------------------------------------------------------
// OAuth (testdata/vectors/oauth/, written by oauth/generate.py)
// ---------------------------------------------------------------------------------------

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

/// `private_key_jwt` cases: the client's registered keys are the named ones (public parts);
/// `jwt_spiffe` cases: the named anchors are the trust domain's JWT-SVID keys.
#[test]
fn oauth_client_assertion_vectors() {
    let fx = Fixture::new();
    let provider = lanyard_crypto::provider();
    run("oauth/client_assertion.json", |case| {
        let token = s(case, "token").ok_or("no token")?;
        let issuer = s(case, "issuer").ok_or("no issuer")?;
        match s(case, "kind") {
            Some("private_key_jwt") => {
                let client_id = s(case, "client_id").ok_or("no client_id")?;
                let jwks = JwkSet {
                    keys: strings(&case["client_keys"])
                        .iter()
                        .map(|n| fx.jwk(n).to_public())
                        .collect(),
                };
                let keys =
                    VerificationKeys::from_jwks(provider.as_ref(), client_id, &jwks).map_err(|e| e.to_string())?;
                let verifier = PrivateKeyJwtVerifier::new(issuer, ClientAssertionPolicy::default());
                expect_outcome(case, verifier.verify(token, client_id, &keys, now(case)), |a| {
                    check_claims(case, &a.claims)?;
                    ensure(a.client_id == client_id, || format!("client {}", a.client_id))
                })
            }
            Some("jwt_spiffe") => {
                let verifier = SpiffeAssertionVerifier::new(
                    fx.store(case, KeyUse::JwtSvid),
                    issuer,
                    SpiffeAssertionPolicy::default(),
                );
                expect_outcome(case, verifier.verify(token, now(case)), |a| {
                    ensure(Some(a.spiffe_id.as_str()) == s(case, "spiffe_id"), || {
                        format!("spiffe_id {}", a.spiffe_id)
                    })
                })
            }
            other => Err(format!("unexpected kind {other:?}")),
        }
    });
}

/// RFC 9449 proofs against the case's request (method, URI, access token, accepted
/// nonces) with the default policy (300 s window, 60 s leeway).
#[test]
fn oauth_dpop_vectors() {
    let verifier = DpopVerifier::new(lanyard_crypto::provider(), DpopPolicy::default());
    run("oauth/dpop.json", |case| {
        let req = &case["request"];
        let nonces = strings(&req["nonces"]);
        let nonces: Vec<&str> = nonces.iter().map(String::as_str).collect();
        let request = DpopRequest {
            method: req["method"].as_str().ok_or("no method")?,
            uri: req["uri"].as_str().ok_or("no uri")?,
            access_token: req["access_token"].as_str(),
            nonce: if req.get("nonces").is_some() {
                DpopNonce::Required(&nonces)
            } else {
                DpopNonce::NotRequired
            },
        };
        let result = verifier.verify(s(case, "proof").ok_or("no proof")?, &request, now(case));
        expect_outcome(case, result, |p| {
            ensure(Some(p.jkt.as_str()) == s(case, "jkt"), || format!("jkt {}", p.jkt))?;
            ensure(Some(p.jti.as_str()) == s(case, "jti"), || format!("jti {}", p.jti))
        })
    });
}

/// RFC 9068 tokens for the case's resource (`audience`) from `issuer`, verified with the
/// named keys (a `kid` in the entry replaces the key's own).
#[test]
fn oauth_access_token_vectors() {
    let fx = Fixture::new();
    let provider = lanyard_crypto::provider();
    run("oauth/access_token.json", |case| {
        let jwks = JwkSet {
            keys: case["as_keys"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|entry| {
                    let mut jwk = fx.jwk(entry["key"].as_str().unwrap_or_default()).to_public();
                    if let Some(kid) = entry["kid"].as_str() {
                        jwk.kid = Some(kid.to_owned());
                    }
                    jwk
                })
                .collect(),
        };
        let issuer = s(case, "issuer").ok_or("no issuer")?;
        let keys = VerificationKeys::from_jwks(provider.as_ref(), issuer, &jwks).map_err(|e| e.to_string())?;
        let verifier = AccessTokenVerifier::new(AccessTokenPolicy::new(
            issuer,
            s(case, "audience").ok_or("no audience")?,
        ));
        let result = verifier.verify(s(case, "token").ok_or("no token")?, &keys, now(case));
        expect_outcome(case, result, |at| {
            // The typed claims serialize back to exactly the token's claims.
            let Value::Object(typed) = serde_json::to_value(&at.claims).map_err(|e| e.to_string())? else {
                return Err("claims are not an object".into());
            };
            ensure(Some(&Value::Object(typed.clone())) == case.get("claims"), || {
                format!("typed claims {typed:?}")
            })
        })
    });
}

#[test]
fn oauth_thumbprint_vectors() {
    let provider = lanyard_crypto::provider();
    run("oauth/thumbprints.json", |case| {
        let jwk = Jwk::from_json(case["jwk"].to_string().as_bytes()).map_err(|e| e.to_string())?;
        let thumbprint = jwk.thumbprint(provider.as_ref()).map_err(|e| e.to_string())?;
        ensure(Some(thumbprint.as_str()) == s(case, "thumbprint"), || {
            thumbprint.clone()
        })
    });
}

/// Form bodies: the parameters after strict parsing, or the error; with `grant_type`, the
/// token request read from them (`request_error` when that must fail).
#[test]
fn oauth_form_vectors() {
    run("oauth/form.json", |case| {
        let body = s(case, "body").ok_or("no body")?;
        expect_outcome(case, Form::parse(body.as_bytes(), FormLimits::default()), |form| {
            let params: Map<String, Value> = form
                .names()
                .map(|n| (n.to_owned(), Value::from(form.values(n).to_vec())))
                .collect();
            ensure(Some(&Value::Object(params.clone())) == case.get("params"), || {
                format!("params {params:?}")
            })?;
            let Some(grant_type) = s(case, "grant_type") else {
                return Ok(());
            };
            match (TokenRequest::from_form(&form), s(case, "request_error")) {
                (Ok(r), None) => ensure(r.grant.grant_type().as_str() == grant_type, || {
                    format!("grant {}", r.grant.grant_type())
                }),
                (Err(e), Some(kind)) => ensure(e.kind() == kind, || format!("request error {}", e.kind())),
                (Ok(_), Some(kind)) => Err(format!("token request accepted, expected {kind}")),
                (Err(e), None) => Err(format!("token request refused: {} ({e})", e.kind())),
            }
        })
    });
}
