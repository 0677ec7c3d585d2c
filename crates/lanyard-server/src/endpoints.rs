//! The server's network edges: public HTTP endpoints and the admin API. Handlers extract,
//! call the domain, and map errors through [`crate::error::ServerError`].

pub mod admin;
pub mod public;
