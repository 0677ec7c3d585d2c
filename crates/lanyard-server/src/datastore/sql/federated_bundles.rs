//! [`FederatedBundleStore`] on SQL: one row per foreign trust domain.

use async_trait::async_trait;

use lanyard_core::UnixTime;

use super::{SqlDataStore, backend_err, column, time_column, time_param};
use crate::datastore::{FederatedBundleStore, StoreError};

#[async_trait]
impl FederatedBundleStore for SqlDataStore {
    async fn put_federated_bundle(
        &self,
        trust_domain: &str,
        bundle_json: &str,
        fetched_at: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO federated_bundles (trust_domain, bundle_json, fetched_at) VALUES ($1, $2, $3) \
             ON CONFLICT (trust_domain) DO UPDATE SET bundle_json = excluded.bundle_json, \
             fetched_at = excluded.fetched_at",
        )
        .bind(trust_domain)
        .bind(bundle_json)
        .bind(time_param(fetched_at))
        .execute(&self.pool)
        .await
        .map_err(|e| backend_err("storing a federated bundle", e))?;
        Ok(())
    }

    async fn get_federated_bundle(&self, trust_domain: &str) -> Result<Option<(String, UnixTime)>, StoreError> {
        let row = sqlx::query("SELECT bundle_json, fetched_at FROM federated_bundles WHERE trust_domain = $1")
            .bind(trust_domain)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend_err("reading a federated bundle", e))?;
        row.as_ref()
            .map(|row| Ok((column(row, "bundle_json")?, time_column(row, "fetched_at")?)))
            .transpose()
    }

    async fn list_federated_bundles(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT trust_domain FROM federated_bundles ORDER BY trust_domain")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| backend_err("listing federated bundles", e))
    }

    async fn delete_federated_bundle(&self, trust_domain: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM federated_bundles WHERE trust_domain = $1")
            .bind(trust_domain)
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("deleting a federated bundle", e))?;
        Ok(done.rows_affected() > 0)
    }
}
