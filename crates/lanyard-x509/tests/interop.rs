//! Lanyard-issued certificates checked by independent implementations: OpenSSL
//! (`openssl verify`, `openssl x509 -text`, `openssl req` CSRs) and Python `cryptography`
//! (chain signatures, key match, and its X.509 path validator). A tool that is not
//! installed skips its test with a note; a tool that is installed must agree.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{id, root, td, write};
use lanyard_core::{Algorithm, Clock, SystemClock};
use lanyard_crypto::KeyPair;
use lanyard_x509::{SubjectKey, VerifyOptions, X509Authority, X509Bundle, X509BundleSet, verify_svid_chain};

fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        || Command::new(tool)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIP: {tool} is not installed");
    }
    found
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{cmd:?} unexpectedly succeeded:\n{text}");
    text
}

/// A root, an intermediate below it, a leaf from each, written as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    root: X509Authority,
    inter: X509Authority,
}

impl Pki {
    /// Uses the real clock: openssl and Python check validity against it.
    fn new() -> Pki {
        let now = SystemClock.now();
        let root = X509Authority::new_root(lanyard_crypto::provider(), &td("example.org"), None, 86_400, now).unwrap();
        let inter =
            X509Authority::new_intermediate(lanyard_crypto::provider(), &td("example.org"), &root, None, 86_400, now)
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "root.pem", &root.cert_pem());
        write(dir.path(), "inter.pem", &inter.cert_pem());
        Pki { dir, root, inter }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn openssl_verify(p: &Pki, leaf: &str, untrusted: bool, extra: &[&str]) -> String {
    let mut cmd = Command::new("openssl");
    cmd.arg("verify").args(extra).arg("-CAfile").arg(p.path("root.pem"));
    if untrusted {
        cmd.arg("-untrusted").arg(p.path("inter.pem"));
    }
    run(cmd.arg(p.path(leaf)))
}

#[test]
fn openssl_verifies_and_parses_issued_chains() {
    if !have("openssl") {
        return;
    }
    let p = Pki::new();
    let now = SystemClock.now();
    let from_root = p
        .root
        .issue_svid(&id("spiffe://example.org/direct"), SubjectKey::Generate, 3600, &[], now)
        .unwrap();
    write(p.dir.path(), "leaf1.pem", &from_root.chain_pem());
    let from_inter = p
        .inter
        .issue_svid(
            &id("spiffe://example.org/via-inter"),
            SubjectKey::Generate,
            3600,
            &[],
            now,
        )
        .unwrap();
    write(p.dir.path(), "leaf2.pem", &cert_only(&from_inter.chain_pem()));

    for purpose in [
        &[][..],
        &["-purpose", "sslclient"],
        &["-purpose", "sslserver"],
        &["-x509_strict"],
    ] {
        assert!(openssl_verify(&p, "leaf1.pem", false, purpose).contains("OK"));
        assert!(openssl_verify(&p, "leaf2.pem", true, purpose).contains("OK"));
    }
    // Without the intermediate, or against another root, OpenSSL refuses too.
    fails(
        Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(p.path("root.pem"))
            .arg(p.path("leaf2.pem")),
    );
    write(p.dir.path(), "other-root.pem", &root("example.org").cert_pem());
    fails(
        Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(p.path("other-root.pem"))
            .arg(p.path("leaf1.pem")),
    );

    let text = run(Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(p.path("leaf2.pem")));
    for needle in [
        "URI:spiffe://example.org/via-inter",
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
        "X509v3 Key Usage: critical",
        "Digital Signature",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        "Subject: O = Lanyard",
        "ecdsa-with-SHA256",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(
        !text.contains("Key Agreement") && !text.contains("Certificate Sign"),
        "{text}"
    );
    let text = run(Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(p.path("inter.pem")));
    for needle in [
        "URI:spiffe://example.org",
        "CA:TRUE",
        "Certificate Sign, CRL Sign",
        "O = Lanyard, CN = example.org CA, serialNumber = ",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // The PKCS#8 key is readable by OpenSSL and matches the leaf.
    write(p.dir.path(), "key.pem", &from_inter.key_pem().unwrap());
    let from_key = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(p.path("key.pem")));
    let from_cert = run(Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(p.path("leaf2.pem")));
    assert_eq!(from_key, from_cert);
}

/// The leaf alone from a chain PEM.
fn cert_only(chain_pem: &str) -> String {
    let end = "-----END CERTIFICATE-----\n";
    let i = chain_pem.find(end).unwrap() + end.len();
    chain_pem[..i].to_owned()
}

#[test]
fn openssl_verifies_rsa_and_p384_leaves() {
    if !have("openssl") {
        return;
    }
    let p = Pki::new();
    let now = SystemClock.now();
    for (name, alg) in [
        ("rsa.pem", Algorithm::RS256),
        ("p384.pem", Algorithm::ES384),
        ("ed.pem", Algorithm::EdDSA),
    ] {
        let key = KeyPair::generate(alg).unwrap();
        let svid = p
            .root
            .issue_svid(&id("spiffe://example.org/k"), SubjectKey::KeyPair(&key), 600, &[], now)
            .unwrap();
        write(p.dir.path(), name, &svid.chain_pem());
        assert!(openssl_verify(&p, name, false, &["-x509_strict", "-purpose", "sslclient"]).contains("OK"));
        let text = run(Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(p.path(name)));
        assert_eq!(text.contains("Key Encipherment"), alg == Algorithm::RS256, "{text}");
    }
}

#[test]
fn openssl_csr_is_issued_and_verifies() {
    if !have("openssl") {
        return;
    }
    let p = Pki::new();
    let dir = p.dir.path();
    run(Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/O=ignored/CN=also ignored"])
        .args(["-addext", "subjectAltName=URI:spiffe://example.org/from-openssl"])
        .arg("-keyout")
        .arg(dir.join("csr.key"))
        .arg("-out")
        .arg(dir.join("req.csr")));
    let pem_text = std::fs::read_to_string(dir.join("req.csr")).unwrap();
    let der = pem_contents(&pem_text);
    let svid = p
        .inter
        .issue_svid_from_csr(
            &der,
            &id("spiffe://example.org/from-openssl"),
            600,
            &[],
            SystemClock.now(),
        )
        .unwrap();
    write(dir, "csr-leaf.pem", &cert_only(&svid.chain_pem()));
    assert!(openssl_verify(&p, "csr-leaf.pem", true, &["-x509_strict"]).contains("OK"));
    let text = run(Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(p.path("csr-leaf.pem")));
    assert!(
        text.contains("Subject: O = Lanyard\n") && !text.contains("ignored"),
        "{text}"
    );
    // The certificate carries the CSR's key.
    let from_key = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(dir.join("csr.key")));
    let from_cert = run(Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(p.path("csr-leaf.pem")));
    assert_eq!(from_key, from_cert);

    // An OpenSSL CSR for another ID is refused.
    let e = p
        .inter
        .issue_svid_from_csr(
            &der,
            &id("spiffe://example.org/someone-else"),
            600,
            &[],
            SystemClock.now(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), "csr_identity");
}

fn pem_contents(text: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).unwrap()
}

/// Loads the chain with `cryptography`, checks each signature with the issuer's key, the
/// private key against the leaf, and runs its RFC 5280 client verifier.
const PY_CHECK: &str = r#"
import sys, datetime
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store

chain = x509.load_pem_x509_certificates(open(sys.argv[1], 'rb').read())
root = x509.load_pem_x509_certificate(open(sys.argv[2], 'rb').read())
key = serialization.load_pem_private_key(open(sys.argv[3], 'rb').read(), password=None)
leaf = chain[0]
issuers = chain[1:] + [root]
for cert, issuer in zip(chain, issuers):
    cert.verify_directly_issued_by(issuer)
root.verify_directly_issued_by(root)
assert key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
    leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
uris = san.get_values_for_type(x509.UniformResourceIdentifier)
assert uris == [sys.argv[4]], uris
bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
assert bc.critical and not bc.value.ca
ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku and x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku
verifier = PolicyBuilder().store(Store([root])).build_client_verifier()
verified = verifier.verify(leaf, chain[1:])
print("client-verifier subjects:", [str(s.value) for s in verified.subjects])
print("OK", uris[0])
"#;

#[test]
fn python_cryptography_loads_and_verifies_the_chain() {
    let python_ok = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !python_ok {
        eprintln!("SKIP: python3 with cryptography is not installed");
        return;
    }
    let p = Pki::new();
    let now = SystemClock.now();
    for (sid, inter) in [
        ("spiffe://example.org/py-direct", false),
        ("spiffe://example.org/py-inter", true),
    ] {
        let ca = if inter { &p.inter } else { &p.root };
        let svid = ca.issue_svid(&id(sid), SubjectKey::Generate, 3600, &[], now).unwrap();
        let chain = write(p.dir.path(), "py-chain.pem", &svid.chain_pem());
        let key = write(p.dir.path(), "py-key.pem", &svid.key_pem().unwrap());
        let out = run(Command::new("python3")
            .arg("-c")
            .arg(PY_CHECK)
            .arg(&chain)
            .arg(p.path("root.pem"))
            .arg(&key)
            .arg(sid));
        assert!(out.contains(&format!("OK {sid}")), "{out}");
        assert!(
            out.contains(&format!("client-verifier subjects: ['{sid}']")),
            "the client verifier reports the URI SAN: {out}"
        );
    }
}

#[test]
fn certificates_made_by_openssl_are_verified_by_lanyard() {
    // The other direction: an OpenSSL CA and leaf with a SPIFFE URI SAN.
    if !have("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ossl = |args: &[&str]| run(Command::new("openssl").current_dir(d).args(args));
    ossl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/O=OpenSSL CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-addext",
        "subjectAltName=URI:spiffe://example.org",
    ]);
    ossl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/O=OpenSSL leaf",
    ]);
    std::fs::write(
        d.join("ext.cnf"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:spiffe://example.org/openssl\n",
    )
    .unwrap();
    ossl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "leaf.pem",
    ]);
    let ca_pem = std::fs::read_to_string(d.join("ca.pem")).unwrap();
    let leaf_pem = std::fs::read_to_string(d.join("leaf.pem")).unwrap();
    let leaf_key = std::fs::read_to_string(d.join("leaf.key")).unwrap();
    let set = X509BundleSet::new().with(X509Bundle::from_pem(td("example.org"), &ca_pem).unwrap());
    let svid = lanyard_x509::X509Svid::from_pem(&leaf_pem, Some(&leaf_key)).unwrap();
    let v = verify_svid_chain(&svid.chain, &set, SystemClock.now(), &VerifyOptions::default()).unwrap();
    assert_eq!(v.spiffe_id.as_str(), "spiffe://example.org/openssl");
    // And the OpenSSL CA, loaded into Lanyard, issues SVIDs that OpenSSL accepts.
    let ca_key = std::fs::read_to_string(d.join("ca.key")).unwrap();
    let ca = X509Authority::from_pem(lanyard_crypto::provider(), &ca_pem, &ca_key).unwrap();
    assert_eq!(ca.trust_domain(), Some(&td("example.org")));
    let svid = ca
        .issue_svid(
            &id("spiffe://example.org/lanyard"),
            SubjectKey::Generate,
            600,
            &[],
            SystemClock.now(),
        )
        .unwrap();
    write(d, "lanyard-leaf.pem", &svid.chain_pem());
    assert!(
        run(Command::new("openssl").current_dir(d).args([
            "verify",
            "-x509_strict",
            "-CAfile",
            "ca.pem",
            "lanyard-leaf.pem"
        ]))
        .contains("OK")
    );
}
