//! Attestation, both kinds side by side (the split SPIRE's agent makes):
//!
//! - `node`: proving this node to the server (join token or x509pop) to obtain the
//!   agent's own SVID;
//! - [`workload`]: identifying the local process at the other end of a Workload API
//!   connection, as selectors that entries match.

pub(crate) mod node;
pub mod workload;
