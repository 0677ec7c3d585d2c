//! OAuth client authentication with the SVIDs a real agent hands out (issue 12, Interop),
//! on the server and agent the Workload API drivers use:
//!
//! - **`jwt-spiffe`**: `tests/interop/python/spiffe_client_auth.py` discovers the
//!   authorization server through its RFC 8414 metadata, fetches a JWT-SVID for the issuer
//!   with py-spiffe and sends it as the client assertion (`requests`), once for
//!   [`CLIENT_ID`] (200, an `at+jwt` for that client) and once for [`OTHER_CLIENT_ID`],
//!   registered for another SPIFFE ID (401 `invalid_client`).
//! - **mutual TLS** (RFC 8705): `lanyard workload fetch x509 --out` writes the X.509-SVID,
//!   key and bundle; the system `curl` presents them to the mutual-TLS token endpoint (200,
//!   `cnf.x5t#S256` the SVID leaf's thumbprint), then a certificate for the same SPIFFE ID
//!   from a foreign CA (401 `invalid_client`). Then Lanyard's own client, `lanyard oauth
//!   token --x509-from-agent`, takes the SVID from the agent itself and finds the
//!   mutual-TLS endpoint in the metadata (200, a `cnf.x5t#S256`-bound token).
//! - **WIT-SVID** (`spiffe_wit`, on with `[oauth] wit_client_auth`): `lanyard oauth token
//!   --wit-from-agent` sends the agent's WIT-SVID in `OAuth-Client-Attestation` with a
//!   proof signed by its key (200 for [`WIT_CLIENT_ID`]).
//! - **token exchange with the agent's credentials** (RFC 8693): `lanyard oauth exchange
//!   --jwt-svid-from-agent --subject-from-agent --actor-from-agent` authenticates
//!   [`EXCHANGER_ID`] with a JWT-SVID and presents JWT-SVIDs as subject and actor tokens:
//!   an access token whose `sub` is the workload and whose `act` names it too.
//!
//! Access tokens are verified with `lanyard token verify --type access-token` against the
//! AS's `jwks_uri` keys, and are never printed.
//!
//! curl authenticates the server as any HTTPS client does (`--cacert` with the agent's
//! bundle; the server's X.509-SVID carries the listener's IP address beside its SPIFFE ID),
//! and prints the chain it was served (`%{certs}`, curl 7.88+): each request counts only if
//! that chain also verifies as an X.509-SVID of [`SERVER_ID`] with `serverAuth` (`lanyard
//! x509 verify`), the SPIFFE check curl cannot make.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::{AUDIENCE, DRIVER_TIMEOUT, Setup, VENV_PYTHON, WORKLOAD_ID, report, run, workspace_root};
use crate::common::{lanyard, text};

/// The client [`WORKLOAD_ID`] may authenticate as (`spiffe_jwt` and `spiffe_x509`).
const CLIENT_ID: &str = "interop-workload";
/// A client registered for [`OTHER_ID`] only: the workload's SVIDs must not authenticate it.
const OTHER_CLIENT_ID: &str = "interop-other";
/// A client [`WORKLOAD_ID`] may authenticate as with its WIT-SVID (`spiffe_wit`).
const WIT_CLIENT_ID: &str = "interop-wit";
/// A client [`WORKLOAD_ID`] may authenticate as, allowed token exchange with JWT-SVIDs.
const EXCHANGER_ID: &str = "interop-exchanger";
/// The one SPIFFE ID [`OTHER_CLIENT_ID`] admits.
const OTHER_ID: &str = "spiffe://example.org/interop/other";
/// The SPIFFE ID of the server's own X.509-SVID, served on the mutual-TLS listener.
const SERVER_ID: &str = "spiffe://example.org/lanyard/server";
/// The `jwt-spiffe` driver.
const PY_DRIVER: &str = "tests/interop/python/spiffe_client_auth.py";
/// How long one curl request may take.
const CURL_TIMEOUT: Duration = Duration::from_secs(20);

/// What the checks need of a running [`Setup`], owned so that they can run on a thread.
pub(crate) struct Target {
    /// The setup's temporary directory; the checks write their files under `oauth/`.
    dir: PathBuf,
    /// The server's admin socket.
    admin_socket: PathBuf,
    /// The OAuth issuer identifier (banner `oauth issuer`).
    issuer: String,
    /// The mutual-TLS token endpoint (banner `mTLS endpoint`).
    mtls_token_endpoint: String,
    /// The agent's Workload API, as `SPIFFE_ENDPOINT_SOCKET` wants it.
    endpoint: String,
    /// The trust domain.
    trust_domain: String,
}

impl Target {
    /// The addresses of `setup`, from the server's banner.
    pub(crate) fn of(setup: &Setup) -> Target {
        let server = &setup.server;
        let mtls = server.process.expect_field("mTLS endpoint");
        Target {
            dir: setup.dir.path().join("oauth"),
            admin_socket: server.admin_socket.clone(),
            issuer: server.process.expect_field("oauth issuer").to_owned(),
            mtls_token_endpoint: mtls.split_whitespace().next().unwrap_or(mtls).to_owned(),
            endpoint: setup.agent.endpoint.clone(),
            trust_domain: server.trust_domain.clone(),
        }
    }
}

/// Registers the clients, runs both client authentications and returns what went wrong.
pub(crate) fn check(target: &Target) -> Vec<String> {
    let prepared = std::fs::create_dir_all(&target.dir)
        .map_err(|e| format!("creating {}: {e}", target.dir.display()))
        .and_then(|()| register_clients(target));
    if let Err(e) = prepared {
        return vec![format!("oauth setup: {e}")];
    }
    let mut problems = Vec::new();
    for (name, result) in [
        ("jwt-spiffe (py-spiffe)", jwt_spiffe(target)),
        ("mutual TLS (curl)", mtls(target)),
        ("mutual TLS (lanyard oauth token --x509-from-agent)", mtls_cli(target)),
        ("WIT-SVID (lanyard oauth token --wit-from-agent)", wit_cli(target)),
        (
            "token exchange (lanyard oauth exchange, tokens from the agent)",
            exchange_cli(target),
        ),
    ] {
        match result {
            Ok(summary) => eprintln_line(&format!("oauth {name}: {summary}")),
            Err(e) => problems.push(format!("oauth {name}: {e}")),
        }
    }
    problems
}

/// One line on stderr (the test's log).
fn eprintln_line(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `lanyard <args>` in the target's directory: its stdout, or an error with its stderr.
fn lanyard_ok(target: &Target, args: &[&str]) -> Result<String, String> {
    let out = lanyard(&target.dir)
        .args(args)
        .output()
        .map_err(|e| format!("running lanyard {args:?}: {e}"))?;
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(format!(
            "lanyard {args:?} failed:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        ))
    }
}

/// `lanyard client create`: [`CLIENT_ID`] for [`WORKLOAD_ID`], [`OTHER_CLIENT_ID`] for
/// [`OTHER_ID`] (both with the SPIFFE methods, the default with `--spiffe-id`); and the AS's
/// access-token keys in `as.jwks`.
fn register_clients(target: &Target) -> Result<(), String> {
    let socket = target.admin_socket.to_string_lossy();
    for (client_id, spiffe_id) in [(CLIENT_ID, WORKLOAD_ID), (OTHER_CLIENT_ID, OTHER_ID)] {
        lanyard_ok(
            target,
            &[
                "client",
                "create",
                client_id,
                "--spiffe-id",
                spiffe_id,
                "--audience",
                AUDIENCE,
                "--socket",
                &socket,
            ],
        )?;
    }
    lanyard_ok(
        target,
        &[
            "client",
            "create",
            EXCHANGER_ID,
            "--spiffe-id",
            WORKLOAD_ID,
            "--audience",
            AUDIENCE,
            "--grant-type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "--exchange-delegate",
            "--exchange-subject-type",
            "jwt",
            "--exchange-actor-type",
            "jwt",
            "--socket",
            &socket,
        ],
    )?;
    lanyard_ok(
        target,
        &[
            "client",
            "create",
            WIT_CLIENT_ID,
            "--spiffe-id",
            WORKLOAD_ID,
            "--auth-method",
            "spiffe_wit",
            "--audience",
            AUDIENCE,
            "--socket",
            &socket,
        ],
    )?;
    let metadata = http_json(&target.issuer, "/.well-known/oauth-authorization-server")?;
    let jwks_uri = metadata["jwks_uri"].as_str().ok_or("the metadata has no jwks_uri")?;
    let path = jwks_uri
        .strip_prefix(&target.issuer)
        .ok_or("jwks_uri is not under the issuer")?;
    let jwks = http_json(&target.issuer, path)?;
    std::fs::write(target.dir.join("as.jwks"), jwks.to_string()).map_err(|e| e.to_string())
}

/// `GET <path>` on the issuer's host, as JSON.
fn http_json(issuer: &str, path: &str) -> Result<Value, String> {
    let host = issuer
        .strip_prefix("http://")
        .ok_or("the issuer is not an http:// URL")?;
    let (status, body) = crate::common::http_get(host, path);
    if status != 200 {
        return Err(format!("GET {path}: {status} {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("GET {path}: {e}: {body}"))
}

/// Verifies `token` as an RFC 9068 access token (`typ: at+jwt`) from the issuer for
/// [`AUDIENCE`] with `lanyard token verify --json` (the token goes through a file): its
/// details (`subject`, `client_id`, `cnf`, ...).
fn verify_access_token(target: &Target, name: &str, token: &str) -> Result<Value, String> {
    let file = target.dir.join(format!("{name}.jwt"));
    std::fs::write(&file, token).map_err(|e| e.to_string())?;
    let token_arg = format!("@{}", file.display());
    let jwks = target.dir.join("as.jwks");
    let out = lanyard(&target.dir)
        .args(["token", "verify", &token_arg, "--type", "access-token", "--json"])
        .args(["--issuer", &target.issuer, "--aud", AUDIENCE])
        .args(["--trust-domain", &target.trust_domain])
        .arg("--jwks")
        .arg(&jwks)
        .output()
        .map_err(|e| e.to_string())?;
    let doc: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("token verify printed no JSON ({e})"))?;
    // `--type access-token` makes `typ: at+jwt` a requirement.
    if doc["valid"] != true {
        return Err(format!("the access token does not verify: {doc}"));
    }
    Ok(doc["details"].clone())
}

/// The access token in a 200 token response for `client_id`, verified: its details, after
/// checking `token_type`, `sub` and `client_id`.
fn accepted(target: &Target, name: &str, client_id: &str, status: u64, body: &Value) -> Result<Value, String> {
    if status != 200 {
        return Err(format!("{client_id}: status {status}, error {}", error_of(body)));
    }
    if body["token_type"] != "Bearer" {
        return Err(format!("{client_id}: token_type {}", body["token_type"]));
    }
    let token = body["access_token"].as_str().ok_or("no access_token")?;
    let details = verify_access_token(target, name, token)?;
    if details["subject"] != client_id || details["client_id"] != client_id {
        return Err(format!(
            "sub {} / client_id {}, expected {client_id}",
            details["subject"], details["client_id"]
        ));
    }
    Ok(details)
}

/// That a token response is the 401 `invalid_client` refusal, without a token, for the
/// reason whose `error_description` contains `reason`.
fn refused(who: &str, status: u64, body: &Value, reason: &str) -> Result<(), String> {
    let described = body["error_description"].as_str().is_some_and(|d| d.contains(reason));
    if status != 401 || body["error"] != "invalid_client" || body.get("access_token").is_some() || !described {
        return Err(format!(
            "{who}: expected 401 invalid_client ({reason}), got {status}, error {}",
            error_of(body)
        ));
    }
    Ok(())
}

/// The `error` and `error_description` of a response body (never its token).
fn error_of(body: &Value) -> String {
    format!("{} ({})", body["error"], body["error_description"])
}

/// The py-spiffe driver: one JWT-SVID for the issuer, sent for [`CLIENT_ID`] and for
/// [`OTHER_CLIENT_ID`].
fn jwt_spiffe(target: &Target) -> Result<String, String> {
    let root = workspace_root();
    let mut cmd = Command::new(root.join(VENV_PYTHON));
    cmd.current_dir(&root)
        .arg(PY_DRIVER)
        .env("SPIFFE_ENDPOINT_SOCKET", &target.endpoint)
        .args([
            "--issuer",
            &target.issuer,
            "--client-id",
            CLIENT_ID,
            "--client-id",
            OTHER_CLIENT_ID,
        ]);
    let report = report("py-spiffe jwt-spiffe", run(cmd, DRIVER_TIMEOUT))?;
    if let Some(e) = report.get("error") {
        return Err(format!("the driver failed: {e}"));
    }
    let methods = &report["metadata"]["token_endpoint_auth_methods_supported"];
    if !methods.as_array().is_some_and(|m| m.iter().any(|m| m == "spiffe_jwt")) {
        return Err(format!("the metadata does not list spiffe_jwt: {methods}"));
    }
    let svid = &report["svid"];
    if svid["spiffe_id"] != WORKLOAD_ID || svid["audience"] != serde_json::json!([target.issuer]) {
        return Err(format!("unexpected JWT-SVID: {svid}"));
    }
    let responses = report["responses"].as_array().cloned().unwrap_or_default();
    let [ok, other] = responses.as_slice() else {
        return Err(format!("expected two responses, got {}", responses.len()));
    };
    let status = |r: &Value| r["status"].as_u64().unwrap_or_default();
    let details = accepted(target, "jwt-spiffe", CLIENT_ID, status(ok), &ok["body"])?;
    if !details["cnf"].is_null() {
        return Err(format!(
            "a jwt-spiffe token is not sender-constrained: cnf {}",
            details["cnf"]
        ));
    }
    refused(
        OTHER_CLIENT_ID,
        status(other),
        &other["body"],
        "is not authorized for client",
    )?;
    Ok(format!(
        "py-spiffe {}: {CLIENT_ID} 200 at+jwt verified; {OTHER_CLIENT_ID} 401 invalid_client",
        report["version"]
    ))
}

/// curl over mutual TLS: the agent's X.509-SVID for [`CLIENT_ID`], then a foreign CA's.
fn mtls(target: &Target) -> Result<String, String> {
    let svid_dir = target.dir.join("x509");
    let svid_dir_arg = svid_dir.to_string_lossy();
    lanyard_ok(
        target,
        &[
            "workload",
            "fetch",
            "x509",
            "--endpoint",
            &target.endpoint,
            "--out",
            &svid_dir_arg,
        ],
    )?;
    lanyard_ok(
        target,
        &[
            "x509",
            "ca",
            "--trust-domain",
            &target.trust_domain,
            "--out",
            "foreign-ca",
        ],
    )?;
    lanyard_ok(
        target,
        &[
            "x509",
            "issue",
            "--ca-cert",
            "foreign-ca.pem",
            "--ca-key",
            "foreign-ca.key.pem",
            "--spiffe-id",
            WORKLOAD_ID,
            "--out",
            "foreign",
        ],
    )?;
    let bundle = svid_dir.join("bundle.pem");
    let svid = svid_dir.join("svid.pem");
    let (status, body) = curl_token(target, &svid, &svid_dir.join("svid_key.pem"), &bundle)?;
    let details = accepted(target, "mtls", CLIENT_ID, status, &body)?;
    let leaf = std::fs::read_to_string(&svid)
        .ok()
        .and_then(|pem| pem::parse_many(pem).ok())
        .and_then(|blocks| blocks.into_iter().next())
        .ok_or("no certificate in svid.pem")?;
    let thumbprint = URL_SAFE_NO_PAD.encode(lanyard_crypto::provider().sha256(leaf.contents()));
    if details["cnf"]["x5t#S256"] != thumbprint.as_str() {
        return Err(format!(
            "cnf {} is not the SVID leaf's x5t#S256 {thumbprint}",
            details["cnf"]
        ));
    }
    let foreign = (target.dir.join("foreign.pem"), target.dir.join("foreign.key.pem"));
    let (status, body) = curl_token(target, &foreign.0, &foreign.1, &bundle)?;
    refused(
        "a foreign CA's certificate",
        status,
        &body,
        "does not validate against the bundle",
    )?;
    Ok(format!(
        "{CLIENT_ID} 200 with cnf.x5t#S256 of the SVID leaf; foreign CA 401 invalid_client"
    ))
}

/// `lanyard oauth token --x509-from-agent`: the CLI fetches the X.509-SVID from the agent
/// and authenticates over mutual TLS at the metadata's `mtls_endpoint_aliases`.
fn mtls_cli(target: &Target) -> Result<String, String> {
    let details = cli_token(target, "mtls-cli", CLIENT_ID, "--x509-from-agent")?;
    let thumbprint = details["cnf"]["x5t#S256"].as_str().unwrap_or_default();
    // base64url of a SHA-256: 43 characters.
    if thumbprint.len() != 43 {
        return Err(format!("the token is not certificate-bound: cnf {}", details["cnf"]));
    }
    Ok(format!("{CLIENT_ID} 200 with cnf.x5t#S256"))
}

/// `lanyard oauth token --wit-from-agent`: the CLI fetches the WIT-SVID and its key from
/// the agent and authenticates with the client-attestation headers (`spiffe_wit`).
fn wit_cli(target: &Target) -> Result<String, String> {
    cli_token(target, "wit-cli", WIT_CLIENT_ID, "--wit-from-agent")?;
    Ok(format!("{WIT_CLIENT_ID} 200 (spiffe_wit)"))
}

/// `lanyard oauth token --client-id <client_id> <credential_flag>` with the agent's
/// credentials: the verified access token's details (see [`accepted`]).
fn cli_token(target: &Target, name: &str, client_id: &str, credential_flag: &str) -> Result<Value, String> {
    let args = ["oauth", "token", "--issuer", &target.issuer, "--client-id", client_id];
    let out = lanyard_ok(
        target,
        &[&args[..], &[credential_flag, "--endpoint", &target.endpoint]].concat(),
    )?;
    let body: Value = serde_json::from_str(&out).map_err(|e| format!("not JSON ({e})"))?;
    accepted(target, name, client_id, 200, &body)
}

/// `lanyard oauth exchange` with every token from the agent: the client authenticates with
/// a JWT-SVID, and JWT-SVIDs are the subject and actor tokens (delegation).
fn exchange_cli(target: &Target) -> Result<String, String> {
    let out = lanyard_ok(
        target,
        &[
            "oauth",
            "exchange",
            "--issuer",
            &target.issuer,
            "--client-id",
            EXCHANGER_ID,
            "--jwt-svid-from-agent",
            "--subject-from-agent",
            "--actor-from-agent",
            "--audience",
            AUDIENCE,
            "--endpoint",
            &target.endpoint,
        ],
    )?;
    let body: Value = serde_json::from_str(&out).map_err(|e| format!("not JSON ({e})"))?;
    let token = body["access_token"]
        .as_str()
        .ok_or_else(|| format!("no access_token: {}", error_of(&body)))?;
    let details = verify_access_token(target, "exchange-cli", token)?;
    if details["subject"] != WORKLOAD_ID || details["client_id"] != EXCHANGER_ID {
        return Err(format!(
            "sub {} / client_id {}, expected {WORKLOAD_ID} / {EXCHANGER_ID}",
            details["subject"], details["client_id"]
        ));
    }
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
        .and_then(|c| serde_json::from_slice::<Value>(&c).ok())
        .ok_or("the access token's claims do not decode")?;
    if claims["act"]["sub"] != WORKLOAD_ID {
        return Err(format!("act {}, expected the workload as actor", claims["act"]));
    }
    Ok(format!("{EXCHANGER_ID} 200, sub and act.sub {WORKLOAD_ID}"))
}

/// `curl` POSTs `client_credentials` for [`CLIENT_ID`] to the mutual-TLS token endpoint
/// with `cert`/`key`: the status and the JSON body, once the chain the server presented
/// verifies against `bundle` as [`SERVER_ID`] (see the module documentation).
fn curl_token(target: &Target, cert: &Path, key: &Path, bundle: &Path) -> Result<(u64, Value), String> {
    let body_file = target.dir.join("curl-body.json");
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--max-time", "15"])
        .arg("--cacert")
        .arg(bundle)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args(["--data", "grant_type=client_credentials"])
        .args(["--data", &format!("client_id={CLIENT_ID}")])
        .arg("--output")
        .arg(&body_file)
        .args(["--write-out", "%{http_code}\n%{certs}", &target.mtls_token_endpoint]);
    let (ok, out, err) = run(cmd, CURL_TIMEOUT);
    if !ok {
        return Err(format!("curl failed: {err}"));
    }
    let (status, certs) = out.split_once('\n').unwrap_or((&out, ""));
    let status: u64 = status
        .trim()
        .parse()
        .map_err(|_| format!("curl printed no status: {out}"))?;
    verify_server_chain(target, certs, bundle)?;
    let body = std::fs::read_to_string(&body_file).map_err(|e| e.to_string())?;
    let body = serde_json::from_str(&body).map_err(|e| format!("status {status}, body not JSON ({e})"))?;
    Ok((status, body))
}

/// Checks the chain curl was served (the PEM blocks in its `%{certs}` output): an
/// X.509-SVID of [`SERVER_ID`] for `serverAuth` under `bundle`.
fn verify_server_chain(target: &Target, certs: &str, bundle: &Path) -> Result<(), String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut chain = String::new();
    let mut rest = certs;
    while let Some(start) = rest.find(BEGIN) {
        let len = rest[start..]
            .find(END)
            .ok_or("a truncated certificate in curl's %{certs}")?
            + END.len();
        chain.push_str(&rest[start..start + len]);
        chain.push('\n');
        rest = &rest[start + len..];
    }
    if chain.is_empty() {
        return Err(format!(
            "curl printed no server certificate (curl 7.88+ needed): {certs}"
        ));
    }
    let file = target.dir.join("server-chain.pem");
    std::fs::write(&file, chain).map_err(|e| e.to_string())?;
    let file_arg = file.to_string_lossy();
    let bundle_arg = bundle.to_string_lossy();
    let verified = lanyard_ok(
        target,
        &[
            "x509",
            "verify",
            &file_arg,
            "--trust-domain",
            &target.trust_domain,
            "--bundle-pem",
            &bundle_arg,
            "--usage",
            "server",
            "--json",
        ],
    )?;
    let verified: Value = serde_json::from_str(&verified).map_err(|e| e.to_string())?;
    if verified["valid"] != true || verified["spiffe_id"] != SERVER_ID {
        return Err(format!("the server's chain is not an SVID of {SERVER_ID}: {verified}"));
    }
    Ok(())
}
