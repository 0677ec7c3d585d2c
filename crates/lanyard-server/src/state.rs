//! The shared state every endpoint works with, built once by [`crate::server::start`].

use std::sync::Arc;

use lanyard_core::{Clock, CryptoProvider, TrustDomain};

use crate::ca::KeyManager;
use crate::config::ServerConfig;
use crate::datastore::Stores;

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The configuration.
    pub config: Arc<ServerConfig>,
    /// The trust domain.
    pub trust_domain: TrustDomain,
    /// Persistence, one handle per noun.
    pub stores: Stores,
    /// The CA and signing keys.
    pub keys: Arc<KeyManager>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Randomness, digests and MACs (the composition root passes `lanyard_crypto::provider()`).
    pub crypto: Arc<dyn CryptoProvider>,
    /// The public base URL (for discovery documents).
    pub public_url: String,
}
