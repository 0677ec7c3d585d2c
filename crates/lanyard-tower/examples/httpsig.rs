//! Two services, `orders` and `billing`, calling each other with WIT + HTTP Message
//! Signatures (draft-ietf-wimse-http-signature-07: `@path` + `@query`, the signature found
//! by its tag, `wimse-req-nonce` on every signed response): each client's
//! `WorkloadAuthMiddleware` signs the request with the workload key of its WIT and asks
//! for a signed response; each
//! server's `WorkloadAuthLayer` verifies the caller and signs its answer with its own WIT
//! (and an `AuthorizeLayer` in `support` lets one workload through per route). The client
//! checks the response signature before the caller sees the response.
//!
//! Run with `cargo run -p lanyard-tower --example httpsig`. It prints who called whom, who
//! signed each answer, the refused attempts and the signature headers on the wire; it exits
//! non-zero if anything did not go as intended.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;

use axum::Router;
use lanyard_core::httpsig::{HttpSigPolicy, HttpSigVerifier, TargetComponents};
use lanyard_core::{InMemoryReplayCache, WitPolicy, WitVerifier};
use lanyard_tower::{ClientMode, Modes, WorkloadAuthConfig, WorkloadAuthLayer, WorkloadAuthMiddleware};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use support::{IdentityServer, Report, WireLog};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let report = run().await?;
    print!("{report}");
    report.check(
        "http_signature",
        [(Some(403), "forbidden"), (Some(400), "missing_credentials")],
    )?;
    println!("\nOK: every call went through, every unauthorized attempt was refused.");
    Ok(())
}

/// The client side: every request is signed with the workload key of `me`'s WIT, and
/// only responses signed by a workload whose WIT `idp` issued are accepted.
fn client(idp: &IdentityServer, me: &str, wire: &WireLog) -> anyhow::Result<ClientWithMiddleware> {
    let responses = HttpSigVerifier::new(
        WitVerifier::new(Arc::clone(&idp.trust), WitPolicy::wimse()),
        HttpSigPolicy::default(),
        Arc::new(InMemoryReplayCache::default()),
    );
    let mode = ClientMode::HttpSignature {
        target: TargetComponents::default(),
        require_signed_response: true,
    };
    let http = reqwest::Client::builder().no_proxy().build()?;
    Ok(ClientBuilder::new(http)
        .with(WorkloadAuthMiddleware::new(idp.wit(me)?, mode).with_response_verifier(responses))
        .with(wire.clone())
        .build())
}

/// The server side: signed requests addressed to this service's own URI (from
/// configuration, never from `Host`) are verified before any handler runs, and the answers
/// are signed with the service's own WIT.
fn protect(idp: &IdentityServer, routes: Router, base_url: &str, me: &str) -> anyhow::Result<Router> {
    let mut config = WorkloadAuthConfig::new(base_url);
    config.modes = Modes::NONE.with_http_signature();
    config.response_credentials = Some(idp.wit(me)?);
    Ok(routes.layer(WorkloadAuthLayer::new(Arc::clone(&idp.trust), config)))
}

/// Starts billing and orders, makes the calls, stops both services and reports what happened.
pub async fn run() -> anyhow::Result<Report> {
    support::two_services("WIT + HTTP Message Signatures, signed responses", client, protect).await
}
