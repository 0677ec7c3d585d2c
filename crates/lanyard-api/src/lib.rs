//! gRPC definitions for Lanyard: the SPIFFE Workload API that the agent serves to workloads,
//! and the server↔agent API, as `.proto` files plus the prost messages and tonic client and
//! server stubs generated from them.
//!
//! This crate holds wire types and the few conventions that give them meaning: it does not
//! implement either API, open sockets, attest anything or touch key material. The agent and
//! the server implement the generated server traits ([`workload::spiffe_workload_api_server::SpiffeWorkloadApi`],
//! [`agent::v1::agent_api_server::AgentApi`]) and call the generated clients.
//!
//! # Modules
//!
//! - [`workload`]: `proto/workload.proto`, the SPIFFE Workload API copied verbatim from the
//!   SPIFFE specification (no protobuf package, so the gRPC service is `SpiffeWorkloadAPI` and
//!   its methods are `/SpiffeWorkloadAPI/FetchX509SVID` and so on). prost turns the proto names
//!   into Rust camel case: `X509SVID` is [`workload::X509svid`], `JWTSVIDRequest` is
//!   [`workload::JwtsvidRequest`], `JWTBundlesResponse` is [`workload::JwtBundlesResponse`].
//! - [`agent::v1`]: `proto/lanyard/agent/v1/agent.proto`, package `lanyard.agent.v1`: node
//!   attestation, agent SVID renewal, a push stream of the entries authorized for an agent,
//!   and SVID/WIT signing for those entries.
//! - [`node`]: the node-attestation conventions both ends of `lanyard.agent.v1` follow (agent
//!   IDs, join-token hashes, the x509pop signed message), computed with the caller's
//!   `CryptoProvider`.
//!
//! # Generated code
//!
//! The Rust code under `src/gen/` (one file per protobuf package) is generated and committed, so
//! that building this crate needs neither `protoc` nor a build script. The test
//! `tests/codegen.rs` regenerates it with protox (a pure-Rust protobuf compiler) and
//! tonic-prost-build and fails if anything differs. After editing a `.proto` file, or upgrading
//! tonic or prost, refresh the committed files with
//!
//! ```sh
//! LANYARD_REGENERATE=1 cargo test -p lanyard-api --test codegen
//! ```
//!
//! and never edit `src/gen/` by hand.
//!
//! # Example
//!
//! ```
//! use lanyard_api::workload::{JwtBundlesResponse, X509svid};
//!
//! // Map keys are the SPIFFE ID of the trust domain; JWT bundles are JWKS JSON bytes.
//! let bundles = JwtBundlesResponse {
//!     bundles: [("spiffe://example.org".to_owned(), br#"{"keys":[]}"#.to_vec())].into(),
//! };
//! assert_eq!(bundles.bundles.len(), 1);
//!
//! let svid = X509svid { spiffe_id: "spiffe://example.org/web".to_owned(), ..Default::default() };
//! assert!(svid.hint.is_empty());
//! ```

/// The SPIFFE Workload API (`proto/workload.proto`, no protobuf package): messages, the
/// `SpiffeWorkloadAPI` client ([`workload::spiffe_workload_api_client`]) and server
/// ([`workload::spiffe_workload_api_server`]).
#[rustfmt::skip]
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod workload {
    include!("gen/_.rs");
}

/// The Lanyard server↔agent API.
pub mod agent {
    /// Version 1 of the server↔agent API (`proto/lanyard/agent/v1/agent.proto`, package
    /// `lanyard.agent.v1`): messages, the `AgentApi` client ([`v1::agent_api_client`]) and
    /// server ([`v1::agent_api_server`]).
    #[rustfmt::skip]
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        include!("gen/lanyard.agent.v1.rs");
    }
}

/// Lanyard's Workload API extension for SD-CWTs (SPICE).
pub mod spice {
    /// Version 1 of Lanyard's Workload API extension for SD-CWTs
    /// (`proto/lanyard/spice/v1/sdcwt.proto`, package `lanyard.spice.v1`): messages, the
    /// `SdCwt` client ([`v1::sd_cwt_client`]) and server ([`v1::sd_cwt_server`]).
    #[rustfmt::skip]
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        include!("gen/lanyard.spice.v1.rs");
    }
}

pub mod node;
