//! Audit events: one `tracing` event (target `audit`) per security-relevant action of the
//! admin API and the agent API, with the action, its outcome (`ok` or an error's stable
//! code), the subject's identifiers (never secrets: join tokens appear by their ID) and,
//! for network callers, the peer's address.

use std::net::SocketAddr;

/// Where an audited action came from (the event's message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The admin API on its Unix socket.
    Admin,
    /// The agent API.
    AgentApi,
}

/// Writes one audit event.
pub(crate) fn record(source: Source, action: &str, outcome: &str, subject: &str, remote: Option<SocketAddr>) {
    match source {
        Source::Admin => tracing::info!(target: "audit", action, outcome, subject, "admin action"),
        Source::AgentApi => {
            let remote = remote.map(|a| a.to_string()).unwrap_or_default();
            tracing::info!(target: "audit", action, outcome, subject, remote, "agent API");
        }
    }
}
