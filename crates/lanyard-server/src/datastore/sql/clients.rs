//! [`ClientStore`] on SQL: OAuth clients as a JSON registration plus the secret hash.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::any::AnyRow;

use super::{
    SqlDataStore, backend_err, column, commit_err, is_unique_violation, json_column, time_column, time_param, to_json,
    u64_column,
};
use crate::datastore::{ClientStore, StoreError};
use crate::model::OAuthClient;

fn client_from_row(row: &AnyRow) -> Result<OAuthClient, StoreError> {
    let secret_hash: String = column(row, "secret_hash")?;
    let secret_hash = (!secret_hash.is_empty()).then_some(secret_hash);
    Ok(OAuthClient {
        client_id: column(row, "client_id")?,
        spec: json_column(row, "settings")?,
        has_secret: secret_hash.is_some(),
        secret_hash,
        revision: u64_column(row, "revision")?,
        created_at: time_column(row, "created_at")?,
    })
}

fn check_client_id(client_id: &str) -> Result<(), StoreError> {
    if client_id.is_empty() || client_id.len() > 1024 || client_id.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "a client_id is 1 to 1024 characters without control characters".into(),
        ));
    }
    Ok(())
}

#[async_trait]
impl ClientStore for SqlDataStore {
    async fn create_client(&self, client: &OAuthClient) -> Result<(), StoreError> {
        check_client_id(&client.client_id)?;
        let result = sqlx::query(
            "INSERT INTO oauth_clients (client_id, settings, secret_hash, revision, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&client.client_id)
        .bind(to_json(&client.spec)?)
        .bind(client.secret_hash.clone().unwrap_or_default())
        .bind(1_i64)
        .bind(time_param(client.created_at))
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::AlreadyExists(format!("client {:?}", client.client_id)))
            }
            Err(e) => Err(backend_err("registering a client", e)),
        }
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<Arc<OAuthClient>>, StoreError> {
        sqlx::query("SELECT * FROM oauth_clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend_err("reading a client", e))?
            .as_ref()
            .map(|row| client_from_row(row).map(Arc::new))
            .transpose()
    }

    async fn update_client(
        &self,
        client: &OAuthClient,
        expected_revision: Option<u64>,
    ) -> Result<OAuthClient, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| backend_err("starting a transaction", e))?;
        let current: Option<i64> = sqlx::query_scalar("SELECT revision FROM oauth_clients WHERE client_id = $1")
            .bind(&client.client_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| backend_err("reading a client", e))?;
        let Some(current) = current else {
            return Err(StoreError::NotFound(format!("client {:?}", client.client_id)));
        };
        let current =
            u64::try_from(current).map_err(|_| StoreError::Inconsistent("a client's revision is negative".into()))?;
        if expected_revision.is_some_and(|r| r != current) {
            return Err(StoreError::Conflict(format!(
                "client {:?} is at revision {current}",
                client.client_id
            )));
        }
        let next = i64::try_from(current.saturating_add(1)).unwrap_or(i64::MAX);
        let updated = sqlx::query(
            "UPDATE oauth_clients SET settings = $2, secret_hash = $3, revision = $4 \
             WHERE client_id = $1 AND revision = $5",
        )
        .bind(&client.client_id)
        .bind(to_json(&client.spec)?)
        .bind(client.secret_hash.clone().unwrap_or_default())
        .bind(next)
        .bind(i64::try_from(current).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(|e| backend_err("updating a client", e))?
        .rows_affected();
        if updated != 1 {
            return Err(StoreError::Conflict(format!(
                "client {:?} changed concurrently",
                client.client_id
            )));
        }
        let row = sqlx::query("SELECT * FROM oauth_clients WHERE client_id = $1")
            .bind(&client.client_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| backend_err("reading a client", e))?;
        let stored = client_from_row(&row)?;
        tx.commit().await.map_err(commit_err)?;
        Ok(stored)
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM oauth_clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("deleting a client", e))?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn list_clients(&self) -> Result<Vec<OAuthClient>, StoreError> {
        sqlx::query("SELECT * FROM oauth_clients ORDER BY client_id")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| backend_err("listing clients", e))?
            .iter()
            .map(client_from_row)
            .collect()
    }

    async fn any_client_has_secret(&self) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM oauth_clients WHERE secret_hash <> '' LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend_err("reading clients", e))?;
        Ok(found.is_some())
    }
}
