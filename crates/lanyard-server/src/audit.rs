//! Audit events: one `tracing` event (target `audit`) per security-relevant action of the
//! admin API and the agent API, per token issued or refused by the OAuth authorization
//! server ([`token`]) and per SD-CWT request at the credential endpoint ([`credential`]),
//! with the action, its outcome (`ok` or an error's stable
//! code), the subject's identifiers (never secrets: join tokens appear by their ID) and,
//! for network callers, the peer's address.

use std::net::SocketAddr;

use lanyard_net::PeerKey;

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

/// What an OAuth token-endpoint audit line says: never the token, assertion or secret.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TokenEvent<'a> {
    /// `token`, `introspect` or `revoke`.
    pub(crate) endpoint: &'a str,
    /// The client (as named by the request; `-` when none).
    pub(crate) client: &'a str,
    /// The client authentication method.
    pub(crate) method: &'a str,
    /// The grant type (`-` outside the token endpoint).
    pub(crate) grant: &'a str,
    /// The issued access token's `jti` (`-` when refused).
    pub(crate) jti: &'a str,
    /// `ok`, or the OAuth error code.
    pub(crate) outcome: &'a str,
    /// The refusal's stable reason (`-` when issued).
    pub(crate) reason: &'a str,
}

/// Writes one OAuth audit event; `remote` is the connection's peer (its IP address), `-`
/// when unknown.
pub(crate) fn token(e: &TokenEvent<'_>, remote: Option<PeerKey>) {
    let remote = remote.filter(|peer| *peer != PeerKey::Unknown);
    tracing::info!(
        target: "audit",
        endpoint = e.endpoint,
        client = e.client,
        method = e.method,
        grant = e.grant,
        jti = e.jti,
        outcome = e.outcome,
        reason = e.reason,
        remote = %OrDash(remote),
        "oauth"
    );
}

/// A value shown as itself, or `-` when absent (as the audit lines show other unknowns).
struct OrDash<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for OrDash<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// Writes one Transaction Token Service event per Txn-Token issued: the transaction, its
/// subject, the scope and the call chain of requesting workloads so far (the first
/// requester first; draft-ietf-oauth-transaction-tokens-11 asks the TTS to keep the chain
/// across replacements). Never the token.
pub(crate) fn txn_token(txn: &str, sub: &str, scope: &str, chain: &[String], replaced: bool) {
    tracing::info!(
        target: "audit",
        txn,
        sub,
        scope,
        req_wl_chain = chain.join(" > "),
        replaced,
        "txn-token"
    );
}

/// Writes one event per platform token accepted from a trusted external issuer in a token
/// exchange: the issuer, the token's `jti` and `sub` as the issuer gave them (if any), the
/// workload identifier its claims mapped to, the client and the role (`subject_token` or
/// `actor_token`). Never the token. The exchange's own line ([`token`]) follows.
pub(crate) fn external_token(issuer: &str, token_jti: &str, token_sub: &str, mapped: &str, client: &str, role: &str) {
    tracing::info!(
        target: "audit",
        issuer,
        token_jti,
        token_sub,
        mapped,
        client,
        role,
        "external token"
    );
}

/// Writes one event per `POST /credentials/sd-cwt`: how the caller authenticated, who it
/// is (`-` before that is known) and the outcome (`ok` or the error's stable code). Never a
/// token or key.
pub(crate) fn credential(method: &str, subject: &str, outcome: &str) {
    tracing::info!(target: "audit", method, subject, outcome, "sd-cwt credential");
}
