//! The provider's digests, AEAD and MAC against published test vectors, and the fully
//! specified signature algorithms (RFC 9864) against their polymorphic twins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lanyard_core::{AeadAlgorithm, Algorithm, DigestAlgorithm, MacAlgorithm, SigningKey};
use lanyard_crypto::{KeyPair, provider};
use lanyard_testing::hex::decode as hex;

#[test]
fn digests_match_fips_180_examples() {
    // FIPS 180-4 examples for "abc" (NIST CSRC "Examples with Intermediate Values").
    let p = provider();
    let cases = [
        (
            DigestAlgorithm::Sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            DigestAlgorithm::Sha384,
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
        ),
        (
            DigestAlgorithm::Sha512,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
    ];
    for (alg, expected) in cases {
        let one_shot = p.digest(alg, b"abc").unwrap();
        assert_eq!(one_shot.as_bytes(), hex(expected).as_slice(), "{alg}");
        assert_eq!(one_shot.as_bytes().len(), alg.output_len());
        // The same digest fed in pieces.
        let mut hasher = p.hasher(alg).unwrap();
        hasher.update(b"a");
        hasher.update(b"");
        hasher.update(b"bc");
        assert_eq!(hasher.finish(), one_shot, "{alg}");
    }
    assert_eq!(
        p.digest(DigestAlgorithm::Sha256, b"x").unwrap().as_bytes(),
        p.sha256(b"x")
    );
}

#[test]
fn aes_128_gcm_opens_the_sd_cwt_draft_example() {
    // draft-ietf-spice-sd-cwt (editor's copy 10965be) examples/aead-key.txt and
    // aead-claim-array.edn: the first disclosure, encrypted with an empty AAD.
    let p = provider();
    let key = hex("a061c27a3273721e210d031863ad81b6");
    let nonce = hex("95d0040fe650e5baf51c907c");
    let mut sealed = hex("563a7d9f0f65d40b751fbc3fcc408e8fe27c375b60a4727b1f1e9572c07992eb5ec5a9");
    sealed.extend(hex("9f4d37da32187528416ed7ee95e0625f"));
    let plaintext = hex("58218350bae611067bb823486797da1ebbb52f836b414243442d3132333435361901f5");
    let alg = AeadAlgorithm::Aes128Gcm;
    assert_eq!(p.aead_open(alg, &key, &nonce, b"", &sealed).unwrap(), plaintext);
    assert_eq!(p.aead_seal(alg, &key, &nonce, b"", &plaintext).unwrap(), sealed);

    let mut tampered = sealed.clone();
    tampered[3] ^= 1;
    assert_eq!(
        p.aead_open(alg, &key, &nonce, b"", &tampered).unwrap_err().kind(),
        "decryption_failed"
    );
    assert_eq!(
        p.aead_open(alg, &key, &nonce, b"aad", &sealed).unwrap_err().kind(),
        "decryption_failed"
    );
    assert_eq!(
        p.aead_open(AeadAlgorithm::Aes256Gcm, &key, &nonce, b"", &sealed)
            .unwrap_err()
            .kind(),
        "invalid_key"
    );
    assert_eq!(
        p.aead_open(alg, &key, &nonce[..8], b"", &sealed).unwrap_err().kind(),
        "invalid_key"
    );
}

#[test]
fn aes_256_gcm_round_trips_with_aad() {
    let p = provider();
    let (key, nonce) = ([7u8; 32], [9u8; 12]);
    let alg = AeadAlgorithm::Aes256Gcm;
    let sealed = p.aead_seal(alg, &key, &nonce, b"row-1", b"pkcs8").unwrap();
    assert_eq!(sealed.len(), 5 + alg.tag_len());
    assert_eq!(p.aead_open(alg, &key, &nonce, b"row-1", &sealed).unwrap(), b"pkcs8");
    assert!(p.aead_open(alg, &key, &nonce, b"row-2", &sealed).is_err());
}

#[test]
fn hmac_sha256_matches_rfc_4231_case_2() {
    let p = provider();
    let tag = p
        .mac(MacAlgorithm::HmacSha256, b"Jefe", b"what do ya want for nothing?")
        .unwrap();
    assert_eq!(
        tag.as_bytes(),
        hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843").as_slice()
    );
    p.mac_verify(
        MacAlgorithm::HmacSha256,
        b"Jefe",
        b"what do ya want for nothing?",
        tag.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        p.mac_verify(
            MacAlgorithm::HmacSha256,
            b"Jefe",
            b"what do ya want for something?",
            tag.as_bytes()
        )
        .unwrap_err()
        .kind(),
        "bad_signature"
    );
    assert!(
        p.mac_verify(
            MacAlgorithm::HmacSha256,
            b"Jefe",
            b"what do ya want for nothing?",
            &tag.as_bytes()[..16]
        )
        .is_err()
    );
}

#[test]
fn fully_specified_algorithms_sign_like_their_operation_and_stay_bound() {
    let p = provider();
    for alg in Algorithm::FULLY_SPECIFIED {
        let key = KeyPair::generate(alg).unwrap();
        assert_eq!(key.algorithm(), alg);
        let public = key.public_jwk();
        assert_eq!(public.alg.as_deref(), Some(alg.as_str()));
        assert_eq!(public.kty, alg.operation().key_type());
        let sig = key.sign(b"message").unwrap();
        p.verifying_key(&public, alg).unwrap().verify(b"message", &sig).unwrap();
        // A key declared for the fully specified identifier is not used under the
        // polymorphic one, and vice versa.
        assert_eq!(
            p.verifying_key(&public, alg.operation()).unwrap_err().kind(),
            "invalid_key"
        );
        // The same key material without `alg` verifies the same signature under the
        // operation's polymorphic identifier.
        let bare = lanyard_core::Jwk {
            alg: None,
            ..public.clone()
        };
        p.verifying_key(&bare, alg.operation())
            .unwrap()
            .verify(b"message", &sig)
            .unwrap();
        // PKCS#8 keys carry no algorithm; asking for the fully specified one binds it.
        let pem = key.to_pkcs8_pem().unwrap();
        let reloaded = KeyPair::from_pkcs8_pem(&pem, Some(alg)).unwrap();
        assert_eq!(reloaded.algorithm(), alg);
        let jwk = reloaded.private_jwk().unwrap();
        assert_eq!(KeyPair::from_jwk(&jwk).unwrap().algorithm(), alg);
    }
}
