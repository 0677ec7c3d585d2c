//! Server-provided DPoP nonces (RFC 9449 §9): [`DpopNonces`].

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use lanyard_core::MacAlgorithm;
use lanyard_core::hex;
use lanyard_core::{CryptoProvider, UnixTime};

/// Bytes of the MAC kept in a nonce (128 bits).
const NONCE_BYTES: usize = 16;

/// Rotating DPoP nonces. The nonce of each time window is the HMAC-SHA-256 of the window
/// number under a secret, so replicas that share the secret agree on the nonce without
/// talking to each other; a proof may carry the current window's nonce or the previous
/// one (a client that just got a nonce is not refused at the turn of a window).
pub struct DpopNonces {
    secret: Vec<u8>,
    rotation: u64,
    provider: Arc<dyn CryptoProvider>,
    cached: Mutex<Option<(u64, [String; 2])>>,
}

impl fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopNonces")
            .field("rotation", &self.rotation)
            .finish_non_exhaustive()
    }
}

impl DpopNonces {
    /// Nonces derived from `secret` (at least 32 bytes; share it between replicas),
    /// changing every `rotation_secs` seconds (at least 1).
    pub fn new(secret: Vec<u8>, rotation_secs: u64) -> Result<DpopNonces, lanyard_core::Error> {
        if secret.len() < 32 {
            return Err(lanyard_core::Error::InvalidKey(
                "a DPoP nonce secret has at least 32 bytes".into(),
            ));
        }
        Ok(DpopNonces {
            secret,
            rotation: rotation_secs.max(1),
            provider: crate::default_provider(),
            cached: Mutex::new(None),
        })
    }

    /// Nonces from a fresh random secret (one process; replicas need [`DpopNonces::new`]
    /// with a shared secret).
    pub fn random(rotation_secs: u64) -> Result<DpopNonces, lanyard_core::Error> {
        let mut secret = vec![0u8; 32];
        crate::default_provider().fill_random(&mut secret)?;
        DpopNonces::new(secret, rotation_secs)
    }

    /// The same nonces, computed with `provider` instead of the process default.
    pub fn with_provider(mut self, provider: Arc<dyn CryptoProvider>) -> DpopNonces {
        self.provider = provider;
        self
    }

    /// The accepted nonces at `now`: the current one first, then the previous one.
    pub fn accepted(&self, now: UnixTime) -> Result<[String; 2], lanyard_core::Error> {
        let window = now.as_secs() / self.rotation;
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((w, nonces)) = cached.as_ref()
            && *w == window
        {
            return Ok(nonces.clone());
        }
        let nonces = [self.nonce(window)?, self.nonce(window.saturating_sub(1))?];
        *cached = Some((window, nonces.clone()));
        Ok(nonces)
    }

    /// The nonce to hand out at `now`.
    pub fn current(&self, now: UnixTime) -> Result<String, lanyard_core::Error> {
        self.accepted(now).map(|[current, _]| current)
    }

    fn nonce(&self, window: u64) -> Result<String, lanyard_core::Error> {
        let mut input = b"lanyard-dpop-nonce:".to_vec();
        input.extend_from_slice(&window.to_be_bytes());
        let tag = self.provider.mac(MacAlgorithm::HmacSha256, &self.secret, &input)?;
        Ok(hex::encode(&tag.as_bytes()[..NONCE_BYTES]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_with_one_secret_agree_and_windows_rotate() {
        let a = DpopNonces::new(vec![7; 32], 60).unwrap();
        let b = DpopNonces::new(vec![7; 32], 60).unwrap();
        let c = DpopNonces::new(vec![8; 32], 60).unwrap();
        let t = UnixTime(1_800_000_000);
        assert_eq!(a.accepted(t).unwrap(), b.accepted(t).unwrap());
        assert_ne!(a.current(t).unwrap(), c.current(t).unwrap());
        let next = a.accepted(t.plus(60)).unwrap();
        assert_eq!(next[1], a.current(t).unwrap());
        assert_ne!(next[0], next[1]);
        assert!(DpopNonces::new(vec![1; 31], 60).is_err());
    }
}
