//! Connection caps: per listener and per peer.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Who is connecting, for the per-peer cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerKey {
    /// A TCP peer's IP address.
    Ip(IpAddr),
    /// A Unix-socket peer's uid (from `SO_PEERCRED`).
    Uid(u32),
    /// A peer that cannot be told apart from others (only the listener cap applies).
    Unknown,
}

impl fmt::Display for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerKey::Ip(ip) => write!(f, "{ip}"),
            PeerKey::Uid(uid) => write!(f, "uid {uid}"),
            PeerKey::Unknown => f.write_str("an unidentified peer"),
        }
    }
}

/// Why a connection was refused at accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The listener holds `max_connections` connections.
    ListenerFull,
    /// This peer holds `max_connections_per_peer` connections.
    PeerFull,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_peer: HashMap<PeerKey, usize>,
}

#[derive(Debug)]
struct Inner {
    name: &'static str,
    max_total: usize,
    max_per_peer: usize,
    counts: Mutex<Counts>,
    refused: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

/// Counts the open connections of one listener and refuses those over its caps.
///
/// Cloning shares the counts. A [`ConnectionPermit`] is held for as long as its
/// connection is open and gives its slot back when dropped.
#[derive(Clone, Debug)]
pub struct ConnectionLimiter {
    inner: Arc<Inner>,
}

/// A slot on a [`ConnectionLimiter`], released on drop.
#[derive(Debug)]
pub struct ConnectionPermit {
    inner: Arc<Inner>,
    peer: PeerKey,
}

/// How often a listener logs that it refuses connections (the count is kept in between).
const WARN_EVERY: Duration = Duration::from_secs(10);

impl ConnectionLimiter {
    /// A limiter named `name` (for log lines) with a listener cap of `max_total` and a
    /// per-peer cap of `max_per_peer` (0: none).
    pub fn new(name: &'static str, max_total: usize, max_per_peer: usize) -> ConnectionLimiter {
        ConnectionLimiter {
            inner: Arc::new(Inner {
                name,
                max_total: max_total.max(1),
                max_per_peer,
                counts: Mutex::new(Counts::default()),
                refused: AtomicU64::new(0),
                last_warning: Mutex::new(None),
            }),
        }
    }

    /// A limiter with the caps of `limits`.
    pub fn for_listener(name: &'static str, limits: &crate::ListenerLimits) -> ConnectionLimiter {
        ConnectionLimiter::new(name, limits.max_connections, limits.max_connections_per_peer)
    }

    /// Takes a slot for a connection from `peer`, or says which cap it is over. A refusal
    /// is counted and logged at most once every 10 seconds per listener.
    pub fn try_acquire(&self, peer: PeerKey) -> Result<ConnectionPermit, Refused> {
        let outcome = {
            let mut counts = self.inner.counts.lock().unwrap_or_else(PoisonError::into_inner);
            let mine = counts.per_peer.get(&peer).copied().unwrap_or(0);
            if counts.total >= self.inner.max_total {
                Err(Refused::ListenerFull)
            } else if self.inner.max_per_peer > 0 && peer != PeerKey::Unknown && mine >= self.inner.max_per_peer {
                Err(Refused::PeerFull)
            } else {
                counts.total += 1;
                *counts.per_peer.entry(peer).or_insert(0) += 1;
                Ok(())
            }
        };
        match outcome {
            Ok(()) => Ok(ConnectionPermit {
                inner: Arc::clone(&self.inner),
                peer,
            }),
            Err(reason) => {
                self.note_refusal(peer, reason);
                Err(reason)
            }
        }
    }

    fn note_refusal(&self, peer: PeerKey, reason: Refused) {
        let refused = self.inner.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let mut last = self.inner.last_warning.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
            *last = Some(now);
            let cap = match reason {
                Refused::ListenerFull => format!("the listener's cap of {} connections", self.inner.max_total),
                Refused::PeerFull => format!("the cap of {} connections per peer", self.inner.max_per_peer),
            };
            tracing::warn!(
                listener = self.inner.name,
                %peer,
                refused_so_far = refused,
                "refusing connections over {cap}"
            );
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.counts.lock().unwrap_or_else(PoisonError::into_inner).total
    }

    /// Connections open now from `peer`.
    pub fn open_from(&self, peer: PeerKey) -> usize {
        self.inner
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .per_peer
            .get(&peer)
            .copied()
            .unwrap_or(0)
    }

    /// Connections refused since the start.
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }
}

impl ConnectionPermit {
    /// The peer this slot was taken for.
    pub fn peer(&self) -> PeerKey {
        self.peer
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.inner.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                counts.per_peer.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn caps_per_listener_and_per_peer_and_releases_on_drop() {
        let limiter = ConnectionLimiter::new("test", 3, 2);
        let a = PeerKey::Uid(1000);
        let b = PeerKey::Uid(1001);
        let a1 = limiter.try_acquire(a).unwrap();
        let _a2 = limiter.try_acquire(a).unwrap();
        assert_eq!(limiter.try_acquire(a).unwrap_err(), Refused::PeerFull);
        let _b1 = limiter.try_acquire(b).unwrap();
        assert_eq!(limiter.try_acquire(b).unwrap_err(), Refused::ListenerFull);
        assert_eq!((limiter.open(), limiter.open_from(a), limiter.refused()), (3, 2, 2));
        drop(a1);
        assert_eq!(limiter.open_from(a), 1);
        let _b2 = limiter.try_acquire(b).unwrap();
        assert_eq!(limiter.open(), 3);
    }

    #[test]
    fn unknown_peers_share_only_the_listener_cap() {
        let limiter = ConnectionLimiter::new("test", 3, 1);
        let held: Vec<_> = (0..3).map(|_| limiter.try_acquire(PeerKey::Unknown).unwrap()).collect();
        assert_eq!(
            limiter.try_acquire(PeerKey::Unknown).unwrap_err(),
            Refused::ListenerFull
        );
        drop(held);
        assert_eq!(limiter.open(), 0);
    }
}
