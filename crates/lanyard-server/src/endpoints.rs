//! The server's network edges: public HTTP endpoints, the `https_spiffe` bundle endpoint
//! and the admin API. Handlers extract,
//! call the domain, and map errors through [`crate::error::ServerError`].

pub mod admin;
pub mod bundle_endpoint;
pub mod public;
