//! Two services, `orders` and `billing`, calling each other over mutual TLS with
//! X.509-SVIDs (draft-ietf-wimse-mutual-tls): each server is served by
//! `lanyard_tower::mtls::serve`, whose handshake admits only the one peer SVID allowed, and
//! its `WorkloadAuthLayer` (mTLS mode) hands the handler the peer's identity; each client
//! pins the SPIFFE ID of the service it calls. If `curl` is installed, it calls orders
//! with billing's SVID as its client certificate (accepted) and without one (refused).
//!
//! Run with `cargo run -p lanyard-tower --example mtls`. It prints who called whom and the
//! refused attempts, and exits non-zero if anything did not go as intended.

#[path = "support/mod.rs"]
mod support;

use std::process::Output;
use std::sync::Arc;

use anyhow::{Context as _, ensure};
use axum::Router;
use axum::routing::get;
use lanyard_core::SpiffeId;
use lanyard_tower::{Modes, WorkloadAuthConfig, WorkloadAuthLayer};
use lanyard_x509::{Authorizer, SvidSource};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use support::{BILLING, INTRUDER, IdentityServer, ORDERS, Orders, Report, Server, bind, call};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (report, curl) = run().await?;
    print!("{report}");
    let refused = (None, "tls_handshake_refused");
    report.check("mtls", [refused, refused])?;
    if let Some(curl) = &curl {
        ensure!(curl.with_cert.status.success(), "curl with billing's SVID failed");
        ensure!(
            !curl.without_cert.status.success(),
            "curl without a certificate got through"
        );
    }
    println!("\nOK: every call went through, every unauthorized attempt was refused.");
    Ok(())
}

/// A client presenting `me`'s SVID that accepts only the server `peer`.
fn client(me: &Arc<SvidSource>, peer: &str) -> anyhow::Result<ClientWithMiddleware> {
    let tls = lanyard_x509::client_config(Arc::clone(me), Authorizer::Exact(SpiffeId::parse(peer)?))?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls)
        .build()?;
    Ok(ClientBuilder::new(http).build())
}

/// Serves `routes` over mTLS as `me`, completing handshakes only with the SVID of `allowed`;
/// the layer turns the verified peer certificate into the handler's `VerifiedWorkload`.
async fn serve(
    idp: &IdentityServer,
    routes: Router,
    me: &Arc<SvidSource>,
    allowed: &str,
) -> anyhow::Result<(Server, String, u16)> {
    let (listener, url) = bind("https").await?;
    let port = listener.local_addr()?.port();
    let tls = Arc::new(lanyard_x509::server_config(
        Arc::clone(me),
        Authorizer::OneOf(vec![SpiffeId::parse(allowed)?]),
    )?);
    let mut config = WorkloadAuthConfig::new(&url);
    config.modes = Modes::NONE.with_mtls();
    let app = routes.layer(WorkloadAuthLayer::new(Arc::clone(&idp.trust), config));
    let server = Server::start(|stopped| {
        lanyard_tower::mtls::serve(listener, tls, app, async move {
            let _ = stopped.await;
        })
    });
    Ok((server, url, port))
}

/// curl against orders, with and without billing's SVID.
pub struct Curl {
    /// With billing's X.509-SVID as the client certificate.
    pub with_cert: Output,
    /// Without a client certificate.
    pub without_cert: Output,
}

/// Starts billing and orders, makes the calls, stops both services and reports what happened.
pub async fn run() -> anyhow::Result<(Report, Option<Curl>)> {
    let idp = IdentityServer::new()?;
    // orders' SVID also names `localhost`, for clients that check the host name (curl).
    let (_, orders_svid) = idp.svid(ORDERS, &["localhost"])?;
    let (billing_cert, billing_svid) = idp.svid(BILLING, &[])?;
    let (_, intruder_svid) = idp.svid(INTRUDER, &[])?;

    let routes = Router::new().route("/billing/limits", get(support::limits));
    let (billing, billing_url, _) = serve(&idp, routes, &billing_svid, ORDERS).await?;
    let state = Orders {
        billing: client(&orders_svid, BILLING)?,
        billing_url,
    };
    let routes = Router::new()
        .route("/orders/{id}", get(support::order))
        .with_state(state);
    let (orders, orders_url, port) = serve(&idp, routes, &orders_svid, BILLING).await?;

    let url = format!("{orders_url}/orders/42");
    // Without credentials: an ordinary HTTPS client that trusts the root CA, no certificate.
    let root = reqwest::Certificate::from_pem(idp.ca_pem().as_bytes())?;
    let anonymous = reqwest::Client::builder().no_proxy().tls_certs_only([root]);
    let anonymous = anonymous.resolve("localhost", ([127, 0, 0, 1], port).into()).build()?;
    let mut report = Report {
        title: "mutual TLS with X.509-SVIDs",
        billing_to_orders: call(client(&billing_svid, ORDERS)?.get(&url)).await,
        intruder: call(client(&intruder_svid, ORDERS)?.get(&url)).await,
        anonymous: call(
            ClientBuilder::new(anonymous)
                .build()
                .get(format!("https://localhost:{port}/orders/42")),
        )
        .await,
        wire: Vec::new(),
        notes: Vec::new(),
    };
    let curl = curl(&idp, &billing_cert, port).await?;
    if let Some(c) = &curl {
        report.notes.push(format!(
            "\ncurl with billing's SVID:  {}",
            String::from_utf8_lossy(&c.with_cert.stdout)
        ));
        report.notes.push(format!(
            "curl without a certificate: REJECTED {}",
            String::from_utf8_lossy(&c.without_cert.stderr).trim()
        ));
    }
    orders.stop().await?;
    billing.stop().await?;
    Ok((report, curl))
}

/// curl to orders with and without billing's SVID; `None` when curl is not installed.
async fn curl(idp: &IdentityServer, billing: &lanyard_x509::X509Svid, port: u16) -> anyhow::Result<Option<Curl>> {
    let curl = |args: Vec<String>| {
        tokio::process::Command::new("curl")
            .args(args)
            .kill_on_drop(true)
            .output()
    };
    if curl(vec!["--version".into()]).await.is_err() {
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    let file = |name: &str, text: String| -> anyhow::Result<String> {
        let path = dir.path().join(name);
        std::fs::write(&path, text)?;
        Ok(path.display().to_string())
    };
    let (chain, key) = (
        file("chain.pem", billing.chain_pem())?,
        file("key.pem", billing.key_pem().context("no key")?)?,
    );
    let common = [
        "-sS",
        "--max-time",
        "10",
        "--resolve",
        &format!("localhost:{port}:127.0.0.1"),
        "--cacert",
    ];
    let mut args: Vec<String> = common.iter().map(|&a| a.to_owned()).collect();
    args.push(file("root.pem", idp.ca_pem())?);
    let url = format!("https://localhost:{port}/orders/42");
    let with_cert = curl(
        [
            args.clone(),
            vec!["--cert".into(), chain, "--key".into(), key, url.clone()],
        ]
        .concat(),
    )
    .await?;
    let without_cert = curl([args, vec![url]].concat()).await?;
    Ok(Some(Curl {
        with_cert,
        without_cert,
    }))
}
