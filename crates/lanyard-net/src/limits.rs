//! The limits one listener applies, as they appear in the server's and agent's
//! configuration files.

use std::time::Duration;

use serde::Deserialize;

/// Limits of one listener. Every field has a default; configuration files override them
/// per listener (`[limits.public]`, `[limits.workload_api]`, ...).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerLimits {
    /// Most connections open at once on this listener; further ones are closed at accept.
    pub max_connections: usize,
    /// Most connections open at once from one peer (an IP address, or a uid on a Unix
    /// socket); 0 means no per-peer cap.
    pub max_connections_per_peer: usize,
    /// Seconds a new connection has to complete its TLS handshake and deliver its first
    /// request bytes (the HTTP/2 preface or an HTTP/1 request line).
    pub handshake_timeout: u64,
    /// Seconds an HTTP/1 client has to send a complete request header, counted from the
    /// connection's start or from the previous response: this is also the idle timeout of
    /// kept-alive HTTP/1 connections.
    pub header_read_timeout: u64,
    /// Seconds a client has to send a request's whole body, counted from when its head
    /// was read; a body still incomplete then fails to read, and the service answers the
    /// request as malformed.
    pub body_read_timeout: u64,
    /// Seconds between HTTP/2 pings on a connection; a peer that does not answer within
    /// the same time is disconnected. 0 disables the pings.
    pub keepalive_interval: u64,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            max_connections: 1024,
            max_connections_per_peer: 256,
            handshake_timeout: 10,
            header_read_timeout: 10,
            body_read_timeout: 10,
            keepalive_interval: 30,
        }
    }
}

impl ListenerLimits {
    /// The handshake timeout as a [`Duration`].
    pub fn handshake(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout.max(1))
    }

    /// The header-read (and HTTP/1 idle) timeout as a [`Duration`].
    pub fn header_read(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout.max(1))
    }

    /// The body-read timeout as a [`Duration`].
    pub fn body_read(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout.max(1))
    }

    /// The HTTP/2 keep-alive interval, `None` when disabled.
    pub fn keepalive(&self) -> Option<Duration> {
        (self.keepalive_interval > 0).then(|| Duration::from_secs(self.keepalive_interval))
    }

    /// Checks the values; `name` labels the message (e.g. `limits.public`).
    pub fn validate(&self, name: &str) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err(format!("{name}.max_connections must be at least 1"));
        }
        if self.max_connections_per_peer > self.max_connections {
            return Err(format!(
                "{name}.max_connections_per_peer ({}) exceeds {name}.max_connections ({})",
                self.max_connections_per_peer, self.max_connections
            ));
        }
        if self.handshake_timeout == 0 || self.header_read_timeout == 0 || self.body_read_timeout == 0 {
            return Err(format!("{name}: timeouts must be at least 1 second"));
        }
        Ok(())
    }
}

/// Scales the listeners' `max_connections` (and per-peer caps above them) down in
/// proportion so that their sum plus `reserve` descriptors (database, files, the
/// process's own) fits in `nofile`. Returns whether anything was scaled.
pub fn fit_to_nofile(listeners: &mut [&mut ListenerLimits], nofile: u64, reserve: u64) -> bool {
    let total: u64 = listeners.iter().map(|l| l.max_connections as u64).sum();
    let budget = nofile.saturating_sub(reserve).max(listeners.len() as u64);
    if total <= budget {
        return false;
    }
    for limits in listeners.iter_mut() {
        let scaled = (limits.max_connections as u64).saturating_mul(budget) / total.max(1);
        limits.max_connections = usize::try_from(scaled).unwrap_or(usize::MAX).max(1);
        limits.max_connections_per_peer = limits.max_connections_per_peer.min(limits.max_connections);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_scaled_into_the_open_file_limit() {
        let mut a = ListenerLimits::default();
        let mut b = ListenerLimits {
            max_connections: 64,
            max_connections_per_peer: 0,
            ..ListenerLimits::default()
        };
        assert!(!fit_to_nofile(&mut [&mut a, &mut b], 1_048_576, 256));
        assert!(fit_to_nofile(&mut [&mut a, &mut b], 1024, 256));
        assert!(a.max_connections + b.max_connections <= 768, "{a:?} {b:?}");
        assert!(b.max_connections >= 1 && a.max_connections_per_peer <= a.max_connections);
    }

    #[test]
    fn validation_names_the_table() {
        let bad = ListenerLimits {
            max_connections: 0,
            ..ListenerLimits::default()
        };
        assert!(bad.validate("limits.public").unwrap_err().contains("limits.public"));
        assert!(ListenerLimits::default().validate("x").is_ok());
    }
}
