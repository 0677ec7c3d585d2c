//! What the agent serves, and how connections get there:
//!
//! - [`socket`]: binding the Workload API Unix socket safely, and who can reach it;
//! - [`connection`]: admitting each connection (per-uid caps, handshake deadline, the
//!   calling process pinned);
//! - [`h2_authority`]: the HTTP/2 `:authority` fix that lets gRPC C-core clients in;
//! - [`workload_api`]: the SPIFFE Workload API service;
//! - [`mint_budget`]: how many credentials the server mints for one uid's workloads;
//! - [`health`]: `/healthz`, `/readyz` and `/status` over HTTP.

pub mod connection;
pub mod h2_authority;
pub mod health;
pub mod mint_budget;
pub mod socket;
pub mod workload_api;
