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

/// The commands of one README section (from the `section` heading to the `next` one), in
/// order (setup lines that build or change directory are left out: the test runs the
/// binary under test in a fresh directory).
fn readme_steps(section: &str, next: &str) -> Vec<Step> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let start = readme.find(section).expect("walkthrough section");
    let end = start + readme[start..].find(next).expect("section after it");
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

/// Runs each step; failures must be the ones the README announces. Returns every step's
/// output.
fn run_steps(dir: &Path, steps: Vec<Step>) -> Vec<(String, Output)> {
    let mut outputs = Vec::new();
    for step in steps {
        let out = sh(dir, &step.command);
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
        outputs.push((step.command, out));
    }
    outputs
}

#[test]
fn readme_walkthrough_works_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let steps = readme_steps("## Tokens by hand, step by step", "## Crossing boundaries");
    assert!(steps.len() >= 10, "walkthrough has {} commands", steps.len());
    for (command, out) in run_steps(dir.path(), steps) {
        if command.starts_with("lanyard token verify") && out.status.success() {
            assert!(text(&out.stdout).starts_with("valid "), "{}", text(&out.stdout));
        }
    }
}

#[test]
fn readme_sd_cwt_round_trip_works_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let steps = readme_steps(
        "## Selectively disclosable credentials (SPICE)",
        "### From the server, through the agent",
    );
    assert!(steps.len() >= 8, "the SD-CWT section has {} commands", steps.len());
    let outputs = run_steps(dir.path(), steps);
    let inspected = outputs
        .iter()
        .find(|(c, _)| c.starts_with("lanyard sdcwt inspect"))
        .map(|(_, o)| text(&o.stdout))
        .unwrap();
    assert!(inspected.starts_with("NOT VERIFIED"), "{inspected}");
    for hidden in [
        "\"env\" = \"prod\"",
        "\"region\" = \"eu-west-1\"",
        "\"commit\" = \"4b825dc\"",
        "decoy",
    ] {
        assert!(inspected.contains(hidden), "inspect shows {hidden}: {inspected}");
    }
    let (_, verified) = outputs
        .iter()
        .find(|(c, o)| c.starts_with("lanyard sdcwt verify") && o.status.success())
        .unwrap();
    let verified = text(&verified.stdout);
    assert!(verified.starts_with("valid SD-KBT"), "{verified}");
    assert!(verified.contains("\"region\": \"eu-west-1\""), "{verified}");
    assert!(verified.contains("\"repo\": \"git.example.org/billing\""), "{verified}");
    for hidden in ["prod", "4b825dc", "\"env\"", "\"commit\""] {
        assert!(!verified.contains(hidden), "{hidden} must stay hidden: {verified}");
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

    // A JWT-SVID verified without --aud says what is missing (a usage error: status 2).
    let out = sh(
        dir.path(),
        "lanyard jwt-svid issue --key k.jwk --sub spiffe://example.org/a --aud x > s.jwt && \
         lanyard token verify @s.jwt --trust-domain example.org --jwks k.pub.jwk",
    );
    assert_eq!(out.status.code(), Some(2));
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

/// `lanyard token verify --json ...` in `dir`: the exit status and the JSON on stdout
/// (which must be there whatever happened).
fn verify_json_args(dir: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = lanyard(dir, &[&["token", "verify", "--json"], args].concat());
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON on stdout for {args:?} ({e}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (out.status.code(), json)
}

/// An issuer key, a workload key, a WIT, a WPT for `https://b.example.org/x` and a JWT-SVID
/// whose audience is that same URI, all for spiffe://example.org/a.
fn write_tokens(dir: &Path) {
    let script = "lanyard key generate --out issuer && lanyard key generate --out w && \
        lanyard wit issue --key issuer.jwk --sub spiffe://example.org/a --cnf w.pub.jwk > wit.jwt && \
        lanyard wpt create --key w.jwk --wit @wit.jwt --aud https://b.example.org/x > wpt.jwt && \
        lanyard jwt-svid issue --key issuer.jwk --sub spiffe://example.org/a --aud https://b.example.org/x > svid.jwt";
    let out = sh(dir, script);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn options_decide_what_is_checked_not_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_tokens(dir);
    let trust = ["--trust-domain", "example.org", "--jwks", "issuer.pub.jwk"];
    let proof = ["--wit", "@wit.jwt", "--aud", "https://b.example.org/x"];

    // A replayed WIT, or a JWT-SVID for the target, is not a proof of possession.
    for token in ["@wit.jwt", "@svid.jwt"] {
        let (code, out) = verify_json_args(dir, &[&[token][..], &proof, &trust].concat());
        assert_eq!(code, Some(1), "{token}: {out}");
        assert_eq!(out["valid"], false);
        assert_eq!(out["type"], "WPT", "{token}: {out}");
        assert_eq!(out["error"]["kind"], "wrong_typ", "{token}: {out}");
    }

    // The real proof passes; the type is the one --wit requires.
    let (code, out) = verify_json_args(dir, &[&["@wpt.jwt"][..], &proof, &trust].concat());
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        (out["type"].as_str(), out["type_from"].as_str()),
        (Some("WPT"), Some("--wit"))
    );
    // --aud asks for an audience check, which a WIT (no aud claim) cannot pass.
    let (code, out) = verify_json_args(
        dir,
        &[&["@wit.jwt", "--aud", "https://b.example.org/x"][..], &trust].concat(),
    );
    assert_eq!(
        (code, &out["error"]["kind"]),
        (Some(1), &serde_json::json!("wrong_typ")),
        "{out}"
    );
    // Options together can imply one type: only a WPT has both an audience and WIT rules.
    let (code, out) = verify_json_args(
        dir,
        &[
            &["@wit.jwt", "--aud", "https://b.example.org/x", "--profile", "wimse"][..],
            &trust,
        ]
        .concat(),
    );
    assert_eq!(
        (code, &out["error"]["kind"]),
        (Some(1), &serde_json::json!("wrong_typ")),
        "{out}"
    );
    assert_eq!(
        (out["type"].as_str(), out["type_from"].as_str()),
        (Some("WPT"), Some("--aud and --profile"))
    );
    // ... but a JWT-SVID for that audience passes, and says how its type was chosen.
    let (code, out) = verify_json_args(
        dir,
        &[&["@svid.jwt", "--aud", "https://b.example.org/x"][..], &trust].concat(),
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        (out["type"].as_str(), out["type_from"].as_str()),
        (Some("JWT-SVID"), Some("typ header"))
    );

    // --type requires one type.
    let (code, out) = verify_json_args(
        dir,
        &[&["@wit.jwt", "--type", "jwt-svid", "--aud", "x"][..], &trust].concat(),
    );
    assert_eq!(
        (code, &out["error"]["kind"]),
        (Some(1), &serde_json::json!("wrong_typ")),
        "{out}"
    );
    let (code, out) = verify_json_args(dir, &[&["@wit.jwt", "--type", "wit"][..], &trust].concat());
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        (out["type"].as_str(), out["type_from"].as_str()),
        (Some("WIT"), Some("--type"))
    );
    // Without any option the type is detected, and the output says so.
    let (code, out) = verify_json_args(dir, &[&["@wit.jwt"][..], &trust].concat());
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        (out["type"].as_str(), out["type_from"].as_str()),
        (Some("WIT"), Some("typ header"))
    );
    let out = lanyard(dir, &[&["token", "verify", "@wit.jwt"][..], &trust].concat());
    assert!(text(&out.stdout).contains("detected from"), "{}", text(&out.stdout));

    // Options that contradict each other are a usage error (status 2), before any check.
    for (args, named) in [
        (
            &["@wpt.jwt", "--type", "jwt-svid", "--wit", "@wit.jwt", "--aud", "x"][..],
            "--wit",
        ),
        (&["@wit.jwt", "--type", "wit", "--aud", "x"][..], "--aud"),
        (
            &["@wpt.jwt", "--access-token", "t", "--type", "wit"][..],
            "--access-token",
        ),
        (
            &["@svid.jwt", "--profile", "wit-svid", "--aud", "x", "--type", "jwt-svid"][..],
            "--profile",
        ),
    ] {
        let (code, out) = verify_json_args(dir, &[args, &trust].concat());
        assert_eq!(code, Some(2), "{args:?}: {out}");
        assert_eq!(out["error"]["kind"], "usage", "{args:?}: {out}");
        assert!(
            out["error"]["message"].as_str().unwrap().contains(named),
            "{args:?}: {out}"
        );
    }
}

#[test]
fn pem_keys_are_trust_input_with_the_thumbprint_kid() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_tokens(dir);
    let jwk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("issuer.pub.jwk")).unwrap()).unwrap();
    let kid = jwk["kid"].as_str().unwrap().to_owned();
    for keys in ["issuer.pub.pem", "issuer.pem", "issuer.pub.jwk"] {
        let (code, out) = verify_json_args(dir, &["@wit.jwt", "--trust-domain", "example.org", "--jwks", keys]);
        assert_eq!(code, Some(0), "{keys}: {out}");
        assert_eq!(out["details"]["kid"], kid.as_str(), "{keys}: {out}");
    }
    // A WIT signed with the PEM private key carries the same kid.
    let out = sh(
        dir,
        "lanyard wit issue --key issuer.pem --sub spiffe://example.org/a --cnf w.pub.jwk > wit2.jwt",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (code, out) = verify_json_args(
        dir,
        &["@wit2.jwt", "--trust-domain", "example.org", "--jwks", "issuer.pub.jwk"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out["details"]["kid"], kid.as_str(), "{out}");
    // `key public` of a PEM key prints that kid too.
    let out = lanyard(dir, &["key", "public", "--key", "issuer.pem"]);
    let public: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(public["kid"], kid.as_str());
}

#[test]
fn verify_json_reports_every_outcome_and_the_status_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_tokens(dir);
    let trust = ["--trust-domain", "example.org", "--jwks", "issuer.pub.jwk"];

    // Could not run (status 2): an unreadable input, a missing or unknown option.
    for args in [
        &["@wit.jwt", "--trust-domain", "example.org", "--jwks", "missing.jwk"][..],
        &[
            "@missing.jwt",
            "--trust-domain",
            "example.org",
            "--jwks",
            "issuer.pub.jwk",
        ],
        &["@wit.jwt", "--trust-domain", "example.org", "--bundle", "wit.jwt"],
    ] {
        let (code, out) = verify_json_args(dir, args);
        assert_eq!(code, Some(2), "{args:?}: {out}");
        assert_eq!(
            (&out["valid"], &out["outcome"]),
            (&serde_json::json!(false), &serde_json::json!("error")),
            "{out}"
        );
        assert_eq!(out["error"]["kind"], "input", "{args:?}: {out}");
    }
    for args in [
        &["@wit.jwt", "--jwks", "issuer.pub.jwk"][..],
        &["@wit.jwt", "--no-such-option"],
        &[
            "@wpt.jwt",
            "--wit",
            "@wit.jwt",
            "--trust-domain",
            "example.org",
            "--jwks",
            "issuer.pub.jwk",
        ],
        &["@svid.jwt", "--trust-domain", "example.org", "--jwks", "issuer.pub.jwk"],
        &["@wit.jwt", "--trust-domain", "Not A Domain", "--jwks", "issuer.pub.jwk"],
        &["@wit.jwt", "--trust-domain", "example.org"],
        &[
            "@wpt.jwt",
            "--header",
            "no-equals-sign",
            "--trust-domain",
            "example.org",
            "--jwks",
            "w.pub.jwk",
        ],
    ] {
        let (code, out) = verify_json_args(dir, args);
        assert_eq!(code, Some(2), "{args:?}: {out}");
        assert_eq!(out["error"]["kind"], "usage", "{args:?}: {out}");
    }
    // Invalid token (status 1) and valid (0).
    let (code, out) = verify_json_args(dir, &[&["@w.pub.jwk"][..], &trust].concat());
    assert_eq!((code, out["outcome"].as_str()), (Some(1), Some("invalid")), "{out}");
    let (code, out) = verify_json_args(dir, &[&["@wit.jwt"][..], &trust].concat());
    assert_eq!((code, out["outcome"].as_str()), (Some(0), Some("valid")), "{out}");

    // Without --json: the same statuses, the reason on stderr.
    let out = lanyard(
        dir,
        &[
            "token",
            "verify",
            "@wit.jwt",
            "--trust-domain",
            "example.org",
            "--jwks",
            "nope",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nope"), "{}", text(&out.stderr));
    let out = lanyard(dir, &["token", "verify", "@wit.jwt", "--jwks", "w.pub.jwk"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--trust-domain is needed: a WIT is checked with its trust domain's keys"),
        "{}",
        text(&out.stderr)
    );
    // --help documents the statuses.
    let out = lanyard(dir, &["token", "verify", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(help.contains("Exit status") && help.contains("2 "), "{help}");
}

/// `lanyard sdcwt interop` follows INTEROP.md (draft-ietf-spice-sd-cwt @2db464c): the
/// draft's SD-KBT verifies to the expected claims, and Lanyard's own issue → present →
/// verify chain works over stdin/stdout with a nonce list and a disclosure list.
#[test]
fn sdcwt_interop_contract() {
    use lanyard_core::DigestAlgorithm;
    use lanyard_core::cbor::{self, Value};

    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors/sd_cwt");
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(vectors.join("cases.json")).unwrap()).unwrap();
    let case = |id: &str| {
        cases["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
            .clone()
    };
    let unhex = lanyard_testing::hex::decode;
    let dir = tempfile::tempdir().unwrap();
    for file in ["issuer_privkey.pem", "holder_privkey.pem", "kbt.cbor"] {
        std::fs::copy(vectors.join("draft").join(file), dir.path().join(file)).unwrap();
    }
    // The issuer's public key as the draft prints it (Appendix C.2).
    std::fs::write(
        dir.path().join("issuer_pub.pem"),
        "-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEwxeYsMeIX6NSj7+HfltMOm3GelpdxrMH\n\
         tyjDclkm8qvl+0lkzZHjlIpUk/brtsu/j2x+x2FpHK03TE2qk4dFPxgFjs5Y6wqO\nhKBVox+3+SFLJ1CVIsFZ52T4cR4RYJVU\n\
         -----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let run = |args: &str, stdin: Vec<u8>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lanyard"))
            .args(["sdcwt", "interop"])
            .args(args.split_whitespace())
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), &stdin).unwrap();
        child.wait_with_output().unwrap()
    };

    let target = run("target", Vec::new());
    assert_eq!(text(&target.stdout), "lanyard");
    // The wrapper programs the harness runs.
    let wrapper = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/sd-cwt-wg/target"))
        .env("LANYARD", env!("CARGO_BIN_EXE_lanyard"))
        .output()
        .unwrap();
    assert_eq!(text(&wrapper.stdout), "lanyard");

    let kbt = std::fs::read(dir.path().join("kbt.cbor")).unwrap();
    let verified = run(
        "verify --issuer issuer_pub.pem --audience https://verifier.example/app --time 1725244238",
        kbt.clone(),
    );
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    assert_eq!(verified.stdout, unhex(case("draft-kbt")["claims"].as_str().unwrap()));
    let no_audience = run("verify --issuer issuer_pub.pem --time 1725244238", kbt.clone());
    assert_eq!(
        no_audience.stdout, verified.stdout,
        "without --audience the audience is not checked"
    );
    let wrong = run(
        "verify --issuer issuer_pub.pem --audience https://other.example --time 1725244238",
        kbt.clone(),
    );
    assert!(!wrong.status.success());
    assert!(
        text(&wrong.stderr).contains("wrong audience"),
        "{}",
        text(&wrong.stderr)
    );
    let ignore = run("verify --issuer-key ignore --time 1725244238", kbt);
    assert!(!ignore.status.success());

    // issue with a nonce list pinning the license disclosure's salt.
    let provider = lanyard_crypto::provider();
    let license_key = provider
        .digest(
            DigestAlgorithm::Sha256,
            &Value::Array(vec![Value::text("ABCD-123456"), Value::int(501)]).to_vec(),
        )
        .unwrap();
    let license_key = lanyard_core::hex::encode(license_key.as_bytes());
    std::fs::write(
        dir.path().join("nonces.csv"),
        format!("{license_key},bae611067bb823486797da1ebbb52f83\n"),
    )
    .unwrap();
    let input = unhex(case("issue-draft-issuer-cwt")["input"].as_str().unwrap());
    let issued = run("issue issuer_privkey.pem --nonces nonces.csv --time 1725244238", input);
    assert!(issued.status.success(), "{}", text(&issued.stderr));
    let used = std::fs::read_to_string(dir.path().join("nonce_list.out")).unwrap();
    assert_eq!(used.lines().count(), 5, "{used}");
    assert!(
        used.contains(&format!("{license_key},bae611067bb823486797da1ebbb52f83")),
        "{used}"
    );

    // present only the license claim, by its salt.
    let list = Value::Array(vec![Value::bytes(unhex("bae611067bb823486797da1ebbb52f83"))]).to_vec();
    std::fs::write(dir.path().join("disclose.cbor"), list).unwrap();
    let presented = run(
        "present holder_privkey.pem --issuer issuer_pub.pem --disclosure_list disclose.cbor --time 1725244238",
        issued.stdout,
    );
    assert!(presented.status.success(), "{}", text(&presented.stderr));
    let verified = run("verify --issuer issuer_pub.pem --time 1725244238", presented.stdout);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    let claims = cbor::decode(&verified.stdout).unwrap();
    assert_eq!(claims.get_int(501), Some(&Value::text("ABCD-123456")));
    assert_eq!(claims.get_int(503).and_then(|m| m.get(&Value::text("region"))), None);
    assert_eq!(
        claims.get_int(502).and_then(Value::as_array).map(<[Value]>::len),
        Some(1)
    );
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
    // `token verify` checks such a proof's ath only in the wpt-01 mode.
    let out = wpt("--wpt01 --access-token at-1 > wpt01.jwt");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let verify = "lanyard token verify @wpt01.jwt --wit @wit.jwt --aud https://b.example.org/x \
        --trust-domain example.org --jwks issuer.pub.jwk --now 1800000000 --access-token at-1";
    let out = sh(dir.path(), &format!("{verify} --wpt01"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = sh(dir.path(), &format!("{verify} --wpt01 --access-token at-2"));
    assert!(!out.status.success(), "another access token than the one bound");
    let out = sh(dir.path(), verify);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
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

/// `token verify` checks a Transaction Token (draft-ietf-oauth-transaction-tokens-11) for
/// its trust domain with the Transaction Token Service's keys, and its `typ` chooses the
/// type when no option does.
#[test]
fn txn_tokens_verify_for_their_trust_domain() {
    use lanyard_core::oauth::{Scope, TxnTokenClaims, issue_txn_token};
    use lanyard_core::{Algorithm, UnixTime};
    let dir = tempfile::tempdir().unwrap();
    let key = lanyard_crypto::KeyPair::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("tts-1");
    let now = 1_800_000_000;
    let claims = TxnTokenClaims {
        iss: None,
        iat: UnixTime(now),
        exp: UnixTime(now + 60),
        aud: "example.org".into(),
        txn: "txn-42".into(),
        sub: "alice".into(),
        scope: Scope::parse("calendar.read").unwrap(),
        req_wl: "spiffe://example.org/agent".into(),
        tctx: None,
        rctx: None,
        extra: serde_json::Map::new(),
    };
    let token = issue_txn_token(&key, "tts-1", &claims).unwrap();
    std::fs::write(dir.path().join("txn.jwt"), &token).unwrap();
    let jwks = serde_json::json!({"keys": [serde_json::to_value(lanyard_core::SigningKey::public_jwk(&key)).unwrap()]});
    std::fs::write(dir.path().join("tts.jwks"), jwks.to_string()).unwrap();
    let verify = format!("lanyard token verify @txn.jwt --jwks tts.jwks --now {}", now + 5);
    for how in ["--type txn-token", ""] {
        let out = sh(dir.path(), &format!("{verify} --trust-domain example.org {how}"));
        assert!(out.status.success(), "{how}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with("valid Txn-Token"),
            "{}",
            text(&out.stdout)
        );
    }
    let (status, report) = verify_json_args(
        dir.path(),
        &[
            "@txn.jwt",
            "--jwks",
            "tts.jwks",
            "--trust-domain",
            "example.org",
            "--now",
            &(now + 5).to_string(),
        ],
    );
    assert_eq!(status, Some(0), "{report}");
    assert_eq!(report["details"]["txn"], "txn-42", "{report}");
    // Another trust domain's service refuses it; so does the TTS's key set of another.
    let out = sh(
        dir.path(),
        &format!("{verify} --trust-domain other.org --type txn-token"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}
