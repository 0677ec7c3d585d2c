//! Key round trips through JWK and PEM, for every algorithm, and cross-checks between them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lanyard_core::{Algorithm, Jwk, SigningKey};
use lanyard_crypto::{KeyPair, provider};

#[test]
fn every_algorithm_round_trips_through_jwk_and_pem() {
    let p = provider();
    for alg in Algorithm::ALL {
        let key = KeyPair::generate(alg).unwrap().with_kid("k1");
        let sig = key.sign(b"message").unwrap();
        let public = key.public_jwk();
        assert_eq!(public.alg.as_deref(), Some(alg.as_str()));
        assert_eq!(public.kid.as_deref(), Some("k1"));
        assert!(!public.is_private());
        p.verifying_key(&public, alg).unwrap().verify(b"message", &sig).unwrap();
        assert_eq!(
            p.verifying_key(&public, alg)
                .unwrap()
                .verify(b"massage", &sig)
                .unwrap_err()
                .kind(),
            "bad_signature"
        );

        // JWK: private export, parse back, same public key, signs verifiably.
        let private = key.private_jwk().unwrap();
        let json = private.to_json();
        let reloaded = KeyPair::from_jwk(&Jwk::from_json(json.as_bytes()).unwrap()).unwrap();
        assert_eq!(reloaded.public_jwk(), public, "{alg}");
        let sig2 = reloaded.sign(b"m2").unwrap();
        p.verifying_key(&public, alg).unwrap().verify(b"m2", &sig2).unwrap();

        // PEM: PKCS#8 back to the same public key.
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let from_pem = KeyPair::from_pkcs8_pem(&pem, Some(alg)).unwrap().with_kid("k1");
        assert_eq!(from_pem.public_jwk(), public, "{alg}");
        assert!(key.public_pem().unwrap().starts_with("-----BEGIN PUBLIC KEY-----"));

        // Thumbprints ignore alg/kid and are stable.
        let bare = Jwk {
            alg: None,
            kid: None,
            ..public.clone()
        };
        assert_eq!(
            public.thumbprint(p.as_ref()).unwrap(),
            bare.thumbprint(p.as_ref()).unwrap()
        );
    }
}

#[test]
fn keys_refuse_the_wrong_algorithm() {
    let p = provider();
    let ec = KeyPair::generate(Algorithm::ES256).unwrap().public_jwk();
    for alg in [Algorithm::ES384, Algorithm::EdDSA, Algorithm::RS256] {
        assert_eq!(p.verifying_key(&ec, alg).unwrap_err().kind(), "invalid_key", "{alg}");
    }
    let rsa = KeyPair::generate(Algorithm::RS256).unwrap().public_jwk();
    // The JWK says RS256, so PS256 must not be accepted with it.
    assert!(p.verifying_key(&rsa, Algorithm::PS256).is_err());
    let bare_rsa = Jwk { alg: None, ..rsa };
    assert!(p.verifying_key(&bare_rsa, Algorithm::PS256).is_ok());
    // A public JWK cannot sign.
    assert_eq!(KeyPair::from_jwk(&ec).unwrap_err().kind(), "invalid_key");
}

#[test]
fn rfc7638_thumbprint_example() {
    // RFC 7638 §3.1.
    let jwk = Jwk::from_json(br#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#).unwrap();
    assert_eq!(
        jwk.thumbprint(provider().as_ref()).unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn spec_keys_load() {
    // draft-ietf-wimse-workload-creds "Example Workload's Key" (Ed25519) and the issuer
    // key of the examples generator: private parts match their public parts.
    let workload = Jwk::from_json(br#"{"kty":"OKP","crv":"Ed25519","x":"1CXXvflN_LVVsIsYXsUvB03JmlGWeCHqQVuouCF92bg","d":"sdLX8yCYKqo_XvGBLn-ZWeKT7llYeeQpgeCaXVxb5kY"}"#).unwrap();
    let k = KeyPair::from_jwk(&workload).unwrap();
    assert_eq!(k.algorithm(), Algorithm::EdDSA);
    let issuer = Jwk::from_json(br#"{"kty":"EC","kid":"June 5","crv":"P-256","x":"kXqnA2Op7hgd4zRMbw0iFcc_hDxUxhojxOFVGjE2gks","y":"n__VndPMR021-59UAs0b9qDTFT-EZtT6xSNs_xFskLo","d":"NRHs9bfMUcF49AV_NIoeh3UGopW4AXZLfv5G2px1WcY"}"#).unwrap();
    assert_eq!(KeyPair::from_jwk(&issuer).unwrap().algorithm(), Algorithm::ES256);
    // A mismatched public part is refused.
    let mut wrong = issuer.clone();
    wrong.x = workload.x.clone();
    assert!(KeyPair::from_jwk(&wrong).is_err());
}

#[test]
fn random_and_hash() {
    let p = provider();
    let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
    p.fill_random(&mut a).unwrap();
    p.fill_random(&mut b).unwrap();
    assert_ne!(a, b);
    // SHA-256("abc"), FIPS 180-2 example.
    assert_eq!(p.sha256(b"abc")[..4], [0xba, 0x78, 0x16, 0xbf]);
}

#[test]
fn public_pem_round_trips_to_the_same_jwk() {
    for alg in [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
        Algorithm::RS256,
    ] {
        let key = KeyPair::generate(alg).unwrap();
        let jwk = lanyard_crypto::jwk_from_public_pem(&key.public_pem().unwrap()).unwrap();
        let expected = Jwk {
            alg: None,
            ..key.public_jwk()
        };
        assert_eq!(jwk, expected, "{alg}");
    }
    assert_eq!(
        lanyard_crypto::jwk_from_public_pem("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n")
            .unwrap_err()
            .kind(),
        "invalid_key"
    );
}
