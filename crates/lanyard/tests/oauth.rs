//! `lanyard client ...` and `lanyard oauth token` against a real `lanyard server`: register
//! a client with its public key, get a bearer and a DPoP-bound access token, verify the
//! token with `lanyard token verify`, manage and delete the client, and see refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{Server, sh, text};

#[track_caller]
fn ok(dir: &Path, script: &str) -> String {
    let out = sh(dir, script);
    assert!(
        out.status.success(),
        "`{script}` failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `script`, which must fail with `fragment` in its standard error.
#[track_caller]
fn refused(dir: &Path, script: &str, fragment: &str) {
    let out = sh(dir, script);
    assert!(!out.status.success(), "`{script}` succeeded");
    assert!(text(&out.stderr).contains(fragment), "{}", text(&out.stderr));
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn client_registry_and_tokens_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let issuer = server.process.expect_field("oauth issuer").to_owned();
    assert_eq!(issuer, format!("http://{}", server.public));
    let d = dir.path();
    ok(d, "lanyard key generate --alg ES256 --out client");

    let created = json(&ok(
        d,
        "lanyard client create billing --jwks client.pub.jwk --scope read --scope write \
         --audience https://ledger.example.org",
    ));
    assert_eq!(created["client"]["client_id"], "billing");
    assert_eq!(
        created["client"]["auth_methods"],
        serde_json::json!(["private_key_jwt"])
    );
    assert!(created.get("client_secret").is_none());
    let list = json(&ok(d, "lanyard client list"));
    assert_eq!(list.as_array().unwrap().len(), 1);

    // A bearer token with private_key_jwt, found through the metadata.
    let response = json(&ok(
        d,
        &format!("lanyard oauth token --issuer {issuer} --client-id billing --key client.jwk --scope read"),
    ));
    assert_eq!(response["token_type"], "Bearer");
    assert_eq!(response["scope"], "read");
    ok(
        d,
        &format!("lanyard oauth token --issuer {issuer} --client-id billing --key client.jwk --raw > at.jwt"),
    );
    // The access token verifies against the AS's jwks_uri, as an at+jwt.
    let (status, jwks) = server.get("/oauth/jwks");
    assert_eq!(status, 200);
    std::fs::write(d.join("as.jwks"), jwks).unwrap();
    let verified = ok(
        d,
        &format!(
            "lanyard token verify @at.jwt --type access-token --issuer {issuer} --jwks as.jwks \
             --aud https://ledger.example.org"
        ),
    );
    assert!(verified.starts_with("valid access token"), "{verified}");
    assert!(verified.contains("key (cnf)    none (a bearer token)"), "{verified}");
    assert!(verified.contains("scope        read"), "{verified}");

    // DPoP: the CLI retries with the server's nonce.
    let response = json(&ok(
        d,
        &format!("lanyard oauth token --issuer {issuer} --client-id billing --key client.jwk --dpop"),
    ));
    assert_eq!(response["token_type"], "DPoP");
    std::fs::write(d.join("dpop-at.jwt"), response["access_token"].as_str().unwrap()).unwrap();
    let verified = ok(
        d,
        &format!(
            "lanyard token verify @dpop-at.jwt --issuer {issuer} --jwks as.jwks \
             --aud https://ledger.example.org --trust-domain example.org"
        ),
    );
    assert!(
        verified.contains("key (cnf)    DPoP-bound: proofs by the key with thumbprint "),
        "{verified}"
    );

    // Refusals: a scope outside the registration; an unknown client.
    refused(
        d,
        &format!("lanyard oauth token --issuer {issuer} --client-id billing --key client.jwk --scope admin"),
        "invalid_scope",
    );
    refused(
        d,
        &format!("lanyard oauth token --issuer {issuer} --client-id nobody --key client.jwk"),
        "invalid_client",
    );

    // Update (revision checked), a client with a secret (shown once), show, delete.
    let updated = json(&ok(
        d,
        "lanyard client update billing --revision 1 --jwks client.pub.jwk --scope read \
         --audience https://ledger.example.org",
    ));
    assert_eq!(updated["client"]["revision"], 2);
    let out = sh(
        d,
        "lanyard client update billing --revision 1 --jwks client.pub.jwk --audience https://ledger.example.org",
    );
    assert!(!out.status.success());
    let legacy = json(&ok(
        d,
        "lanyard client create legacy --auth-method client_secret_basic --audience https://ledger.example.org \
         --access-token-ttl 900",
    ));
    let secret = legacy["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 40);
    let shown = ok(d, "lanyard client show legacy");
    assert!(!shown.contains(secret));
    assert_eq!(json(&shown)["has_secret"], true);
    // What the registration amounts to: client_credentials (the default), and a token
    // lifetime capped by the server's (300 s).
    assert_eq!(json(&shown)["access_token_ttl"], 900);
    assert_eq!(
        json(&shown)["effective"],
        serde_json::json!({"grant_types": ["client_credentials"], "access_token_ttl": 300})
    );
    let out = sh(d, "lanyard client create bad --auth-method none --audience x");
    assert!(!out.status.success());
    // A token-exchange policy: short type names become RFC 8693 URIs; one the server
    // cannot exchange is refused at registration.
    let exchanger = json(&ok(
        d,
        "lanyard client create exchanger --jwks client.pub.jwk --audience https://ledger.example.org \
         --grant-type urn:ietf:params:oauth:grant-type:token-exchange --exchange-delegate \
         --exchange-subject-type access_token --exchange-actor-type jwt --txn-tokens",
    ));
    let policy = &exchanger["client"]["exchange"];
    assert_eq!(policy["delegate"], true);
    assert_eq!(policy["txn_tokens"], true);
    assert_eq!(
        policy["subject_token_types"],
        serde_json::json!(["urn:ietf:params:oauth:token-type:access_token"])
    );
    assert!(json(&ok(d, "lanyard client show billing")).get("exchange").is_none());
    refused(
        d,
        "lanyard client create odd --jwks client.pub.jwk --audience x --exchange-subject-type saml2",
        "cannot be exchanged",
    );
    // Client credentials never go over plain HTTP to a host that is not loopback.
    refused(
        d,
        "lanyard oauth token --issuer http://as.example --client-id billing --key client.jwk",
        "--issuer must be an https:// URL",
    );
    ok(d, "lanyard client delete billing");
    assert!(!sh(d, "lanyard client show billing").status.success());
    server.stop();
}

/// The README section "An OAuth access token for a workload, without a secret": its
/// commands, run as written against a fresh server (its URL in place of the default
/// `http://127.0.0.1:8080`).
#[test]
fn readme_oauth_section_works_as_written() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let start = readme
        .find("## An OAuth access token for a workload, without a secret")
        .unwrap();
    let section = &readme[start..];
    let block_start = section.find("```sh\n").unwrap() + 6;
    let block = &section[block_start..block_start + section[block_start..].find("```").unwrap()];
    let commands: Vec<&str> = block
        .lines()
        .map(|l| l.split("  # ").next().unwrap_or(l).trim())
        .filter(|l| !l.is_empty() && !l.starts_with("export PATH"))
        .collect();
    assert!(commands.len() <= 5, "{commands:?}");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let url = format!("http://{}", server.public);
    let mut last = String::new();
    for command in commands {
        last = ok(dir.path(), &command.replace("http://127.0.0.1:8080", &url));
    }
    assert!(last.starts_with("valid access token"), "{last}");
    server.stop();
}

/// `lanyard oauth exchange` and `lanyard oauth txn-token`: a user's access token is
/// exchanged by an agent client for a delegated token (`act` names the agent), the same
/// user token yields a Txn-Token with a request context, and `lanyard token verify`
/// checks both; a wider scope and a malformed context are refused.
#[test]
fn exchange_and_txn_tokens_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let issuer = format!("http://{}", server.public);
    let d = dir.path();
    ok(d, "lanyard key generate --alg ES256 --out portal");
    ok(d, "lanyard key generate --alg ES256 --out agent");
    ok(
        d,
        "lanyard client create portal --jwks portal.pub.jwk --scope read --audience https://agent.example.org",
    );
    ok(
        d,
        "lanyard client create agent --jwks agent.pub.jwk --scope read --audience https://ledger.example.org \
         --grant-type client_credentials --grant-type urn:ietf:params:oauth:grant-type:token-exchange \
         --exchange-delegate --exchange-subject-type access_token \
         --exchange-subject-audience https://agent.example.org --txn-tokens",
    );
    ok(
        d,
        &format!(
            "lanyard oauth token --issuer {issuer} --client-id portal --key portal.jwk --scope read --raw > user.jwt"
        ),
    );
    let (_, jwks) = server.get("/oauth/jwks");
    std::fs::write(d.join("as.jwks"), jwks).unwrap();

    // Delegation: without an actor token, the client itself acts.
    let exchanged = json(&ok(
        d,
        &format!(
            "lanyard oauth exchange --issuer {issuer} --client-id agent --key agent.jwk \
             --subject-token @user.jwt --audience https://ledger.example.org"
        ),
    ));
    assert_eq!(
        exchanged["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    std::fs::write(d.join("delegated.jwt"), exchanged["access_token"].as_str().unwrap()).unwrap();
    let verified = json(&ok(
        d,
        &format!(
            "lanyard token verify @delegated.jwt --json --type access-token --issuer {issuer} --jwks as.jwks \
             --aud https://ledger.example.org --trust-domain example.org"
        ),
    ));
    assert_eq!(verified["details"]["subject"], "portal", "{verified}");
    assert_eq!(verified["details"]["act"]["sub"], "agent", "{verified}");
    // The same, as a person reads it: who acts for the subject.
    let shown = ok(
        d,
        &format!(
            "lanyard token verify @delegated.jwt --issuer {issuer} --jwks as.jwks --aud https://ledger.example.org"
        ),
    );
    assert!(shown.contains("acting (act) agent\n"), "{shown}");

    // A Txn-Token for the user's request, with its context.
    ok(
        d,
        &format!(
            "lanyard oauth txn-token --issuer {issuer} --client-id agent --key agent.jwk --subject-token - \
             --audience example.org --scope read --request-context '{{\"req_ip\":\"10.0.0.1\"}}' --raw < user.jwt > txn.jwt"
        ),
    );
    let txn = json(&ok(
        d,
        "lanyard token verify @txn.jwt --json --type txn-token --trust-domain example.org --jwks as.jwks",
    ));
    assert_eq!(txn["details"]["subject"], "portal", "{txn}");
    assert_eq!(txn["details"]["rctx"]["req_ip"], "10.0.0.1", "{txn}");
    let shown = ok(
        d,
        "lanyard token verify @txn.jwt --type txn-token --trust-domain example.org --jwks as.jwks",
    );
    assert!(shown.contains(r#"rctx         {"req_ip":"10.0.0.1"}"#), "{shown}");
    assert!(shown.contains("requester    agent"), "{shown}");
    assert!(shown.contains("txn          "), "{shown}");

    // Refusals: a scope wider than the subject token's; a context that is not an object.
    refused(
        d,
        &format!(
            "lanyard oauth exchange --issuer {issuer} --client-id agent --key agent.jwk \
             --subject-token @user.jwt --scope write"
        ),
        "invalid_scope",
    );
    refused(
        d,
        &format!(
            "lanyard oauth txn-token --issuer {issuer} --client-id agent --key agent.jwk \
             --subject-token @user.jwt --audience example.org --scope read --request-context '[1]'"
        ),
        "must be a JSON object",
    );
    server.stop();
}

/// A port free now (the OS's choice), for a server whose URL must be known before it
/// starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Identity chaining (draft-ietf-oauth-identity-chaining-17) between two `lanyard server`
/// processes of different trust domains, over HTTP: at the home server an exchange yields
/// a JWT authorization grant for the foreign server, which fetches the home server's keys
/// through its metadata and redeems the grant once for a local access token keeping `sub`
/// and `act`.
#[test]
fn identity_chaining_between_two_server_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (home_dir, foreign_dir) = (dir.path().join("home"), dir.path().join("foreign"));
    std::fs::create_dir_all(&home_dir).unwrap();
    std::fs::create_dir_all(&foreign_dir).unwrap();
    let (home_port, foreign_port) = (free_port(), free_port());
    let home_url = format!("http://127.0.0.1:{home_port}");
    let foreign_url = format!("http://127.0.0.1:{foreign_port}");
    std::fs::write(
        home_dir.join("server.toml"),
        format!("trust_domain = \"example.org\"\n[oauth]\nchaining_foreign_servers = [\"{foreign_url}\"]\n"),
    )
    .unwrap();
    std::fs::write(
        foreign_dir.join("server.toml"),
        format!("trust_domain = \"partner.org\"\n[[oauth.chaining_home_servers]]\nissuer = \"{home_url}\"\n"),
    )
    .unwrap();
    let home = Server::start_with(
        &home_dir,
        &format!("127.0.0.1:{home_port}"),
        Some(Path::new("server.toml")),
    );
    let foreign = Server::start_with(
        &foreign_dir,
        &format!("127.0.0.1:{foreign_port}"),
        Some(Path::new("server.toml")),
    );
    let (h, f) = (home_dir.as_path(), foreign_dir.as_path());
    let home_socket = format!("--socket {}", home.admin_socket.display());
    let foreign_socket = format!("--socket {}", foreign.admin_socket.display());

    // Home: a user's token, and a chainer that may ask grants for the foreign server.
    ok(h, "lanyard key generate --alg ES256 --out portal");
    ok(h, "lanyard key generate --alg ES256 --out chainer");
    ok(
        h,
        &format!(
            "lanyard client create portal --jwks portal.pub.jwk --scope read --audience https://chainer.example.org {home_socket}"
        ),
    );
    ok(
        h,
        &format!(
            "lanyard client create chainer --jwks chainer.pub.jwk --scope read --audience {foreign_url} \
             --grant-type urn:ietf:params:oauth:grant-type:token-exchange --exchange-delegate \
             --exchange-subject-type access_token --exchange-subject-audience https://chainer.example.org {home_socket}"
        ),
    );
    ok(
        h,
        &format!(
            "lanyard oauth token --issuer {home_url} --client-id portal --key portal.jwk --scope read --raw > user.jwt"
        ),
    );
    let grant = json(&ok(
        h,
        &format!(
            "lanyard oauth exchange --issuer {home_url} --client-id chainer --key chainer.jwk \
             --subject-token @user.jwt --requested-token-type jwt --audience {foreign_url}"
        ),
    ));
    assert_eq!(grant["issued_token_type"], "urn:ietf:params:oauth:token-type:jwt");
    assert_eq!(grant["token_type"], "N_A");
    std::fs::write(f.join("grant.jwt"), grant["access_token"].as_str().unwrap()).unwrap();
    let (_, home_jwks) = home.get("/oauth/jwks");
    std::fs::write(f.join("home.jwks"), home_jwks).unwrap();
    let checked = json(&ok(
        f,
        &format!(
            "lanyard token verify @grant.jwt --json --type authorization-grant --issuer {home_url} \
             --aud {foreign_url} --jwks home.jwks"
        ),
    ));
    assert_eq!(checked["details"]["subject"], "portal", "{checked}");

    // Foreign: a local client redeems the grant once.
    ok(f, "lanyard key generate --alg ES256 --out agent");
    ok(
        f,
        &format!(
            "lanyard client create agent --jwks agent.pub.jwk --scope read --audience https://ledger.partner.org \
             --grant-type urn:ietf:params:oauth:grant-type:jwt-bearer {foreign_socket}"
        ),
    );
    let redeem = format!(
        "lanyard oauth redeem --issuer {foreign_url} --client-id agent --key agent.jwk --assertion @grant.jwt --scope read"
    );
    let local = json(&ok(f, &redeem));
    std::fs::write(f.join("local.jwt"), local["access_token"].as_str().unwrap()).unwrap();
    let (_, foreign_jwks) = foreign.get("/oauth/jwks");
    std::fs::write(f.join("foreign.jwks"), foreign_jwks).unwrap();
    let verified = json(&ok(
        f,
        &format!(
            "lanyard token verify @local.jwt --json --type access-token --issuer {foreign_url} --jwks foreign.jwks \
             --aud https://ledger.partner.org --trust-domain partner.org"
        ),
    ));
    let details = &verified["details"];
    assert_eq!(
        (&details["subject"], &details["client_id"], &details["act"]["sub"]),
        (
            &serde_json::json!("portal"),
            &serde_json::json!("agent"),
            &serde_json::json!("chainer")
        ),
        "{verified}"
    );
    // The grant is single-use.
    refused(f, &redeem, "invalid_grant");
    foreign.stop();
    home.stop();
}
