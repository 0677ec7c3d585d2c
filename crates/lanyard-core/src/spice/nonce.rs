//! Verifier nonces for SD-KBT `cnonce` (draft-ietf-spice-sd-cwt-08 §8.1, §9): a verifier
//! hands one out (a nonce endpoint), the holder signs it into its SD-KBT, and the verifier
//! redeems it once. Shared by the `lanyard-tower` SD-CWT layer and the server's nonce
//! endpoint.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::crypto::CryptoProvider;
use crate::error::Error;
use crate::time::UnixTime;

/// Issues and redeems the nonces a verifier asks holders to put in `cnonce`.
pub trait NonceSource: Send + Sync + fmt::Debug {
    /// A fresh nonce, valid for a while from `now`.
    fn issue(&self, now: UnixTime) -> Result<Vec<u8>, Error>;
    /// Whether `nonce` was issued, is unexpired at `now` and unredeemed; redeems it.
    fn redeem(&self, nonce: &[u8], now: UnixTime) -> bool;
}

/// An in-memory [`NonceSource`]: 16 random bytes per nonce from the crypto provider, each
/// valid for `ttl` seconds and redeemable once; at most `capacity` outstanding nonces (the
/// oldest are forgotten first).
pub struct InMemoryNonceSource {
    provider: Arc<dyn CryptoProvider>,
    ttl: u64,
    capacity: usize,
    issued: Mutex<HashMap<Vec<u8>, UnixTime>>,
}

impl fmt::Debug for InMemoryNonceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryNonceSource")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl InMemoryNonceSource {
    /// Nonces valid for `ttl` seconds, at most `capacity` outstanding.
    pub fn new(provider: Arc<dyn CryptoProvider>, ttl: u64, capacity: usize) -> InMemoryNonceSource {
        InMemoryNonceSource {
            provider,
            ttl,
            capacity: capacity.max(1),
            issued: Mutex::new(HashMap::new()),
        }
    }
}

impl NonceSource for InMemoryNonceSource {
    fn issue(&self, now: UnixTime) -> Result<Vec<u8>, Error> {
        let mut nonce = vec![0u8; 16];
        self.provider.fill_random(&mut nonce)?;
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        issued.retain(|_, expires| *expires > now);
        while issued.len() >= self.capacity {
            let oldest = issued.iter().min_by_key(|(_, e)| **e).map(|(n, _)| n.clone());
            match oldest {
                Some(n) => issued.remove(&n),
                None => break,
            };
        }
        issued.insert(nonce.clone(), now.plus(self.ttl));
        Ok(nonce)
    }

    fn redeem(&self, nonce: &[u8], now: UnixTime) -> bool {
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        issued.remove(nonce).is_some_and(|expires| expires > now)
    }
}
