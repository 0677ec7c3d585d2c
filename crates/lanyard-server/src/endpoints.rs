//! The server's HTTP edges: public endpoints, the `https_spiffe` bundle endpoint and the
//! admin API. Handlers extract, call the domain, and return [`crate::error::ServerError`],
//! which `status.rs` maps to HTTP once for all of them.

pub mod admin;
mod admin_clients;
pub mod bundle_endpoint;
pub mod oauth;
pub mod public;
pub mod spice;
mod status;
