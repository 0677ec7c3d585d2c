//! [`SecretStore`] on SQL: `INSERT ... ON CONFLICT DO NOTHING`, then read back, so that
//! the first writer wins and every replica reads its value.

use async_trait::async_trait;

use super::{SqlDataStore, backend_err, column};
use crate::datastore::{SecretStore, StoreError};

#[async_trait]
impl SecretStore for SqlDataStore {
    async fn get_or_create_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("storing a server secret", e))?;
        let row = sqlx::query("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| backend_err("reading a server secret", e))?;
        column(&row, "value")
    }
}
