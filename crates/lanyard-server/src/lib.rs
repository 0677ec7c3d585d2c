//! The Lanyard identity server: it keeps registration entries and attested agents in a
//! datastore (SQLite by default, PostgreSQL for replicas), runs the X.509 CA and the JWT
//! and WIT signing keys through a prepare → activate → retire lifecycle, issues
//! credentials, and serves trust bundles, JWKS and discovery metadata.
//!
//! It does not attest workloads (the node agent does) and does not hold workload private
//! keys (workloads and agents generate their own).

#![forbid(unsafe_code)]

pub mod api;
pub mod attest;
mod audit;
pub mod ca;
pub mod config;
pub mod datastore;
pub mod endpoints;
pub mod entries;
pub mod error;
pub mod federation;
pub mod issue;
pub mod model;
pub mod oauth;
pub mod sdcwt;
pub mod server;
pub mod state;

// Public API
pub use config::ServerConfig;
pub use server::{RunningServer, init_logging, start};
