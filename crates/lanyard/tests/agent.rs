//! The README's agent path with the real binaries: `lanyard server`, the agent command its
//! banner prints, an entry for this user, then `lanyard workload fetch|validate|write` as
//! a workload would, `lanyard agent healthcheck`, and `lanyard agent ban` taking effect.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Agent, Server, lanyard};

fn run(dir: &Path, endpoint: &str, args: &[&str]) -> Output {
    lanyard(dir)
        .args(args)
        .env("SPIFFE_ENDPOINT_SOCKET", endpoint)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `lanyard workload fetch <what> --out DIR`: writes `files` (all mode 0600, `key_file`
/// holding `secret`), refuses to replace them, and replaces them with `--force`.
fn credential_files(dir: &Path, endpoint: &str, what: &str, files: &[&str], key_file: &str, secret: &str) {
    let out_dir = dir.join(format!("{what}-files"));
    let out = out_dir.to_str().unwrap();
    let args = ["workload", "fetch", what, "--out", out];
    let printed = ok(run(dir, endpoint, &args), "fetch --out");
    assert!(
        !printed.contains(secret),
        "the key is not printed with --out: {printed}"
    );
    for f in files {
        let mode = std::fs::metadata(out_dir.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let key = std::fs::read_to_string(out_dir.join(key_file)).unwrap();
    assert!(key.contains(secret), "{key_file}: {key}");
    let again = run(dir, endpoint, &args);
    assert!(!again.status.success(), "existing files are not replaced");
    assert!(text(&again.stderr).contains("--force"), "{}", text(&again.stderr));
    assert_eq!(std::fs::read_to_string(out_dir.join(key_file)).unwrap(), key);
    ok(
        run(dir, endpoint, &[&args[..], &["--force"]].concat()),
        "fetch --out --force",
    );
}

#[test]
fn a_workload_gets_its_credentials_from_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = Server::start(dir);
    let agent = Agent::start(dir, &server);
    let admin = server.admin_socket.to_str().unwrap().to_owned();
    let uid = std::fs::metadata("/proc/self").unwrap().uid().to_string();

    // Before any entry, the workload has no identity.
    let out = run(dir, &agent.endpoint, &["workload", "fetch", "x509"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no identity issued"),
        "{}",
        text(&out.stderr)
    );

    ok(
        lanyard(dir)
            .args([
                "entry",
                "create",
                "--spiffe-id",
                "spiffe://example.org/me",
                "--parent-id",
                &agent.id,
            ])
            .args(["--selector", &format!("unix:uid:{uid}"), "--socket", &admin])
            .output()
            .unwrap(),
        "entry create",
    );
    // The agent holds the SVID within moments (pushed, not polled).
    let deadline = Instant::now() + Duration::from_secs(10);
    while agent.status()["x509_svids"] != 1 {
        assert!(Instant::now() < deadline, "no SVID: {}", agent.status());
        std::thread::sleep(Duration::from_millis(50));
    }

    let x509 = ok(run(dir, &agent.endpoint, &["workload", "fetch", "x509"]), "fetch x509");
    assert!(x509.starts_with("spiffe://example.org/me"), "{x509}");
    assert!(!x509.contains("PRIVATE KEY"), "no private key by default: {x509}");
    let shown = ok(
        run(
            dir,
            &agent.endpoint,
            &["workload", "fetch", "x509", "--show-private-key"],
        ),
        "fetch x509 --show-private-key",
    );
    assert!(
        shown.contains("BEGIN PRIVATE KEY") && shown.contains("BEGIN CERTIFICATE"),
        "{shown}"
    );
    credential_files(
        dir,
        &agent.endpoint,
        "x509",
        &["svid.pem", "svid_key.pem", "bundle.pem"],
        "svid_key.pem",
        "PRIVATE KEY",
    );
    let jwt = ok(
        run(
            dir,
            &agent.endpoint,
            &["workload", "fetch", "jwt", "--audience", "example"],
        ),
        "fetch jwt",
    );
    std::fs::write(dir.join("jwt.txt"), &jwt).unwrap();
    let valid = ok(
        run(
            dir,
            &agent.endpoint,
            &["workload", "validate", "@jwt.txt", "--audience", "example"],
        ),
        "validate",
    );
    assert!(
        valid.starts_with("valid JWT-SVID for spiffe://example.org/me"),
        "{valid}"
    );
    let wrong = run(
        dir,
        &agent.endpoint,
        &["workload", "validate", "@jwt.txt", "--audience", "other"],
    );
    assert!(!wrong.status.success());
    // The WIT: its public parts by default; the key only to files or when asked for.
    let printed = ok(run(dir, &agent.endpoint, &["workload", "fetch", "wit"]), "fetch wit");
    let wit: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(wit[0]["spiffe_id"], "spiffe://example.org/me");
    assert!(wit[0]["wit"].is_string() && wit[0]["expires"].is_string(), "{wit}");
    assert!(wit[0]["public_key"]["x"].is_string(), "{wit}");
    assert!(!printed.contains("\"d\""), "no private key by default: {printed}");
    let wit: serde_json::Value = serde_json::from_str(&ok(
        run(
            dir,
            &agent.endpoint,
            &["workload", "fetch", "wit", "--show-private-key"],
        ),
        "fetch wit --show-private-key",
    ))
    .unwrap();
    assert!(wit[0]["key"]["d"].is_string(), "the WIT comes with its private key");
    credential_files(
        dir,
        &agent.endpoint,
        "wit",
        &["wit.jwt", "wit_key.jwk"],
        "wit_key.jwk",
        "\"d\"",
    );
    let bundles: serde_json::Value = serde_json::from_str(&ok(
        run(dir, &agent.endpoint, &["workload", "fetch", "bundles"]),
        "fetch bundles",
    ))
    .unwrap();
    assert_eq!(bundles["spiffe://example.org"]["x509_authorities"], 1);
    let health = ok(
        run(
            dir,
            &agent.endpoint,
            &["agent", "healthcheck", "--address", &agent.health],
        ),
        "healthcheck",
    );
    assert!(health.contains("ready"), "{health}");

    // Files for an application that cannot speak the Workload API.
    let files = dir.join("files");
    let mut writer = lanyard(dir)
        .args([
            "workload",
            "write",
            "--dir",
            files.to_str().unwrap(),
            "--jwt-audience",
            "db",
            "--wit",
        ])
        .args(["--reload", "touch", dir.join("reloaded").to_str().unwrap()])
        .env("SPIFFE_ENDPOINT_SOCKET", &agent.endpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let wanted = [
        "svid.pem",
        "svid_key.pem",
        "bundle.pem",
        "jwt_svid.token",
        "wit.jwt",
        "wit_key.jwk",
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !wanted.iter().all(|f| files.join(f).exists()) || !dir.join("reloaded").exists() {
        assert!(Instant::now() < deadline, "files not written");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill")
        .args(["-INT", &writer.id().to_string()])
        .status()
        .unwrap();
    assert!(writer.wait().unwrap().success());
    for f in wanted {
        let mode = std::fs::metadata(files.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }

    // Banned: the agent stops serving its workloads.
    ok(
        lanyard(dir)
            .args(["agent", "ban", &agent.id, "--socket", &admin])
            .output()
            .unwrap(),
        "agent ban",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = run(dir, &agent.endpoint, &["workload", "fetch", "x509"]);
        if !out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "a banned agent still serves");
        std::thread::sleep(Duration::from_millis(100));
    }
    let health = run(
        dir,
        &agent.endpoint,
        &["agent", "healthcheck", "--address", &agent.health],
    );
    assert!(!health.status.success(), "a banned agent is not ready");

    assert!(agent.stop().success());
    assert!(server.stop().success());
}

/// The README's SPICE agent path: an entry with claims and a disclosure policy, the
/// workload's SD-CWT fetched through the agent, presented with a subset disclosed and
/// verified against the issuer keys the server publishes.
#[test]
fn an_sd_cwt_from_the_agent_round_trips_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = Server::start(dir);
    let agent = Agent::start(dir, &server);
    let admin = server.admin_socket.to_str().unwrap().to_owned();
    let uid = std::fs::metadata("/proc/self").unwrap().uid().to_string();
    let created = ok(
        lanyard(dir)
            .args(["entry", "create", "--spiffe-id", "spiffe://example.org/payments"])
            .args(["--parent-id", &agent.id, "--selector", &format!("unix:uid:{uid}")])
            .args([
                "--claims",
                r#"{"env": "prod", "region": "eu-west-1", "owner": "team-payments"}"#,
                "--disclose",
                "env",
                "--decoys",
                "1",
                "--socket",
                &admin,
            ])
            .output()
            .unwrap(),
        "entry create --claims",
    );
    assert!(created.contains("\"decoys\": 1"), "{created}");
    // Claims the server could not issue are refused when the entry is created.
    let refused = lanyard(dir)
        .args(["entry", "create", "--spiffe-id", "spiffe://example.org/bad"])
        .args(["--parent-id", &agent.id, "--selector", &format!("unix:uid:{uid}")])
        .args(["--claims", r#"{"iss": "me"}"#, "--socket", &admin])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("set by the server"),
        "{}",
        text(&refused.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while agent.status()["entries"] != 1 {
        assert!(Instant::now() < deadline, "no entry: {}", agent.status());
        std::thread::sleep(Duration::from_millis(50));
    }

    let printed = ok(
        run(dir, &agent.endpoint, &["workload", "fetch", "sd-cwt"]),
        "fetch sd-cwt",
    );
    let shown: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(shown["spiffe_id"], "spiffe://example.org/payments");
    assert!(
        shown["sd_cwt"].is_string() && shown["public_key"]["x"].is_string(),
        "{shown}"
    );
    assert!(!printed.contains("\"d\""), "no private key by default: {printed}");
    credential_files(
        dir,
        &agent.endpoint,
        "sd-cwt",
        &["sd_cwt.hex", "sd_cwt_key.jwk"],
        "sd_cwt_key.jwk",
        "\"d\"",
    );
    let inspected = ok(
        lanyard(dir)
            .args(["sdcwt", "inspect", "@sd-cwt-files/sd_cwt.hex"])
            .output()
            .unwrap(),
        "sdcwt inspect",
    );
    for shown in [
        "\"region\" = \"eu-west-1\"",
        "\"owner\" = \"team-payments\"",
        "\"node\"",
    ] {
        assert!(inspected.contains(shown), "inspect shows {shown}: {inspected}");
    }

    let (code, jwks) = server.get("/keys/sd-cwt");
    assert_eq!(code, 200, "{jwks}");
    std::fs::write(dir.join("sd-issuer.jwks"), jwks).unwrap();
    let presented = lanyard(dir)
        .args([
            "sdcwt",
            "present",
            "@sd-cwt-files/sd_cwt.hex",
            "--key",
            "sd-cwt-files/sd_cwt_key.jwk",
        ])
        .args([
            "--issuer",
            "sd-issuer.jwks",
            "--aud",
            "https://ledger.example.org",
            "--disclose",
            "region",
        ])
        .output()
        .unwrap();
    assert!(presented.status.success(), "present: {}", text(&presented.stderr));
    std::fs::write(dir.join("presentation.cbor"), &presented.stdout).unwrap();
    let verified = ok(
        lanyard(dir)
            .args(["sdcwt", "verify", "@presentation.cbor", "--issuer", "sd-issuer.jwks"])
            .args([
                "--iss",
                &format!("http://{}", server.public),
                "--aud",
                "https://ledger.example.org",
            ])
            .output()
            .unwrap(),
        "sdcwt verify",
    );
    assert!(verified.starts_with("valid SD-KBT"), "{verified}");
    assert!(verified.contains("\"region\": \"eu-west-1\""), "{verified}");
    assert!(verified.contains("\"env\": \"prod\""), "{verified}");
    for hidden in ["team-payments", "\"node\"", "\"selectors\""] {
        assert!(!verified.contains(hidden), "{hidden} must stay hidden: {verified}");
    }
}
