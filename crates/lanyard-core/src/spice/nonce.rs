//! Verifier nonces for SD-KBT `cnonce` (draft-ietf-spice-sd-cwt-08 §8.1, §9): a verifier
//! hands one out (a nonce endpoint), the holder signs it into its SD-KBT, and the verifier
//! redeems it once. Shared by the `lanyard-tower` SD-CWT layer and the server's nonce
//! endpoint.

use std::collections::{HashMap, VecDeque};
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
/// oldest are forgotten first). Issuing and redeeming cost O(1) amortized, whatever the
/// number outstanding (the nonce endpoint is public).
pub struct InMemoryNonceSource {
    provider: Arc<dyn CryptoProvider>,
    ttl: u64,
    capacity: usize,
    issued: Mutex<Issued>,
}

/// The outstanding nonces, and every nonce issued in issuance order (so expiry order, the
/// lifetime being fixed) until it expires or is pushed out; redeemed ones stay in the
/// queue until then, or until the queue is compacted.
#[derive(Default)]
struct Issued {
    expiries: HashMap<Vec<u8>, UnixTime>,
    order: VecDeque<(UnixTime, Vec<u8>)>,
}

impl Issued {
    /// Drops the oldest queued nonce, and forgets it unless it was redeemed since.
    fn drop_oldest(&mut self) -> bool {
        let Some((expires, nonce)) = self.order.pop_front() else {
            return false;
        };
        if self.expiries.get(&nonce) == Some(&expires) {
            self.expiries.remove(&nonce);
        }
        true
    }
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
            issued: Mutex::new(Issued::default()),
        }
    }
}

impl NonceSource for InMemoryNonceSource {
    fn issue(&self, now: UnixTime) -> Result<Vec<u8>, Error> {
        let mut nonce = vec![0u8; 16];
        self.provider.fill_random(&mut nonce)?;
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        while issued.order.front().is_some_and(|(expires, _)| *expires <= now) {
            issued.drop_oldest();
        }
        while issued.expiries.len() >= self.capacity && issued.drop_oldest() {}
        // Redeemed nonces wait in the queue until they expire: compact it when it holds
        // twice the capacity (so at most once per `capacity` issues).
        if issued.order.len() >= 2 * self.capacity {
            let Issued { expiries, order } = &mut *issued;
            order.retain(|(expires, nonce)| expiries.get(nonce) == Some(expires));
        }
        let expires = now.plus(self.ttl);
        issued.expiries.insert(nonce.clone(), expires);
        issued.order.push_back((expires, nonce.clone()));
        Ok(nonce)
    }

    fn redeem(&self, nonce: &[u8], now: UnixTime) -> bool {
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        issued.expiries.remove(nonce).is_some_and(|expires| expires > now)
    }
}
