//! Test support shared by Lanyard's test suites (not published; a dev-dependency only).
//!
//! - [`world`]: the fixed instant [`NOW`], the crypto [`provider`], a [`fixed_clock`],
//!   keys, and a trust domain with a WIT issuer ([`WitWorld`]) — what the core, tower and
//!   interop tests used to rebuild in every file.
//! - [`vectors`]: the conformance-vector runner over `testdata/vectors/` (every case runs,
//!   failures are reported together, known divergences come from `exceptions.json` and a
//!   listed case that passes fails the run), usable by any vector family (JOSE, HTTP
//!   signatures, OAuth, SD-CWT).
//! - [`hex`]: hexadecimal test data to bytes (encoding is `lanyard_core::hex`).
//! - `harness`: a real server in process (SQLite in a temporary directory; feature
//!   `server`) and agents attested to it (feature `harness`, which implies `server`), for
//!   the server's agent-API tests and the agent's tests. Behind features so that
//!   lanyard-core's tests never compile the server.
//! - `key_host` (feature `key-host`): a loopback HTTP server publishing a JWK Set and the
//!   metadata that names it, which a test replaces, takes down and counts fetches of.

// Test support: a failed setup step is a failed test, so panicking is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod hex;
pub mod vectors;
pub mod world;

#[cfg(feature = "server")]
pub mod harness;

#[cfg(feature = "key-host")]
pub mod key_host;

pub use world::{NOW, WitWorld, fixed_clock, key, provider};
