//! The code the `wpt`, `httpsig` and `mtls` examples share (and `tests/examples.rs` runs):
//! an in-process stand-in for the identity server, two axum services, `orders` and
//! `billing`, that call each other on 127.0.0.1 with lanyard-tower on both sides, and a
//! [`DemoReport`] of what each side saw, including the attempts that were turned away.
//!
//! The flow, in every mode:
//!
//! 1. billing calls `GET /orders/42` on orders (only billing may call that route);
//! 2. orders' handler calls `GET /billing/limits` on billing (only orders may call it)
//!    before answering, and returns JSON naming its caller and how it was authenticated;
//! 3. `spiffe://example.org/intruder`, a workload with valid credentials from the same
//!    identity server, calls orders and is refused (`403`, or in mTLS a refused handshake);
//! 4. a caller without credentials is refused (`401` for WPT, `400` for HTTP signatures,
//!    a refused handshake for mTLS);
//! 5. in mTLS mode, if `curl` is installed, curl calls orders with billing's X.509-SVID as
//!    its client certificate (accepted) and without a client certificate (refused).

use std::error::Error as StdError;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lanyard_core::httpsig::{HttpSigPolicy, HttpSigVerifier, TargetComponents};
use lanyard_core::jose::decode_unverified;
use lanyard_core::wimse::WptCarriage;
use lanyard_core::{
    Algorithm, Clock, CryptoProvider, InMemoryReplayCache, KeyUse, SpiffeId, SystemClock, TrustDomain, TrustStore,
    WitIssuer, WitPolicy, WitVerifier, WorkloadId,
};
use lanyard_tower::{
    AuthMode, AuthorizeLayer, ClientMode, CredentialSource, Modes, StaticCredentials, VerifiedWorkload,
    WorkloadAuthConfig, WorkloadAuthLayer, WorkloadAuthMiddleware, WorkloadCredentials,
};
use lanyard_x509::{Authorizer, SubjectKey, SvidSource, X509Authority, X509Bundle, X509BundleSet, X509Svid};
use reqwest_middleware::ClientWithMiddleware;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The trust domain of every workload in the demo.
pub const TRUST_DOMAIN: &str = "example.org";
/// The orders service.
pub const ORDERS: &str = "spiffe://example.org/orders";
/// The billing service.
pub const BILLING: &str = "spiffe://example.org/billing";
/// A workload of the same trust domain that neither service allows.
pub const INTRUDER: &str = "spiffe://example.org/intruder";

/// How long any single HTTP call (or curl run) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How the two services authenticate each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// WIT + Workload Proof Token (`Authorization: WPT`).
    Wpt,
    /// WIT + HTTP Message Signature, with signed (and verified) responses.
    HttpSignature,
    /// Mutual TLS with X.509-SVIDs.
    Mtls,
}

impl Mode {
    /// What [`VerifiedWorkload::mode`] reports for a caller authenticated this way.
    pub fn auth_mode(self) -> AuthMode {
        match self {
            Mode::Wpt => AuthMode::Wpt,
            Mode::HttpSignature => AuthMode::HttpSignature,
            Mode::Mtls => AuthMode::Mtls,
        }
    }

    /// A human-readable name.
    pub fn title(self) -> &'static str {
        match self {
            Mode::Wpt => "WIT + Workload Proof Token",
            Mode::HttpSignature => "WIT + HTTP Message Signature (signed responses)",
            Mode::Mtls => "mutual TLS with X.509-SVIDs",
        }
    }

    /// The status a call without credentials gets (`None`: the TLS handshake is refused).
    pub fn unauthenticated_status(self) -> Option<u16> {
        match self {
            Mode::Wpt => Some(401),
            Mode::HttpSignature => Some(400),
            Mode::Mtls => None,
        }
    }

    fn modes(self) -> Modes {
        Modes {
            wpt: self == Mode::Wpt,
            http_signature: self == Mode::HttpSignature,
            mtls: self == Mode::Mtls,
        }
    }

    fn scheme(self) -> &'static str {
        if self == Mode::Mtls { "https" } else { "http" }
    }
}

/// One authenticated call, as both ends saw it.
#[derive(Clone, Debug)]
pub struct Call {
    /// The calling service.
    pub from: &'static str,
    /// The called service.
    pub to: &'static str,
    /// The URL called.
    pub url: String,
    /// The response status.
    pub status: u16,
    /// The caller's identifier as the server saw it (`VerifiedWorkload::id`).
    pub caller_id: String,
    /// How the server authenticated the caller (`VerifiedWorkload::mode`, `AuthMode::as_str`).
    pub caller_mode: String,
    /// The WPT `jti` or the signature `nonce` the server saw.
    pub proof_id: Option<String>,
    /// The workload whose WIT signed the response, when the response was signed (the
    /// client middleware has verified that signature before handing the response over).
    pub response_signed_by: Option<String>,
}

/// How a refused attempt was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The server answered with an error status and a problem-details body.
    Http {
        /// The status.
        status: u16,
        /// The problem's `kind`.
        kind: String,
        /// The problem's `detail`.
        detail: String,
        /// `WWW-Authenticate` or `Accept-Signature`, when the server sent one.
        challenge: Option<String>,
    },
    /// No HTTP response: the TLS handshake was refused.
    Tls {
        /// The client's error.
        error: String,
    },
}

impl Refusal {
    /// The HTTP status, if the attempt got that far.
    pub fn status(&self) -> Option<u16> {
        match self {
            Refusal::Http { status, .. } => Some(*status),
            Refusal::Tls { .. } => None,
        }
    }

    /// The problem `kind`, or `tls_handshake_refused`.
    pub fn kind(&self) -> &str {
        match self {
            Refusal::Http { kind, .. } => kind,
            Refusal::Tls { .. } => "tls_handshake_refused",
        }
    }
}

/// An attempt that was meant to fail.
#[derive(Clone, Debug)]
pub struct Rejected {
    /// Who tried.
    pub caller: &'static str,
    /// The URL called.
    pub url: String,
    /// What happened.
    pub outcome: Refusal,
}

/// One curl run.
#[derive(Clone, Debug)]
pub struct CurlRun {
    /// The command line.
    pub command: String,
    /// curl's exit code.
    pub exit_code: Option<i32>,
    /// What curl printed on stdout (the response body).
    pub stdout: String,
    /// What curl printed on stderr.
    pub stderr: String,
}

/// curl against the mTLS orders service.
#[derive(Clone, Debug)]
pub struct CurlReport {
    /// With billing's X.509-SVID as the client certificate.
    pub with_cert: CurlRun,
    /// Without a client certificate.
    pub without_cert: CurlRun,
}

/// What happened in one run of the demo.
#[derive(Clone, Debug)]
pub struct DemoReport {
    /// The mode.
    pub mode: Mode,
    /// Where orders listened.
    pub orders_url: String,
    /// Where billing listened.
    pub billing_url: String,
    /// billing's call to orders.
    pub billing_to_orders: Call,
    /// orders' call to billing, made while handling billing's call.
    pub orders_to_billing: Call,
    /// orders' answer to billing.
    pub order_body: Value,
    /// The intruder's attempt on orders.
    pub intruder: Rejected,
    /// The attempt without credentials.
    pub anonymous: Rejected,
    /// curl (mTLS mode, when curl is installed).
    pub curl: Option<CurlReport>,
}

impl DemoReport {
    /// Checks that everything went as the demo intends: each service saw the other in the
    /// expected mode, responses were signed in HTTP-signature mode, and the intruder and
    /// the anonymous caller were refused.
    pub fn verify(&self) -> anyhow::Result<()> {
        let mode = self.mode.auth_mode().as_str();
        for (call, caller, signer) in [
            (&self.billing_to_orders, BILLING, ORDERS),
            (&self.orders_to_billing, ORDERS, BILLING),
        ] {
            let what = format!("{} -> {}", call.from, call.to);
            ensure!(call.status == 200, "{what}: status {}", call.status);
            ensure!(call.caller_id == caller, "{what}: the server saw {}", call.caller_id);
            ensure!(
                call.caller_mode == mode,
                "{what}: authenticated with {}",
                call.caller_mode
            );
            let expected_signer = (self.mode == Mode::HttpSignature).then(|| signer.to_owned());
            ensure!(
                call.response_signed_by == expected_signer,
                "{what}: response signed by {:?}, expected {expected_signer:?}",
                call.response_signed_by
            );
        }
        let (forbidden, unauthenticated) = match self.mode {
            Mode::Wpt => (Some((403, "forbidden")), Some((401, "missing_credentials"))),
            Mode::HttpSignature => (Some((403, "forbidden")), Some((400, "missing_credentials"))),
            Mode::Mtls => (None, None),
        };
        for (attempt, expected) in [(&self.intruder, forbidden), (&self.anonymous, unauthenticated)] {
            match (&attempt.outcome, expected) {
                (Refusal::Http { status, kind, .. }, Some((s, k))) if *status == s && kind == k => {}
                (Refusal::Tls { error }, None) if error.contains("alert") => {}
                (outcome, _) => bail!(
                    "{}: expected {}, got {outcome:?}",
                    attempt.caller,
                    expected.map_or_else(|| "a refused handshake".to_owned(), |(s, k)| format!("{s} {k}"))
                ),
            }
        }
        if let Some(curl) = &self.curl {
            ensure!(
                curl.with_cert.exit_code == Some(0),
                "curl with billing's SVID failed: {}",
                curl.with_cert.stderr
            );
            let body: Value =
                serde_json::from_str(&curl.with_cert.stdout).context("curl with billing's SVID: not JSON")?;
            ensure!(
                body["caller"] == BILLING && body["mode"] == "mtls",
                "curl with billing's SVID: orders answered {body}"
            );
            ensure!(
                curl.without_cert.exit_code.is_some_and(|c| c != 0),
                "curl without a client certificate was not refused: {}",
                curl.without_cert.stdout
            );
        }
        Ok(())
    }
}

impl DemoReport {
    /// How the server saw the caller's proof, for the transcript.
    fn proof(&self, call: &Call) -> String {
        let id = call.proof_id.as_deref().unwrap_or("-");
        match self.mode {
            Mode::Wpt => format!("WPT jti {id}"),
            Mode::HttpSignature => format!("signature nonce {id}"),
            Mode::Mtls => "client X.509-SVID".to_owned(),
        }
    }
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (b2o, o2b) = (&self.billing_to_orders, &self.orders_to_billing);
        // orders' answer without the copy of billing's answer (shown on its own line).
        let mut order = self.order_body.clone();
        if let Some(fields) = order.as_object_mut() {
            fields.remove("billing_call");
        }
        writeln!(f, "== Lanyard demo: {} ==", self.mode.title())?;
        match self.mode {
            Mode::Mtls => writeln!(
                f,
                "identity server: X.509-SVIDs (P-256) from a root CA for {TRUST_DOMAIN}; each side pins the other's SPIFFE ID in the handshake"
            )?,
            _ => writeln!(
                f,
                "identity server: WITs for {TRUST_DOMAIN} signed with an ES256 key; workload keys are EdDSA"
            )?,
        }
        writeln!(f, "orders   {ORDERS:<32} listening on {}", self.orders_url)?;
        writeln!(f, "billing  {BILLING:<32} listening on {}", self.billing_url)?;
        writeln!(f)?;
        writeln!(f, "billing -> orders   GET {}", b2o.url)?;
        writeln!(f, "  orders handler -> billing   GET {}", o2b.url)?;
        writeln!(
            f,
            "    billing saw caller {} via {} ({})",
            o2b.caller_id,
            o2b.caller_mode,
            self.proof(o2b)
        )?;
        writeln!(
            f,
            "    billing answered {}: {}",
            o2b.status, self.order_body["billing_call"]["body"]
        )?;
        if let Some(signer) = &o2b.response_signed_by {
            writeln!(f, "    response signed by {signer}, verified by orders' client")?;
        }
        writeln!(
            f,
            "  orders saw caller {} via {} ({})",
            b2o.caller_id,
            b2o.caller_mode,
            self.proof(b2o)
        )?;
        writeln!(f, "  orders answered {}: {order}", b2o.status)?;
        if let Some(signer) = &b2o.response_signed_by {
            writeln!(f, "  response signed by {signer}, verified by billing's client")?;
        }
        writeln!(f)?;
        writeln!(f, "REJECTED attempts:")?;
        for attempt in [&self.intruder, &self.anonymous] {
            write!(f, "  {} -> orders   GET {}\n    ", attempt.caller, attempt.url)?;
            match &attempt.outcome {
                Refusal::Http {
                    status,
                    kind,
                    detail,
                    challenge,
                } => {
                    write!(f, "REJECTED {status} kind={kind}: {detail}")?;
                    if let Some(challenge) = challenge {
                        write!(f, " [challenge: {challenge}]")?;
                    }
                    writeln!(f)?;
                }
                Refusal::Tls { error } => writeln!(f, "REJECTED kind=tls_handshake_refused: {error}")?,
            }
        }
        if let Some(curl) = &self.curl {
            writeln!(f)?;
            writeln!(f, "curl (OpenSSL) with billing's SVID as client certificate:")?;
            writeln!(f, "  $ {}", curl.with_cert.command)?;
            writeln!(
                f,
                "  exit {}: {}",
                curl.with_cert.exit_code.unwrap_or(-1),
                curl.with_cert.stdout.trim()
            )?;
            writeln!(f, "curl without a client certificate:")?;
            writeln!(f, "  $ {}", curl.without_cert.command)?;
            writeln!(
                f,
                "  REJECTED exit {}: {}",
                curl.without_cert.exit_code.unwrap_or(-1),
                curl.without_cert.stderr.trim()
            )?;
        } else if self.mode == Mode::Mtls {
            writeln!(f, "\n(curl is not installed: the curl calls were skipped)")?;
        }
        Ok(())
    }
}

/// A workload's credentials, as the identity server handed them out for the mode.
enum Credentials {
    /// A WIT and its EdDSA key.
    Wit(Arc<WorkloadCredentials>),
    /// An X.509-SVID (P-256), and the rustls-facing source holding it.
    Svid { svid: X509Svid, source: Arc<SvidSource> },
}

struct Workload {
    id: &'static str,
    credentials: Credentials,
}

impl Workload {
    fn wit(&self) -> anyhow::Result<Arc<WorkloadCredentials>> {
        match &self.credentials {
            Credentials::Wit(c) => Ok(Arc::clone(c)),
            Credentials::Svid { .. } => bail!("{} has an X.509-SVID, not a WIT", self.id),
        }
    }
}

/// The identity server stand-in: a WIT issuer (ES256) whose key the services trust, and a
/// root X.509 CA whose certificate is the trust domain's X.509 bundle.
struct IdentityServer {
    provider: Arc<dyn CryptoProvider>,
    wit_trust: Arc<TrustStore>,
    wit_issuer: WitIssuer,
    ca: X509Authority,
    x509_bundles: X509BundleSet,
}

impl IdentityServer {
    fn new() -> anyhow::Result<IdentityServer> {
        let provider = lanyard_crypto::provider();
        let issuer_key = provider.generate_key(Algorithm::ES256)?;
        let wit_trust = Arc::new(TrustStore::new(Arc::clone(&provider)));
        wit_trust.add_key(TRUST_DOMAIN, KeyUse::WitSvid, &issuer_key.public_jwk())?;
        let wit_issuer = WitIssuer::new(Arc::clone(&provider), issuer_key, None, None, 3600);
        let td = TrustDomain::parse(TRUST_DOMAIN)?;
        let ca = X509Authority::new_root(&td, None, 86_400, SystemClock.now())?;
        let x509_bundles = X509BundleSet::new().with(X509Bundle::from_pem(td, &ca.cert_pem())?);
        Ok(IdentityServer {
            provider,
            wit_trust,
            wit_issuer,
            ca,
            x509_bundles,
        })
    }

    /// Issues `id` its credentials for `mode`; `dns_names` go into an X.509-SVID.
    fn enroll(&self, mode: Mode, id: &'static str, dns_names: &[&str]) -> anyhow::Result<Workload> {
        let credentials = match mode {
            Mode::Wpt | Mode::HttpSignature => {
                let key = self.provider.generate_key(Algorithm::EdDSA)?;
                let wit = self
                    .wit_issuer
                    .issue(&WorkloadId::parse(id)?, &key.public_jwk(), SystemClock.now())?;
                Credentials::Wit(Arc::new(WorkloadCredentials::new(wit, key, self.provider.as_ref())?))
            }
            Mode::Mtls => {
                let dns: Vec<String> = dns_names.iter().map(|&n| n.to_owned()).collect();
                let svid = self.ca.issue_svid(
                    &SpiffeId::parse(id)?,
                    SubjectKey::Generate,
                    3600,
                    &dns,
                    SystemClock.now(),
                )?;
                let source = Arc::new(SvidSource::new(&svid, self.x509_bundles.clone())?);
                Credentials::Svid { svid, source }
            }
        };
        Ok(Workload { id, credentials })
    }

    /// A client for `me` calling `peer` (whose identity it pins in mTLS mode).
    fn client(&self, mode: Mode, me: &Workload, peer: &str) -> anyhow::Result<ClientWithMiddleware> {
        let builder = reqwest::Client::builder().no_proxy().timeout(CALL_TIMEOUT);
        let client = match (&me.credentials, mode) {
            (Credentials::Svid { source, .. }, Mode::Mtls) => {
                let tls = lanyard_x509::client_config(Arc::clone(source), Authorizer::Exact(SpiffeId::parse(peer)?))?;
                reqwest_middleware::ClientBuilder::new(builder.tls_backend_preconfigured(tls).build()?).build()
            }
            (Credentials::Wit(creds), Mode::Wpt) => reqwest_middleware::ClientBuilder::new(builder.build()?)
                .with(WorkloadAuthMiddleware::new(
                    static_source(creds),
                    ClientMode::Wpt {
                        carriage: WptCarriage::Authorization,
                    },
                ))
                .build(),
            (Credentials::Wit(creds), Mode::HttpSignature) => {
                let verifier = HttpSigVerifier::new(
                    WitVerifier::new(Arc::clone(&self.wit_trust), WitPolicy::wimse()),
                    HttpSigPolicy::default(),
                    Arc::new(InMemoryReplayCache::default()),
                );
                let middleware = WorkloadAuthMiddleware::new(
                    static_source(creds),
                    ClientMode::HttpSignature {
                        target: TargetComponents::RequestTarget,
                        require_signed_response: true,
                    },
                )
                .with_response_verifier(verifier);
                reqwest_middleware::ClientBuilder::new(builder.build()?)
                    .with(middleware)
                    .build()
            }
            _ => bail!("{} has no credentials for {mode:?}", me.id),
        };
        Ok(client)
    }

    /// The authentication layer of the service `me`, known as `base`.
    fn auth_layer(&self, mode: Mode, me: &Workload, base: &str) -> anyhow::Result<WorkloadAuthLayer> {
        let mut config = WorkloadAuthConfig::new(base);
        config.modes = mode.modes();
        if mode == Mode::HttpSignature {
            config.response_credentials = Some(static_source(&me.wit()?));
        }
        Ok(WorkloadAuthLayer::new(Arc::clone(&self.wit_trust), config))
    }
}

fn static_source(creds: &Arc<WorkloadCredentials>) -> Arc<dyn CredentialSource> {
    Arc::new(StaticCredentials(Arc::clone(creds)))
}

/// A running service.
struct Server {
    name: &'static str,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Serves `app` on `listener`: plain HTTP, or for mTLS over rustls with `me`'s SVID,
    /// accepting only client SVIDs of `allowed`.
    fn start(
        me: &Workload,
        listener: TcpListener,
        app: Router,
        allowed: &str,
        name: &'static str,
    ) -> anyhow::Result<Server> {
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = match &me.credentials {
            Credentials::Svid { source, .. } => {
                let authorizer = Authorizer::OneOf(vec![SpiffeId::parse(allowed)?]);
                let tls = Arc::new(lanyard_x509::server_config(Arc::clone(source), authorizer)?);
                tokio::spawn(lanyard_tower::mtls::serve(listener, tls, app, shutdown))
            }
            Credentials::Wit(_) => {
                tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(shutdown).await })
            }
        };
        Ok(Server { name, stop, task })
    }

    async fn shut_down(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let mut task = self.task;
        match tokio::time::timeout(Duration::from_secs(5), &mut task).await {
            Ok(joined) => joined
                .with_context(|| format!("the {} server task failed", self.name))?
                .with_context(|| format!("the {} server failed", self.name)),
            Err(_) => {
                task.abort();
                Err(anyhow!("the {} server did not shut down within 5 s", self.name))
            }
        }
    }
}

/// orders' handler state: its client for billing.
#[derive(Clone)]
struct OrdersState {
    billing: ClientWithMiddleware,
    billing_url: String,
}

/// `GET /orders/{id}` on orders: asks billing for the limits, then names its caller.
async fn get_order(State(state): State<OrdersState>, Path(order): Path<u64>, caller: VerifiedWorkload) -> Response {
    let url = format!("{}/billing/limits", state.billing_url);
    match fetch_json(&state.billing, &url).await {
        Ok(billing) => Json(json!({
            "service": "orders",
            "order": { "id": order, "total_cents": 4_200, "status": "shipped" },
            "caller": caller.id.as_str(),
            "mode": caller.mode.as_str(),
            "proof_id": caller.proof_id,
            "billing_call": {
                "url": url,
                "status": billing.status,
                "response_signed_by": billing.signed_by,
                "body": billing.body,
            },
        }))
        .into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, format!("calling billing failed: {e:#}")).into_response(),
    }
}

/// `GET /billing/limits` on billing: names its caller.
async fn get_limits(caller: VerifiedWorkload) -> Json<Value> {
    Json(json!({
        "service": "billing",
        "credit_limit_cents": 250_000,
        "caller": caller.id.as_str(),
        "mode": caller.mode.as_str(),
        "proof_id": caller.proof_id,
    }))
}

/// A successful JSON response.
struct Fetched {
    status: u16,
    signed_by: Option<String>,
    body: Value,
}

async fn fetch_json(client: &ClientWithMiddleware, url: &str) -> anyhow::Result<Fetched> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| anyhow!("GET {url}: {}", error_chain(&e)))?;
    let status = response.status();
    let signed_by = response_signer(response.headers());
    let text = response
        .text()
        .await
        .with_context(|| format!("GET {url}: reading the body"))?;
    ensure!(status.is_success(), "GET {url}: {status}: {text}");
    let body = serde_json::from_str(&text).with_context(|| format!("GET {url}: the body is not JSON: {text}"))?;
    Ok(Fetched {
        status: status.as_u16(),
        signed_by,
        body,
    })
}

/// The `sub` of the WIT a signed response carries. The client middleware has already
/// verified the WIT and the signature (`require_signed_response`), so this only reads it.
fn response_signer(headers: &HeaderMap) -> Option<String> {
    if !headers.contains_key("signature") {
        return None;
    }
    let wit = headers.get("workload-identity-token")?.to_str().ok()?;
    let claims = decode_unverified(wit).ok()?.claims;
    claims.get("sub")?.as_str().map(str::to_owned)
}

/// An error and its sources, on one line.
fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// An attempt that should be refused.
async fn attempt(caller: &'static str, client: &ClientWithMiddleware, url: &str) -> Rejected {
    let outcome = match client.get(url).send().await {
        Err(e) => Refusal::Tls { error: error_chain(&e) },
        Ok(response) => {
            let status = response.status().as_u16();
            let challenge = ["www-authenticate", "accept-signature"]
                .iter()
                .find_map(|h| response.headers().get(*h))
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let text = response.text().await.unwrap_or_else(|e| error_chain(&e));
            let problem: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let field = |name: &str| problem[name].as_str().map_or_else(|| text.clone(), str::to_owned);
            Refusal::Http {
                status,
                kind: field("kind"),
                detail: field("detail"),
                challenge,
            }
        }
    };
    Rejected {
        caller,
        url: url.to_owned(),
        outcome,
    }
}

/// Starts orders and billing, has them call each other, tries the intruder and the
/// anonymous caller (and curl in mTLS mode), shuts everything down and reports.
pub async fn run_demo(mode: Mode) -> anyhow::Result<DemoReport> {
    let idp = IdentityServer::new().context("starting the identity server")?;
    let orders_listener = TcpListener::bind("127.0.0.1:0").await?;
    let billing_listener = TcpListener::bind("127.0.0.1:0").await?;
    let orders_addr = orders_listener.local_addr()?;
    let orders_url = format!("{}://{orders_addr}", mode.scheme());
    let billing_url = format!("{}://{}", mode.scheme(), billing_listener.local_addr()?);

    // orders' SVID also names `localhost`, for clients that check the host name (curl).
    let orders = idp.enroll(mode, ORDERS, &["localhost"])?;
    let billing = idp.enroll(mode, BILLING, &[])?;
    let intruder = idp.enroll(mode, INTRUDER, &[])?;

    let orders_app = Router::new()
        .route(
            "/orders/{id}",
            get(get_order).route_layer(AuthorizeLayer::workloads([WorkloadId::parse(BILLING)?])),
        )
        .with_state(OrdersState {
            billing: idp.client(mode, &orders, BILLING)?,
            billing_url: billing_url.clone(),
        })
        .layer(idp.auth_layer(mode, &orders, &orders_url)?);
    let billing_app = Router::new()
        .route(
            "/billing/limits",
            get(get_limits).route_layer(AuthorizeLayer::workloads([WorkloadId::parse(ORDERS)?])),
        )
        .layer(idp.auth_layer(mode, &billing, &billing_url)?);

    let orders_server = Server::start(&orders, orders_listener, orders_app, BILLING, "orders")?;
    let billing_server = Server::start(&billing, billing_listener, billing_app, ORDERS, "billing")?;

    let outcome = exercise(&idp, mode, &billing, &intruder, &orders_url, orders_addr).await;
    let stopped = (orders_server.shut_down().await, billing_server.shut_down().await);
    let (billing_to_orders, orders_to_billing, order_body, intruder, anonymous, curl) = outcome?;
    stopped.0?;
    stopped.1?;
    Ok(DemoReport {
        mode,
        orders_url,
        billing_url,
        billing_to_orders,
        orders_to_billing,
        order_body,
        intruder,
        anonymous,
        curl,
    })
}

type Exercised = (Call, Call, Value, Rejected, Rejected, Option<CurlReport>);

/// The calls, made while both services run.
async fn exercise(
    idp: &IdentityServer,
    mode: Mode,
    billing: &Workload,
    intruder: &Workload,
    orders_url: &str,
    orders_addr: SocketAddr,
) -> anyhow::Result<Exercised> {
    // billing -> orders, which calls billing before answering.
    let url = format!("{orders_url}/orders/42");
    let billing_client = idp.client(mode, billing, ORDERS)?;
    let answer = fetch_json(&billing_client, &url).await.context("billing -> orders")?;
    let body = &answer.body;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let billing_to_orders = Call {
        from: "billing",
        to: "orders",
        url: url.clone(),
        status: answer.status,
        caller_id: text(&body["caller"]).unwrap_or_default(),
        caller_mode: text(&body["mode"]).unwrap_or_default(),
        proof_id: text(&body["proof_id"]),
        response_signed_by: answer.signed_by.clone(),
    };
    let inner = &body["billing_call"];
    let orders_to_billing = Call {
        from: "orders",
        to: "billing",
        url: text(&inner["url"]).unwrap_or_default(),
        status: inner["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or_default(),
        caller_id: text(&inner["body"]["caller"]).unwrap_or_default(),
        caller_mode: text(&inner["body"]["mode"]).unwrap_or_default(),
        proof_id: text(&inner["body"]["proof_id"]),
        response_signed_by: text(&inner["response_signed_by"]),
    };

    // The intruder: valid credentials from the same identity server, not allowed.
    let intruder_client = idp.client(mode, intruder, ORDERS)?;
    let intruder_attempt = attempt("intruder (spiffe://example.org/intruder)", &intruder_client, &url).await;

    // No credentials at all. For mTLS: an ordinary HTTPS client that trusts the root CA
    // and checks the host name, but has no client certificate.
    let plain = reqwest::Client::builder().no_proxy().timeout(CALL_TIMEOUT);
    let (plain, anonymous_url) = match mode {
        Mode::Mtls => {
            let root = reqwest::Certificate::from_pem(idp.ca.cert_pem().as_bytes())?;
            let client = plain.tls_certs_only([root]).resolve("localhost", orders_addr).build()?;
            (client, format!("https://localhost:{}/orders/42", orders_addr.port()))
        }
        _ => (plain.build()?, url),
    };
    let plain = reqwest_middleware::ClientBuilder::new(plain).build();
    let anonymous = attempt("anonymous (no credentials)", &plain, &anonymous_url).await;

    let curl = match (mode, &billing.credentials) {
        (Mode::Mtls, Credentials::Svid { svid, .. }) => curl_calls(idp, svid, orders_addr.port()).await?,
        _ => None,
    };
    Ok((
        billing_to_orders,
        orders_to_billing,
        answer.body,
        intruder_attempt,
        anonymous,
        curl,
    ))
}

/// curl to orders with and without billing's SVID; `None` when curl is not installed.
async fn curl_calls(idp: &IdentityServer, billing: &X509Svid, port: u16) -> anyhow::Result<Option<CurlReport>> {
    let installed = tokio::process::Command::new("curl")
        .arg("--version")
        .output()
        .await
        .is_ok_and(|o| o.status.success());
    if !installed {
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    let key_pem = billing.key_pem().context("billing's SVID has no private key")?;
    let chain = write_file(dir.path(), "chain.pem", &billing.chain_pem())?;
    let key = write_file(dir.path(), "key.pem", &key_pem)?;
    let root = write_file(dir.path(), "root.pem", &idp.ca.cert_pem())?;
    let url = format!("https://localhost:{port}/orders/42");
    // --resolve: only 127.0.0.1 listens; this keeps curl from trying ::1 first.
    let resolve = format!("localhost:{port}:127.0.0.1");
    let common = ["-sS", "--max-time", "10", "--resolve", &resolve, "--cacert", &root];
    let with_cert = run_curl(&[&common[..], &["--cert", &chain, "--key", &key, &url]].concat()).await?;
    let without_cert = run_curl(&[&common[..], &[&url]].concat()).await?;
    Ok(Some(CurlReport {
        with_cert,
        without_cert,
    }))
}

fn write_file(dir: &FsPath, name: &str, contents: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    path.into_os_string()
        .into_string()
        .map_err(|p| anyhow!("{} is not UTF-8", p.display()))
}

/// Runs curl without blocking the runtime (orders answers curl on this runtime).
async fn run_curl(args: &[&str]) -> anyhow::Result<CurlRun> {
    let output = tokio::time::timeout(
        CALL_TIMEOUT + Duration::from_secs(5),
        tokio::process::Command::new("curl")
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("curl timed out")?
    .context("running curl")?;
    Ok(CurlRun {
        command: format!("curl {}", args.join(" ")),
        exit_code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}
