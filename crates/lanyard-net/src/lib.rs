//! Listener hardening shared by the Lanyard server and agent.
//!
//! Every socket Lanyard listens on (the server's public HTTP endpoints, agent API, bundle
//! endpoint and admin socket; the agent's Workload API and health endpoint) is reachable
//! by parties that may be hostile or broken. This crate holds the few rules they all
//! follow, so that no listener can be starved by another or exhaust the process:
//!
//! - [`ConnectionLimiter`]: a cap on the connections open at once on one listener, and
//!   a cap per peer (an IP address, or a uid on a Unix socket); a connection over either
//!   cap is closed at accept, before any byte is read;
//! - [`Guarded`]: a connection that holds its limiter permit and must deliver its first
//!   bytes (the TLS handshake, the HTTP/2 preface, an HTTP/1 request line) within the
//!   handshake timeout;
//! - [`serve_http`]: an accept loop for axum routers (plain or TLS, HTTP/1.1 and
//!   HTTP/2) with those limits, a header-read timeout that also bounds idle keep-alive
//!   connections, a body-read timeout per request ([`DeadlineBody`]), the `Host` rule of
//!   RFC 9112 ([`host_violation`]), and HTTP/2 keep-alive pings;
//! - [`WithPeer`]: a connection carrying what was learned about its peer at accept (for
//!   tonic's `ConnectInfo`);
//! - [`raise_nofile_limit`]: raises the soft `RLIMIT_NOFILE` to the hard limit at start.
//!
//! It does not authenticate anyone: callers are identified by the services behind it.

mod guarded;
mod http;
mod limiter;
mod limits;
mod request;
mod rlimit;
mod with_peer;

pub use guarded::Guarded;
pub use http::{Accepted, PeerCertificates, serve_http};
pub use limiter::{ConnectionLimiter, ConnectionPermit, PeerKey, Refused};
pub use limits::{ListenerLimits, fit_to_nofile};
pub use request::{BodyTimedOut, DeadlineBody, host_violation};
pub use rlimit::{NofileLimit, raise_nofile_limit};
pub use with_peer::WithPeer;
