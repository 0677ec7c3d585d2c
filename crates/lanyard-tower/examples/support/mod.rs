//! What the `wpt`, `httpsig` and `mtls` examples share, none of which is Lanyard API: a
//! stand-in for the identity server, the two services' handlers, serving with a clean
//! shutdown, a client call that records how it ended, a reqwest middleware that shows the
//! headers a request left with, and the report each example prints (and
//! `tests/examples.rs` checks).

#![allow(dead_code, unreachable_pub, unnameable_types)]

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context as _, ensure};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use lanyard_core::jose::decode_unverified;
use lanyard_core::{Algorithm, Clock, CryptoProvider, KeyUse, SpiffeId, SystemClock, TrustDomain, TrustStore};
use lanyard_core::{WitIssuer, WorkloadId};
use lanyard_tower::{
    AuthorizeLayer, StaticCredentials, TxnToken, UnverifiedTxnToken, VerifiedResponder, VerifiedWorkload,
    WorkloadCredentials,
};
use lanyard_x509::{SubjectKey, SvidSource, X509Authority, X509Bundle, X509BundleSet, X509Svid};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next, RequestBuilder};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The orders service.
pub const ORDERS: &str = "spiffe://example.org/orders";
/// The billing service.
pub const BILLING: &str = "spiffe://example.org/billing";
/// A workload of the same trust domain that neither service allows.
pub const INTRUDER: &str = "spiffe://example.org/intruder";
/// The transaction context billing sends with its call: a stand-in shaped like a Txn-Token
/// (Lanyard binds Txn-Tokens to the proof but does not verify them yet; this one is not signed).
pub const TXN_TOKEN: &str =
    "eyJhbGciOiJFUzI1NiIsInR5cCI6InR4bnRva2VuK2p3dCJ9.eyJ0eG4iOiJvcmRlci00MiJ9.unsigned-example";

/// The identity server stand-in: WITs signed with an ES256 key the services trust, and a
/// root CA whose certificate is the trust domain's X.509 bundle.
pub struct IdentityServer {
    provider: Arc<dyn CryptoProvider>,
    /// The WIT keys of `example.org`, as the services trust them.
    pub trust: Arc<TrustStore>,
    issuer: WitIssuer,
    ca: X509Authority,
}

impl IdentityServer {
    /// A fresh issuer key and root CA for `example.org`.
    pub fn new() -> anyhow::Result<IdentityServer> {
        let provider = lanyard_crypto::provider();
        let key = provider.generate_key(Algorithm::ES256)?;
        let trust = Arc::new(TrustStore::new(Arc::clone(&provider)));
        trust.add_key("example.org", KeyUse::WitSvid, &key.public_jwk())?;
        let issuer = WitIssuer::new(Arc::clone(&provider), key, None, None, 3600);
        let ca = X509Authority::new_root(
            lanyard_crypto::provider(),
            &TrustDomain::parse("example.org")?,
            None,
            86_400,
            SystemClock.now(),
        )?;
        Ok(IdentityServer {
            provider,
            trust,
            issuer,
            ca,
        })
    }

    /// A WIT for `id` binding a fresh EdDSA workload key, as a credential source.
    pub fn wit(&self, id: &str) -> anyhow::Result<Arc<StaticCredentials>> {
        let key = self.provider.generate_key(Algorithm::EdDSA)?;
        let wit = self
            .issuer
            .issue(&WorkloadId::parse(id)?, &key.public_jwk(), SystemClock.now())?;
        let creds = WorkloadCredentials::new(wit, key, self.provider.as_ref())?;
        Ok(Arc::new(StaticCredentials(Arc::new(creds))))
    }

    /// An X.509-SVID (P-256) for `id` naming `dns`, and a rustls-facing source holding it.
    pub fn svid(&self, id: &str, dns: &[&str]) -> anyhow::Result<(X509Svid, Arc<SvidSource>)> {
        let dns: Vec<String> = dns.iter().map(|&n| n.to_owned()).collect();
        let id = SpiffeId::parse(id)?;
        let svid = self
            .ca
            .issue_svid(&id, SubjectKey::Generate, 3600, &dns, SystemClock.now())?;
        let bundle = X509Bundle::from_pem(TrustDomain::parse("example.org")?, &self.ca.cert_pem())?;
        let source = Arc::new(SvidSource::new(&svid, X509BundleSet::new().with(bundle))?);
        Ok((svid, source))
    }

    /// The root certificate (PEM), for clients that check the server's certificate.
    pub fn ca_pem(&self) -> String {
        self.ca.cert_pem()
    }
}

/// A service running on its own task until [`Server::stop`].
pub struct Server {
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Starts `serve`, handing it a future that completes when the server should stop.
    pub fn start<F>(serve: impl FnOnce(oneshot::Receiver<()>) -> F) -> Server
    where
        F: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        Server {
            stop,
            task: tokio::spawn(serve(stopped)),
        }
    }

    /// Serves `app` over plain HTTP on `listener`.
    pub fn plain(listener: TcpListener, app: Router) -> Server {
        Server::start(|stopped| async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        })
    }

    /// Stops accepting, lets open requests finish, and returns how serving ended.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        Ok(self.task.await??)
    }
}

/// orders' handler state: its client for billing, and billing's URL.
#[derive(Clone)]
pub struct Orders {
    /// orders' client, authenticating as orders.
    pub billing: ClientWithMiddleware,
    /// billing's base URL.
    pub billing_url: String,
}

/// `GET /orders/{id}` on orders: asks billing first, then says who called, how, and with
/// which (bound, unverified) Txn-Token.
pub async fn order(
    State(s): State<Orders>,
    Path(id): Path<u64>,
    caller: VerifiedWorkload,
    txn: Option<UnverifiedTxnToken>,
) -> Json<Value> {
    let billing = call(s.billing.get(format!("{}/billing/limits", s.billing_url))).await;
    Json(json!({
        "order": { "id": id, "total_cents": 4_200 },
        "caller": caller.id.as_str(), "mode": caller.mode.as_str(), "proof_id": caller.proof_id,
        "txn_token": txn.as_ref().map(UnverifiedTxnToken::as_unverified_str),
        "billing_call": billing.json(),
    }))
}

/// `GET /billing/limits` on billing: says who called and how.
pub async fn limits(caller: VerifiedWorkload) -> Json<Value> {
    Json(json!({
        "credit_limit_cents": 250_000,
        "caller": caller.id.as_str(), "mode": caller.mode.as_str(), "proof_id": caller.proof_id,
    }))
}

/// How one call ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The status, or `None` when there was no HTTP response (a refused TLS handshake).
    pub status: Option<u16>,
    /// The problem `kind` of a refusal (`tls_handshake_refused` without a response).
    pub kind: String,
    /// The problem `detail`, or the client's error.
    pub detail: String,
    /// `WWW-Authenticate` or `Accept-Signature`, when the server sent one.
    pub challenge: Option<String>,
    /// Whose WIT signed the response, when the client verified a response signature.
    pub signed_by: Option<String>,
    /// The response body, as JSON (`null` otherwise).
    pub body: Value,
}

impl Outcome {
    fn json(&self) -> Value {
        json!({ "status": self.status, "kind": self.kind, "signed_by": self.signed_by, "body": self.body })
    }
}

/// Sends `request` (with a 10 s timeout) and records how it ended.
pub async fn call(request: RequestBuilder) -> Outcome {
    let response = match request.timeout(std::time::Duration::from_secs(10)).send().await {
        Ok(r) => r,
        Err(e) => {
            let detail = format!("{:#}", anyhow::Error::from(e));
            return Outcome {
                status: None,
                kind: "tls_handshake_refused".into(),
                detail,
                challenge: None,
                signed_by: None,
                body: Value::Null,
            };
        }
    };
    let status = response.status().as_u16();
    let signed_by = response
        .extensions()
        .get::<VerifiedResponder>()
        .map(|r| r.id.to_string());
    let challenge = ["www-authenticate", "accept-signature"]
        .iter()
        .find_map(|h| response.headers().get(*h)?.to_str().ok().map(str::to_owned));
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    Outcome {
        status: Some(status),
        kind: field("kind"),
        detail: field("detail"),
        challenge,
        signed_by,
        body,
    }
}

/// A reqwest middleware, placed after `WorkloadAuthMiddleware`, that records the
/// authentication headers each request left with (token values shortened, a WPT also
/// decoded) and the signature parameters of a signed response.
#[derive(Clone, Default)]
pub struct WireLog(Arc<Mutex<Vec<String>>>);

const SHOWN: [&str; 5] = [
    "workload-identity-token",
    "authorization",
    "txn-token",
    "signature-input",
    "signature",
];

impl WireLog {
    /// What was recorded so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[async_trait::async_trait]
impl Middleware for WireLog {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let mut lines = vec![format!("{} {}", req.method(), req.url())];
        for (name, value) in req.headers().iter().filter(|(n, _)| SHOWN.contains(&n.as_str())) {
            let value = String::from_utf8_lossy(value.as_bytes());
            let shown = match value.char_indices().nth(72) {
                Some((cut, _)) if name != "signature-input" => format!("{}...", &value[..cut]),
                _ => value.to_string(),
            };
            lines.push(format!("  {name}: {shown}"));
            // The proof's decoded header and claims: what a WPT binds (no `ath` in -02).
            if let Some(wpt) = value.strip_prefix("WPT ")
                && let Ok(decoded) = decode_unverified(wpt)
            {
                lines.push(format!("    WPT header {}", Value::Object(decoded.header)));
                lines.push(format!("    WPT claims {}", Value::Object(decoded.claims)));
            }
        }
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend(lines);
        let response = next.run(req, extensions).await?;
        // A signed response: its parameters, with the request's nonce in wimse-req-nonce.
        if let Some(input) = response.headers().get("signature-input").and_then(|v| v.to_str().ok()) {
            let line = format!("  <- {} signature-input: {input}", response.status().as_u16());
            self.0.lock().unwrap_or_else(PoisonError::into_inner).push(line);
        }
        Ok(response)
    }
}

/// What one run of an example saw.
#[derive(Debug)]
pub struct Report {
    /// The example's mode, for the heading.
    pub title: &'static str,
    /// billing's call to orders (whose answer includes orders' call to billing).
    pub billing_to_orders: Outcome,
    /// The intruder's call to orders.
    pub intruder: Outcome,
    /// A call to orders without credentials.
    pub anonymous: Outcome,
    /// The authentication headers on the wire.
    pub wire: Vec<String>,
    /// Anything else worth printing (curl runs in the mTLS example).
    pub notes: Vec<String>,
}

impl Report {
    /// Fails unless both calls went through in `mode`, each side seeing the other, and the
    /// intruder and the anonymous caller were refused as `refusals` says (status, kind).
    pub fn check(&self, mode: &str, refusals: [(Option<u16>, &str); 2]) -> anyhow::Result<()> {
        let b2o = &self.billing_to_orders;
        let o2b = &b2o.body["billing_call"];
        ensure!(b2o.status == Some(200), "billing -> orders: {b2o:?}");
        ensure!(
            b2o.body["caller"] == BILLING && b2o.body["mode"] == mode,
            "orders saw {}",
            b2o.body
        );
        ensure!(o2b["status"] == 200, "orders -> billing: {o2b}");
        ensure!(
            o2b["body"]["caller"] == ORDERS && o2b["body"]["mode"] == mode,
            "billing saw {o2b}"
        );
        for (who, seen, (status, kind)) in [
            ("intruder", &self.intruder, refusals[0]),
            ("anonymous", &self.anonymous, refusals[1]),
        ] {
            ensure!(
                seen.status == status && seen.kind == kind,
                "{who}: expected {status:?} {kind}, got {seen:?}"
            );
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b2o = &self.billing_to_orders;
        let o2b = &b2o.body["billing_call"];
        writeln!(f, "== Lanyard example: {} ==", self.title)?;
        let status = |s: Option<u16>| s.map_or_else(|| "no response".to_owned(), |s| s.to_string());
        writeln!(
            f,
            "billing -> orders    {}: orders saw {} via {}",
            status(b2o.status),
            b2o.body["caller"],
            b2o.body["mode"]
        )?;
        if let Some(txn) = b2o.body["txn_token"].as_str() {
            writeln!(f, "  with a Txn-Token bound to the proof (unverified): {txn}")?;
        }
        writeln!(
            f,
            "  orders -> billing  {}: billing saw {} via {}",
            o2b["status"], o2b["body"]["caller"], o2b["body"]["mode"]
        )?;
        for (call, signer) in [
            (o2b, o2b["signed_by"].as_str()),
            (&Value::Null, b2o.signed_by.as_deref()),
        ] {
            if let Some(signer) = signer {
                let what = if call.is_null() {
                    "orders' answer"
                } else {
                    "  billing's answer"
                };
                writeln!(f, "{what} signed by {signer}, verified by the caller")?;
            }
        }
        for (who, seen) in [("intruder ", &self.intruder), ("anonymous", &self.anonymous)] {
            let challenge = seen
                .challenge
                .as_deref()
                .map(|c| format!(" [challenge: {c}]"))
                .unwrap_or_default();
            let (code, kind, detail) = (status(seen.status), &seen.kind, &seen.detail);
            writeln!(f, "REJECTED {who} -> orders  {code} kind={kind}: {detail}{challenge}")?;
        }
        if !self.wire.is_empty() {
            writeln!(f, "\non the wire:")?;
        }
        for line in self.wire.iter().chain(&self.notes) {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// Binds 127.0.0.1 on a free port; returns the listener and its base URL.
pub async fn bind(scheme: &str) -> anyhow::Result<(TcpListener, String)> {
    let listener = TcpListener::bind("127.0.0.1:0").await.context("binding 127.0.0.1")?;
    let url = format!("{scheme}://{}", listener.local_addr()?);
    Ok((listener, url))
}

/// How an example gives the workload `me` a client, recording what it sends in `wire`.
pub type MakeClient = fn(&IdentityServer, &str, &WireLog) -> anyhow::Result<ClientWithMiddleware>;
/// How an example protects the routes of the service `me`, known as `base_url`.
pub type Protect = fn(&IdentityServer, Router, &str, &str) -> anyhow::Result<Router>;

/// The scenario of the `wpt` and `httpsig` examples, over plain HTTP on loopback: billing
/// (only orders may call it) and orders (only billing may; it calls billing before
/// answering); billing calls orders, then the intruder and a caller without credentials try.
pub async fn two_services(title: &'static str, client: MakeClient, protect: Protect) -> anyhow::Result<Report> {
    let idp = IdentityServer::new()?;
    let wire = WireLog::default();
    let only = |id: &str| anyhow::Ok(AuthorizeLayer::workloads([WorkloadId::parse(id)?]));
    let (billing_listener, billing_url) = bind("http").await?;
    let (orders_listener, orders_url) = bind("http").await?;

    let billing = Router::new().route("/billing/limits", get(limits).route_layer(only(ORDERS)?));
    let billing = Server::plain(billing_listener, protect(&idp, billing, &billing_url, BILLING)?);
    let state = Orders {
        billing: client(&idp, ORDERS, &wire)?,
        billing_url,
    };
    let orders = Router::new()
        .route("/orders/{id}", get(order).route_layer(only(BILLING)?))
        .with_state(state);
    let orders = Server::plain(orders_listener, protect(&idp, orders, &orders_url, ORDERS)?);

    let url = format!("{orders_url}/orders/42");
    let anonymous = ClientBuilder::new(reqwest::Client::builder().no_proxy().build()?).build();
    let billing_client = client(&idp, BILLING, &wire)?;
    let report = Report {
        title,
        // billing sends transaction context in its own header, bound to its proof.
        billing_to_orders: call(billing_client.get(&url).with_extension(TxnToken::new(TXN_TOKEN))).await,
        intruder: call(client(&idp, INTRUDER, &WireLog::default())?.get(&url)).await,
        anonymous: call(anonymous.get(&url)).await,
        wire: wire.lines(),
        notes: Vec::new(),
    };
    orders.stop().await?;
    billing.stop().await?;
    Ok(report)
}
