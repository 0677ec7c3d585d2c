//! `lanyard server` as a user runs it: start it on a fresh directory, follow the next
//! steps it prints, manage entries through the admin socket, and stop it with Ctrl-C.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, sh, text};

/// The commands under "Get a first credential" in the server's banner.
fn next_steps(server: &Server) -> Vec<String> {
    server
        .process
        .banner
        .iter()
        .skip_while(|l| !l.starts_with("Get a first credential"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
        .collect()
}

#[test]
fn first_run_prints_working_next_steps() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let banner = server.process.banner.join("\n");
    assert!(banner.contains("trust domain     example.org"), "{banner}");
    assert!(banner.contains("/bundle"), "{banner}");
    let steps = next_steps(&server);
    assert_eq!(steps.len(), 4, "{banner}");
    let have_curl = Command::new("curl").arg("--version").output().is_ok();

    // The mutual-TLS listener (RFC 8705) is on by default: the banner's line names the
    // token endpoint the metadata lists among its mtls_endpoint_aliases, and it answers
    // over TLS (a request without a client certificate or parameters: an OAuth error).
    let field = |name: &str| {
        let line = server.process.banner.iter().find(|l| l.trim_start().starts_with(name));
        let line = line.unwrap_or_else(|| panic!("no {name:?} line in {banner}"));
        line.trim_start()[name.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    let mtls = field("mTLS endpoint");
    assert!(
        mtls.starts_with("https://") && mtls.ends_with("/oauth/token"),
        "{banner}"
    );
    if have_curl {
        let public = field("public endpoint");
        let out = sh(
            dir.path(),
            &format!("curl -s {public}/.well-known/oauth-authorization-server"),
        );
        let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(metadata["mtls_endpoint_aliases"]["token_endpoint"], mtls.as_str());
        let out = sh(
            dir.path(),
            &format!("curl -sk -o /dev/null -w '%{{http_code}}' -X POST {mtls}"),
        );
        assert_eq!(text(&out.stdout), "400", "{}", text(&out.stderr));
    }
    // The README's "Your first credential from the server" shows the same four commands
    // (for the default public address), each followed only by a comment.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let public = field("public endpoint");
    for step in &steps {
        let as_in_readme = step.replace(&public, "http://127.0.0.1:8080");
        assert!(
            readme.lines().any(|l| l
                .strip_prefix(as_in_readme.as_str())
                .is_some_and(|rest| rest.trim().is_empty() || rest.trim_start().starts_with('#'))),
            "README.md does not show the banner's step `{as_in_readme}`"
        );
    }
    for step in &steps {
        if step.starts_with("curl") && !have_curl {
            continue;
        }
        let out = sh(dir.path(), step);
        assert!(
            out.status.success(),
            "`{step}` failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        if step.starts_with("lanyard token verify") {
            assert!(text(&out.stdout).starts_with("valid WIT"), "{}", text(&out.stdout));
        }
    }

    // Entries through the admin socket, including bad input.
    let out = sh(
        dir.path(),
        "lanyard entry create --spiffe-id spiffe://example.org/web --parent-id spiffe://example.org/agent/n1 \
         --selector unix:uid:1000 --selector unix:path:/usr/bin/web",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let out = sh(
        dir.path(),
        "lanyard entry list --parent-id spiffe://example.org/agent/n1",
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let out = sh(
        dir.path(),
        "lanyard entry create --spiffe-id spiffe://example.org/web --parent-id spiffe://example.org/agent/n1 --selector bogus:1",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("selector type \"bogus\" is unknown"),
        "{}",
        text(&out.stderr)
    );
    let out = sh(
        dir.path(),
        "lanyard entry create --spiffe-id spiffe://example.org/web --parent-id spiffe://example.org/agent/n1 \
         --selector unix:uid:1000 --selector unix:path:/usr/bin/web",
    );
    assert!(
        text(&out.stderr).contains("conflict"),
        "duplicate: {}",
        text(&out.stderr)
    );
    std::fs::write(
        dir.path().join("bulk.json"),
        r#"[{"spiffe_id":"spiffe://example.org/a","parent_id":"spiffe://example.org/agent/n1","selectors":[{"type":"unix","value":"uid:1"}]},
            {"spiffe_id":"spiffe://example.org/b","parent_id":"spiffe://example.org/agent/n1","selectors":[{"type":"unix","value":"uid:2"}]}]"#,
    )
    .unwrap();
    let out = sh(dir.path(), "lanyard entry create --file bulk.json");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = sh(
        dir.path(),
        &format!("lanyard entry delete {id} && lanyard entry show {id}"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not_found"), "{}", text(&out.stderr));
    let out = sh(dir.path(), "lanyard token join --ttl 60");
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim().len(), 48);
    let out = sh(dir.path(), "lanyard agent list");
    assert_eq!(text(&out.stdout).trim(), "[]");

    let status = server.stop();
    assert!(status.success(), "server exit: {status:?}");
    assert!(
        !dir.path().join("lanyard-data/admin.sock").exists(),
        "the socket is removed on exit"
    );

    // A second start on the same directory keeps the same CA and keys.
    let bundle_before = std::fs::read_to_string(dir.path().join("bundle.json")).unwrap_or_default();
    let server = Server::start(dir.path());
    if have_curl {
        let url = server
            .process
            .banner
            .iter()
            .find_map(|l| l.trim().strip_prefix("trust bundle").map(|u| u.trim().to_owned()))
            .unwrap();
        let out = sh(dir.path(), &format!("curl -s {url}"));
        let before: serde_json::Value = serde_json::from_str(&bundle_before).unwrap();
        let after: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            before["keys"], after["keys"],
            "restart must not replace the authorities"
        );
    }
    assert!(server.stop().success());
}

#[test]
fn admin_commands_explain_a_missing_server() {
    let dir = tempfile::tempdir().unwrap();
    let out = sh(dir.path(), "lanyard entry list");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is `lanyard server` running?"),
        "{}",
        text(&out.stderr)
    );
}
