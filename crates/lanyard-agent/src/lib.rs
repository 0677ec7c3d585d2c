//! The Lanyard node agent (`lanyard agent`).
//!
//! It runs on every node and is a drop-in SPIFFE Workload API endpoint. It does not issue
//! credentials itself: the server signs them, the agent holds them for its workloads.
//!
//! - [`attestor`]: proving the node to the server (`node`: join token or x509pop), and
//!   identifying local callers ([`attestor::workload`]: the `unix` attestor);
//! - [`manager`]: keeps the agent SVID renewed, receives the entries the server pushes,
//!   pre-mints X.509-SVIDs for them with keys generated here, rotates them at about
//!   half-life, and mints JWT-SVIDs and WIT-SVIDs on demand;
//! - [`state`]: what the agent holds, published as immutable snapshots;
//! - [`endpoints`]: the Workload API on a Unix socket (X.509-SVIDs, JWT-SVIDs, WIT-SVIDs
//!   and bundles) and the health endpoint;
//! - [`config`] and [`error`].
//!
//! [`start`] composes them (in `agent.rs`); [`RunningAgent::run_until`] serves until
//! shutdown.

mod agent;
pub mod attestor;
pub mod config;
pub mod endpoints;
pub mod error;
mod link;
pub mod manager;
pub mod state;
mod storage;
mod svid;

pub use agent::{RunningAgent, start};
pub use config::{AgentConfig, LogFormat, X509PopConfig};
pub use error::AgentError;
pub use manager::{Health, Manager};
