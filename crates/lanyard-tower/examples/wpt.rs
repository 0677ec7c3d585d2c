//! Two services, `orders` and `billing`, calling each other with WIT + Workload Proof
//! Token (draft-ietf-wimse-wpt-02): on each server a `WorkloadAuthLayer` verifies the
//! caller (and an `AuthorizeLayer` in `support` lets one workload through per route); on
//! each client a `WorkloadAuthMiddleware` attaches the workload's WIT
//! (`Workload-Identity-Token`) and a fresh WPT (`Authorization: WPT`, no `ath`) to every
//! request. billing's call carries a `Txn-Token`, bound to the proof by `tth`, which orders'
//! handler receives as an `UnverifiedTxnToken`.
//!
//! Run with `cargo run -p lanyard-tower --example wpt`. It prints who called whom, the
//! refused attempts (a workload that is not allowed, and a caller without credentials),
//! and the headers on the wire; it exits non-zero if anything did not go as intended.

#[path = "support/mod.rs"]
pub mod support;

use std::sync::Arc;

use axum::Router;
use lanyard_tower::{ClientMode, WorkloadAuthConfig, WorkloadAuthLayer, WorkloadAuthMiddleware};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use support::{IdentityServer, Report, WireLog};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let report = run().await?;
    print!("{report}");
    report.check("wpt", [(Some(403), "forbidden"), (Some(401), "missing_credentials")])?;
    println!("\nOK: every call went through, every unauthorized attempt was refused.");
    Ok(())
}

/// The client side: every request leaves with `me`'s WIT and a fresh WPT for its URL.
fn client(idp: &IdentityServer, me: &str, wire: &WireLog) -> anyhow::Result<ClientWithMiddleware> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    Ok(ClientBuilder::new(http)
        .with(WorkloadAuthMiddleware::new(idp.wit(me)?, ClientMode::default()))
        .with(wire.clone())
        .build())
}

/// The server side: the caller's WIT and WPT are verified for this service's own URI
/// (from configuration, never from `Host`) before any handler runs.
fn protect(idp: &IdentityServer, routes: Router, base_url: &str, _me: &str) -> anyhow::Result<Router> {
    let config = WorkloadAuthConfig::new(base_url);
    Ok(routes.layer(WorkloadAuthLayer::new(Arc::clone(&idp.trust), config)))
}

/// Starts billing and orders, makes the calls, stops both services and reports what happened.
pub async fn run() -> anyhow::Result<Report> {
    support::two_services("WIT + Workload Proof Token", client, protect).await
}
