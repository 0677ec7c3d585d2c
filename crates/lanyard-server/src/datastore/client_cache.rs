//! A short-lived cache of registered OAuth clients in front of the [`ClientStore`]: the
//! token endpoint reads a client on every request, and a registration changes rarely.
//!
//! A client read from the store is served from memory for [`CLIENT_CACHE_TTL`]; changes
//! made through this replica (create, update, delete) drop its entry at once, changes made
//! on another replica are seen within the TTL. Unknown `client_id`s are never cached (a
//! stream of made-up identifiers cannot fill memory, and a new client is usable at once),
//! and the cache holds at most [`MAX_CACHED_CLIENTS`] entries (beyond that it starts over).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{ClientStore, StoreError};
use crate::model::OAuthClient;

/// How long a client read from the store is used before reading it again.
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(2);

/// The most clients kept in memory.
pub const MAX_CACHED_CLIENTS: usize = 10_000;

/// A [`ClientStore`] that keeps recently read clients for [`CLIENT_CACHE_TTL`].
pub struct CachedClients {
    inner: Arc<dyn ClientStore>,
    cache: Mutex<HashMap<String, (Instant, Arc<OAuthClient>)>>,
}

impl fmt::Debug for CachedClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedClients").field("inner", &self.inner).finish()
    }
}

impl CachedClients {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ClientStore>) -> CachedClients {
        CachedClients {
            inner,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn forget(&self, client_id: &str) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(client_id);
    }
}

#[async_trait]
impl ClientStore for CachedClients {
    async fn create_client(&self, client: &OAuthClient) -> Result<(), StoreError> {
        self.forget(&client.client_id);
        self.inner.create_client(client).await
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<Arc<OAuthClient>>, StoreError> {
        if let Some((read_at, client)) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(client_id)
            && read_at.elapsed() < CLIENT_CACHE_TTL
        {
            return Ok(Some(Arc::clone(client)));
        }
        let found = self.inner.get_client(client_id).await?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        match &found {
            Some(client) => {
                if cache.len() >= MAX_CACHED_CLIENTS {
                    cache.clear();
                }
                cache.insert(client_id.to_owned(), (Instant::now(), Arc::clone(client)));
            }
            None => {
                cache.remove(client_id);
            }
        }
        Ok(found)
    }

    async fn update_client(
        &self,
        client: &OAuthClient,
        expected_revision: Option<u64>,
    ) -> Result<OAuthClient, StoreError> {
        self.forget(&client.client_id);
        let updated = self.inner.update_client(client, expected_revision).await;
        self.forget(&client.client_id);
        updated
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        self.forget(client_id);
        let deleted = self.inner.delete_client(client_id).await;
        self.forget(client_id);
        deleted
    }

    async fn list_clients(&self) -> Result<Vec<OAuthClient>, StoreError> {
        self.inner.list_clients().await
    }

    async fn any_client_has_secret(&self) -> Result<bool, StoreError> {
        self.inner.any_client_has_secret().await
    }
}
