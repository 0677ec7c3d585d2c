//! Jittered timing: the exponential backoff between retries of a failed server call, and
//! when a credential is due for rotation. Both are randomized so that a fleet of agents
//! does not act in lockstep.

use std::sync::Arc;
use std::time::Duration;

use lanyard_core::{CryptoProvider, UnixTime};

/// A random number below `n` (at most 2^16) drawn from `crypto`, or `None` if its random
/// source failed.
fn random_below(crypto: &dyn CryptoProvider, n: u64) -> Option<u64> {
    let mut random = [0u8; 2];
    crypto.fill_random(&mut random).ok()?;
    Some(u64::from(u16::from_le_bytes(random)) % n)
}

/// When to replace a credential valid from `issued` to `expires`: at 50–60 % of its
/// lifetime (random jitter, so that a fleet does not renew in lockstep). Callers pass the
/// later of notBefore and the time of receipt as `issued`: issuers backdate notBefore a
/// little for clock skew, which must not make a short-lived credential due at once.
pub(super) fn rotate_time(issued: UnixTime, expires: UnixTime, crypto: &dyn CryptoProvider) -> UnixTime {
    let lifetime = expires.as_secs().saturating_sub(issued.as_secs());
    let jitter_permille = random_below(crypto, 100).unwrap_or(50);
    // Lifetimes come from server-signed certificates; saturate rather than trust them.
    UnixTime(
        issued
            .as_secs()
            .saturating_add(lifetime.saturating_mul(500 + jitter_permille) / 1000),
    )
}

/// Exponential backoff with jitter: 0.5 s doubling to 30 s.
#[derive(Debug)]
pub(super) struct Backoff {
    attempt: u32,
    /// Where the jitter comes from.
    crypto: Arc<dyn CryptoProvider>,
}

impl Backoff {
    pub(super) fn new(crypto: Arc<dyn CryptoProvider>) -> Backoff {
        Backoff { attempt: 0, crypto }
    }

    pub(super) fn reset(&mut self) {
        self.attempt = 0;
    }

    pub(super) fn next_delay(&mut self) -> Duration {
        let base_ms = 500u64.saturating_mul(1 << self.attempt.min(6)).min(30_000);
        self.attempt = self.attempt.saturating_add(1);
        let jitter = random_below(self.crypto.as_ref(), base_ms / 4 + 1).unwrap_or(0);
        Duration::from_millis(base_ms - base_ms / 8 + jitter)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rotation_is_between_half_and_sixty_percent() {
        for _ in 0..100 {
            let at = rotate_time(UnixTime(1000), UnixTime(2000), lanyard_crypto::provider().as_ref()).as_secs();
            assert!((1500..1600).contains(&at), "{at}");
        }
    }

    #[test]
    fn backoff_grows_and_caps() {
        let mut b = Backoff::new(lanyard_crypto::provider());
        let first = b.next_delay();
        assert!(first <= Duration::from_millis(600), "{first:?}");
        for _ in 0..20 {
            b.next_delay();
        }
        assert!(b.next_delay() <= Duration::from_millis(30_000 + 7_500));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(600));
    }
}
