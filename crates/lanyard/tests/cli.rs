//! The `lanyard` CLI end to end: the README walkthrough exactly as written, the spec's
//! example tokens, and the failure paths (reason printed, non-zero exit).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_lanyard")).parent().unwrap().to_path_buf()
}

fn sh(dir: &Path, script: &str) -> Output {
    let path = format!("{}:{}", bin_dir().display(), std::env::var("PATH").unwrap_or_default());
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .output()
        .unwrap()
}

fn lanyard(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lanyard"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A shell command from the README, and the failure text its following comment promises.
struct Step {
    command: String,
    expected_failure: Option<String>,
}

/// The commands of the README's walkthrough, in order (setup lines that build or change
/// directory are left out: the test runs the binary under test in a fresh directory).
fn readme_steps() -> Vec<Step> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let start = readme
        .find("## Tokens by hand, step by step")
        .expect("walkthrough section");
    let end = start + readme[start..].find("## Using the library").expect("section after it");
    let mut steps: Vec<Step> = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in readme[start..end].lines() {
        let line = line.trim();
        if line.starts_with("```") {
            in_block = line == "```sh";
            continue;
        }
        if !in_block || line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim();
            if let (Some(last), true) = (steps.last_mut(), comment.starts_with("invalid")) {
                last.expected_failure = Some(comment.to_owned());
            }
            continue;
        }
        let (body, continued) = match line.strip_suffix('\\') {
            Some(b) => (b.trim_end(), true),
            None => (line, false),
        };
        let body = body.split(" # ").next().unwrap_or(body);
        pending.push_str(body);
        pending.push(' ');
        if !continued {
            let command = std::mem::take(&mut pending).trim().to_owned();
            let setup = ["cargo build", "export PATH", "mkdir -p /tmp/lanyard-demo"];
            if !setup.iter().any(|s| command.starts_with(s)) {
                steps.push(Step {
                    command,
                    expected_failure: None,
                });
            }
        }
    }
    steps
}

#[test]
fn readme_walkthrough_works_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let steps = readme_steps();
    assert!(steps.len() >= 10, "walkthrough has {} commands", steps.len());
    for step in steps {
        let out = sh(dir.path(), &step.command);
        match &step.expected_failure {
            None => assert!(
                out.status.success(),
                "README command failed: {}\nstdout: {}\nstderr: {}",
                step.command,
                text(&out.stdout),
                text(&out.stderr)
            ),
            Some(expected) => {
                assert_eq!(out.status.code(), Some(1), "{} should fail", step.command);
                assert!(
                    text(&out.stderr).contains(expected.as_str()),
                    "stderr of {:?} lacks {expected:?}: {}",
                    step.command,
                    text(&out.stderr)
                );
            }
        }
        if step.command.starts_with("lanyard token verify") && step.expected_failure.is_none() {
            assert!(text(&out.stdout).starts_with("valid "), "{}", text(&out.stdout));
        }
    }
}

const A1_WIT: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6Ikp1bmUgNSIsInR5cCI6IndpdCtqd3QifQ.eyJjbmYiOnsiandrIjp7ImFsZyI6IkVkRFNBIiwiY3J2IjoiRWQyNTUxOSIsImt0eSI6Ik9LUCIsIngiOiIxQ1hYdmZsTl9MVlZzSXNZWHNVdkIwM0ptbEdXZUNIcVFWdW91Q0Y5MmJnIn19LCJleHAiOjE3NDU1MTI1MTAsImlhdCI6MTc0NTUwODkxMCwianRpIjoieC1fMUNUTDJjY2EzQ1NFNGN3Yl9sIiwic3ViIjoid2ltc2U6Ly9leGFtcGxlLmNvbS9zcGVjaWZpYy13b3JrbG9hZCJ9.6KraSQUxWdl9dxFQ3Fj6dPY0Vi88OkwFwZpAIOhLeq6AbXAnLLQgOp8U9UDGcBuYF3KiNv6oKQD1ZWAzrMZOJw";
const JUNE5: &str = r#"{"kty":"EC","kid":"June 5","crv":"P-256","x":"kXqnA2Op7hgd4zRMbw0iFcc_hDxUxhojxOFVGjE2gks","y":"n__VndPMR021-59UAs0b9qDTFT-EZtT6xSNs_xFskLo"}"#;

fn verify_json(dir: &Path, token: &str, now: &str) -> (Option<i32>, serde_json::Value) {
    let out = lanyard(
        dir,
        &[
            "token",
            "verify",
            token,
            "--trust-domain",
            "example.com",
            "--jwks",
            "june5.jwk",
            "--now",
            now,
            "--json",
        ],
    );
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).expect("JSON output"),
    )
}

#[test]
fn spec_example_wit_verifies_and_failures_say_why() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("june5.jwk"), JUNE5).unwrap();

    let (code, out) = verify_json(dir.path(), A1_WIT, "1745509000");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["type"], "WIT");
    assert_eq!(out["details"]["subject"], "wimse://example.com/specific-workload");

    let (code, out) = verify_json(dir.path(), A1_WIT, "1745512600");
    assert_eq!(code, Some(1));
    assert_eq!(out["error"]["kind"], "expired");

    // Change one character in the middle of the signature (the last one carries padding
    // bits, so changing it would be a base64url error instead).
    let mut chars: Vec<char> = A1_WIT.chars().collect();
    let i = chars.len() - 20;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let (code, out) = verify_json(dir.path(), &tampered, "1745509000");
    assert_eq!(code, Some(1));
    assert_eq!(out["error"]["kind"], "bad_signature");

    let (code, out) = verify_json(dir.path(), "not-a-token", "1745509000");
    assert_eq!(code, Some(1));
    assert_eq!(out["error"]["kind"], "malformed");

    let huge = format!("{A1_WIT}{}", "A".repeat(20_000));
    let (code, out) = verify_json(dir.path(), &huge, "1745509000");
    assert_eq!(code, Some(1));
    assert_eq!(out["error"]["kind"], "too_large");

    // Human output names the reason on stderr.
    let out = lanyard(
        dir.path(),
        &[
            "token",
            "verify",
            A1_WIT,
            "--trust-domain",
            "example.org",
            "--jwks",
            "june5.jwk",
            "--now",
            "1745509000",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("reason: unknown_key"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn inspect_says_it_did_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let out = lanyard(dir.path(), &["token", "inspect", A1_WIT]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("NOT VERIFIED"), "{stdout}");
    assert!(stdout.contains("wimse://example.com/specific-workload"));
    let out = lanyard(dir.path(), &["token", "inspect", "--json", A1_WIT]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], false);
    assert_eq!(v["header"]["typ"], "wit+jwt");
}

#[test]
fn usage_errors_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = sh(
        dir.path(),
        "lanyard key generate --alg ES256 --out k && lanyard key generate --out k",
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("must not exist yet"),
        "{}",
        text(&out.stderr)
    );

    let out = lanyard(dir.path(), &["key", "generate", "--alg", "HS256"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("HMAC"), "{}", text(&out.stderr));

    let out = lanyard(
        dir.path(),
        &[
            "wit",
            "issue",
            "--key",
            "k.jwk",
            "--sub",
            "spiffe://Example.org/x",
            "--cnf",
            "k.pub.jwk",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not a valid SPIFFE ID"),
        "{}",
        text(&out.stderr)
    );

    // A JWT-SVID verified without --aud says what is missing.
    let out = sh(
        dir.path(),
        "lanyard jwt-svid issue --key k.jwk --sub spiffe://example.org/a --aud x > s.jwt && \
         lanyard token verify @s.jwt --trust-domain example.org --jwks k.pub.jwk",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--aud"), "{}", text(&out.stderr));
}

#[test]
fn secrets_are_written_owner_only() {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(lanyard(dir.path(), &["key", "generate", "--out", "w"]).status.success());
        for (file, mode) in [("w.jwk", 0o600), ("w.pem", 0o600), ("w.pub.jwk", 0o644)] {
            let m = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode() & 0o777;
            assert_eq!(m, mode, "{file}");
        }
    }
}

/// Writes the draft's signed request and response (testdata/vectors/httpsig) as HTTP text.
fn write_draft_messages(dir: &Path) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors/httpsig/draft_examples.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let case = &v["cases"][0];
    let lines = |h: &serde_json::Value| -> String {
        h.as_array()
            .unwrap()
            .iter()
            .map(|kv| format!("{}: {}\n", kv[0].as_str().unwrap(), kv[1].as_str().unwrap()))
            .collect()
    };
    let r = &case["request"];
    let request = format!(
        "{} {} HTTP/1.1\n{}\n",
        r["method"].as_str().unwrap(),
        r["target"].as_str().unwrap(),
        lines(&r["headers"])
    );
    std::fs::write(dir.join("req.http"), request).unwrap();
    let s = &case["response"];
    let response = format!(
        "HTTP/1.1 404 Not Found\n{}\n{}",
        lines(&s["headers"]),
        s["body"].as_str().unwrap()
    );
    std::fs::write(dir.join("resp.http"), response).unwrap();
    for (name, key) in [("caller.jwk", &case["caller_key"]), ("callee.jwk", &case["callee_key"])] {
        let mut k = key.clone();
        k.as_object_mut().unwrap().remove("d");
        std::fs::write(dir.join(name), k.to_string()).unwrap();
    }
}

#[test]
fn httpsig_verifies_the_draft_capture_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    write_draft_messages(dir.path());
    let aud = "https://svcb.example.com/gimme-ice-cream";
    let out = lanyard(
        dir.path(),
        &[
            "httpsig",
            "verify",
            "--request",
            "req.http",
            "--signer-key",
            "caller.jwk",
            "--aud",
            aud,
            "--now",
            "1785155800",
            "--accept-request-target",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (out.status.code(), &v["valid"]),
        (Some(0), &serde_json::json!(true)),
        "{v}"
    );
    // The draft's -06 capture covers @request-target: without the switch, -07 rules refuse it.
    let out = lanyard(
        dir.path(),
        &[
            "httpsig",
            "verify",
            "--request",
            "req.http",
            "--signer-key",
            "caller.jwk",
            "--aud",
            aud,
            "--now",
            "1785155800",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (out.status.code(), &v["error"]["kind"]),
        (Some(1), &serde_json::json!("signature_legacy_target")),
        "{v}"
    );
    let out = lanyard(
        dir.path(),
        &[
            "httpsig",
            "verify",
            "--request",
            "req.http",
            "--response",
            "resp.http",
            "--signer-key",
            "callee.jwk",
            "--request-nonce",
            "abcd1111",
            "--now",
            "1785155800",
            "--accept-request-target",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The caller's key does not verify the callee's response.
    let out = lanyard(
        dir.path(),
        &[
            "httpsig",
            "verify",
            "--request",
            "req.http",
            "--response",
            "resp.http",
            "--signer-key",
            "caller.jwk",
            "--now",
            "1785155800",
            "--accept-request-target",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("reason: bad_signature"),
        "{}",
        text(&out.stderr)
    );

    // Sign a request of our own with a WIT and verify it, WIT included.
    let script = "lanyard key generate --out issuer && lanyard key generate --alg EdDSA --out w && \
        lanyard wit issue --key issuer.jwk --sub spiffe://example.org/a --cnf w.pub.jwk > wit.jwt && \
        printf 'POST /orders?id=1 HTTP/1.1\\nHost: b.example.org\\nContent-Type: application/json\\n\\n{\"n\":1}' > plain.http && \
        lanyard httpsig sign --request plain.http --key w.jwk --wit @wit.jwt --aud https://b.example.org/orders > signed.http && \
        lanyard httpsig verify --request signed.http --trust-domain example.org --jwks issuer.pub.jwk --aud https://b.example.org/orders";
    let out = sh(dir.path(), script);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).contains("sender       spiffe://example.org/a"),
        "{}",
        text(&out.stdout)
    );
    // -07 by default: @path and @query (the query is `?id=1`), never @request-target.
    let signed = std::fs::read_to_string(dir.path().join("signed.http")).unwrap();
    assert!(
        signed.contains(r#"Signature-Input: wimse=("@method" "@path" "@query" "content-type""#),
        "{signed}"
    );
    // Tamper with the body: the digest no longer matches.
    let out = sh(
        dir.path(),
        "sed -i 's/\"n\":1/\"n\":2/' signed.http && lanyard httpsig verify --request signed.http --trust-domain example.org --jwks issuer.pub.jwk --aud https://b.example.org/orders",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("digest_mismatch"), "{}", text(&out.stderr));
}

#[test]
fn x509_ca_issue_verify() {
    let dir = tempfile::tempdir().unwrap();
    let script = "lanyard x509 ca --trust-domain example.org --out root && \
        lanyard x509 ca --trust-domain example.org --upstream-cert root.pem --upstream-key root.key.pem --out inter --ttl 86400 && \
        lanyard x509 issue --ca-cert inter.pem --ca-key inter.key.pem --spiffe-id spiffe://example.org/web --dns web.local --out web && \
        lanyard x509 verify --trust-domain example.org --bundle-pem root.pem web.pem --json";
    let out = sh(dir.path(), script);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let last = text(&out.stdout).lines().last().unwrap_or_default().to_owned();
    let v: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(v["spiffe_id"], "spiffe://example.org/web", "{v}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("web.key.pem"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    // OpenSSL accepts the chain, when it is installed.
    if Command::new("openssl").arg("version").output().is_ok() {
        let out = sh(
            dir.path(),
            "openssl verify -CAfile root.pem -untrusted inter.pem web.pem",
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // A chain for another trust domain fails with a reason.
    let out = sh(
        dir.path(),
        "lanyard x509 ca --trust-domain other.org --out other && \
         lanyard x509 issue --ca-cert other.pem --ca-key other.key.pem --spiffe-id spiffe://other.org/x --out x && \
         lanyard x509 verify --trust-domain example.org --bundle-pem root.pem x.pem",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out.stderr).is_empty());
    // The CA refuses an identity outside its trust domain.
    let out = sh(
        dir.path(),
        "lanyard x509 issue --ca-cert root.pem --ca-key root.key.pem --spiffe-id spiffe://other.org/x --out y",
    );
    assert!(!out.status.success());
}

/// The token commands refuse what a default verifier would refuse (issue 9, items 7 and
/// 10), and `wpt create` speaks draft-ietf-wimse-wpt-02.
#[test]
fn token_commands_follow_wpt02_and_refuse_what_verifiers_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let setup = "lanyard key generate --out issuer && lanyard key generate --alg EdDSA --out w && \
        lanyard wit issue --key issuer.jwk --sub spiffe://example.org/a --cnf w.pub.jwk --now 1800000000 > wit.jwt";
    let out = sh(dir.path(), setup);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let wpt = |extra: &str| {
        sh(
            dir.path(),
            &format!(
                "lanyard wpt create --key w.jwk --wit @wit.jwt --aud https://b.example.org/x --now 1800000000 {extra}"
            ),
        )
    };
    // The maximum lifetime is the maximum: 300 s is made, 330 s is refused.
    assert!(wpt("--ttl 300").status.success());
    let out = wpt("--ttl 330");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("exceeds the maximum of 300s"),
        "{}",
        text(&out.stderr)
    );
    // -02 on the wire: Authorization: WPT, a Txn-Token in its own header, no ath.
    let out = wpt("--txn-token txn.tok.en --http");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = text(&out.stdout);
    assert!(
        lines.contains("Authorization: WPT ey") && lines.contains("Txn-Token: txn.tok.en"),
        "{lines}"
    );
    assert!(!lines.contains("Workload-Proof-Token"), "{lines}");
    // An access token (ath) only for a wpt-01 proof.
    assert!(!wpt("--access-token at-1").status.success());
    let out = wpt("--wpt01 --access-token at-1 --http");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Workload-Proof-Token: ey"),
        "{}",
        text(&out.stdout)
    );
    // A WIT names a workload: the trust-domain ID is refused, with the diagnostic that says
    // so; and the WIT's 24 h maximum.
    let issue = "lanyard wit issue --key issuer.jwk --cnf w.pub.jwk --sub";
    for (args, says) in [
        ("spiffe://example.org", "a workload identifier needs a path"),
        ("spiffe://example.org/a --ttl 86401", "exceeds the maximum of 86400s"),
    ] {
        let out = sh(dir.path(), &format!("{issue} {args}"));
        assert_eq!(out.status.code(), Some(1), "{args}");
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
    }
}
