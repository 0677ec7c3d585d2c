//! The test world: a fixed instant, the provider, keys, and a trust domain whose WIT issuer
//! is trusted by a [`TrustStore`].

use std::sync::Arc;

use lanyard_core::{
    Algorithm, Clock, CryptoProvider, FixedClock, KeyUse, SigningKey, TrustStore, UnixTime, WitIssuer, WitPolicy,
    WitVerifier, WorkloadId,
};
use lanyard_crypto::KeyPair;

/// The instant the offline tests run at (2027-01-15T08:00:00Z): far from any key's edges.
pub const NOW: UnixTime = UnixTime(1_800_000_000);

/// The aws-lc-rs provider (the one production uses).
pub fn provider() -> Arc<dyn CryptoProvider> {
    lanyard_crypto::provider()
}

/// A clock stopped at [`NOW`].
pub fn fixed_clock() -> Arc<dyn Clock> {
    Arc::new(FixedClock(NOW))
}

/// A fresh key pair for `alg` with key ID `kid`.
pub fn key(alg: Algorithm, kid: &str) -> KeyPair {
    KeyPair::generate(alg).unwrap().with_kid(kid)
}

/// A trust domain with one WIT issuer key, trusted for WIT-SVIDs by [`WitWorld::store`],
/// and a [`WitIssuer`] (TTL one hour, no `iss`) that signs with it.
pub struct WitWorld {
    /// The provider everything here uses.
    pub provider: Arc<dyn CryptoProvider>,
    /// The trust domain name, e.g. `example.org`.
    pub trust_domain: String,
    /// Trusts the issuer key for [`KeyUse::WitSvid`] in the trust domain.
    pub store: Arc<TrustStore>,
    /// The issuer's key pair.
    pub issuer_key: Arc<KeyPair>,
    /// Issues WITs with the issuer key (`kid` as given to [`WitWorld::new`]).
    pub issuer: WitIssuer,
}

impl WitWorld {
    /// A world for `trust_domain` whose issuer signs with a fresh `alg` key; `kid` names
    /// the key in its JWK and in the WITs' headers.
    pub fn new(trust_domain: &str, alg: Algorithm, kid: Option<&str>) -> WitWorld {
        let provider = provider();
        let issuer_key = KeyPair::generate(alg).unwrap();
        let issuer_key = Arc::new(match kid {
            Some(kid) => issuer_key.with_kid(kid),
            None => issuer_key,
        });
        let store = Arc::new(TrustStore::new(provider.clone()));
        store
            .add_key(trust_domain, KeyUse::WitSvid, &issuer_key.public_jwk())
            .unwrap();
        let issuer = WitIssuer::new(provider.clone(), issuer_key.clone(), kid.map(str::to_owned), None, 3600);
        WitWorld {
            provider,
            trust_domain: trust_domain.to_owned(),
            store,
            issuer_key,
            issuer,
        }
    }

    /// A WIT for workload `id` (any identifier form) bound to `key`, issued at [`NOW`].
    pub fn wit(&self, id: &str, key: &dyn SigningKey) -> String {
        let id = WorkloadId::parse(id).unwrap();
        self.issuer.issue(&id, &key.public_jwk(), NOW).unwrap()
    }

    /// A WIT verifier over [`WitWorld::store`] with the WIMSE policy.
    pub fn wit_verifier(&self) -> WitVerifier {
        WitVerifier::new(self.store.clone(), WitPolicy::wimse())
    }
}
