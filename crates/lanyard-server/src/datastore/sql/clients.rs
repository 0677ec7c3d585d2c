//! [`ClientStore`] and [`JtiStore`] on SQL: OAuth clients as a JSON registration plus the
//! secret hash, and the shared one-time-value tables. A `jti` is recorded by
//! `INSERT ... ON CONFLICT DO UPDATE ... WHERE expires_at < now`: a fresh key inserts, an
//! expired one is taken over, a live one changes no row (a replay), so concurrent uses on
//! any replica sharing the database see exactly one success.

use async_trait::async_trait;
use sqlx::any::AnyRow;

use lanyard_core::UnixTime;

use super::{
    SqlDataStore, backend_err, column, commit_err, is_unique_violation, json_column, time_column, time_param, to_json,
    u64_column,
};
use crate::datastore::{ClientStore, JtiStore, MAX_JTI_KEY, StoreError};
use crate::model::OAuthClient;

/// Records one key: a fresh key inserts, an expired one is taken over, a live one changes
/// no row (a replay).
const RECORD_JTI: &str = "INSERT INTO oauth_jti (jti_key, expires_at) VALUES ($1, $2) \
     ON CONFLICT (jti_key) DO UPDATE SET expires_at = excluded.expires_at \
     WHERE oauth_jti.expires_at < $3";

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

    async fn get_client(&self, client_id: &str) -> Result<Option<OAuthClient>, StoreError> {
        sqlx::query("SELECT * FROM oauth_clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend_err("reading a client", e))?
            .as_ref()
            .map(client_from_row)
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

#[async_trait]
impl JtiStore for SqlDataStore {
    async fn record_jti(&self, key: &str, expires_at: UnixTime, now: UnixTime) -> Result<bool, StoreError> {
        if key.is_empty() || key.len() > MAX_JTI_KEY {
            return Err(StoreError::Invalid(format!("a jti key is 1 to {MAX_JTI_KEY} bytes")));
        }
        let changed = sqlx::query(RECORD_JTI)
            .bind(key)
            .bind(time_param(expires_at))
            .bind(time_param(now))
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("recording a jti", e))?
            .rows_affected();
        Ok(changed == 1)
    }

    async fn record_jtis(&self, keys: &[(String, UnixTime)], now: UnixTime) -> Result<Vec<bool>, StoreError> {
        if let Some((key, _)) = keys.iter().find(|(k, _)| k.is_empty() || k.len() > MAX_JTI_KEY) {
            return Err(StoreError::Invalid(format!(
                "a jti key is 1 to {MAX_JTI_KEY} bytes, not {}",
                key.len()
            )));
        }
        // Every replica inserts in the same (sorted) order, so two batches that share keys
        // wait for each other instead of deadlocking on PostgreSQL.
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by(|a, b| keys[*a].0.cmp(&keys[*b].0));
        let mut fresh = vec![false; keys.len()];
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| backend_err("recording jtis", e))?;
        // On SQLite this connection commits without waiting for the disk
        // (`synchronous=NORMAL` in WAL mode): a used jti survives a crash or kill of the
        // process, but the last few milliseconds of them may be lost if the machine itself
        // loses power. Every other write keeps `synchronous=FULL`. (docs/security.md)
        let relaxed = matches!(self.backend, super::Backend::Sqlite);
        if relaxed {
            sqlx::query("PRAGMA synchronous = NORMAL")
                .execute(&mut *conn)
                .await
                .map_err(|e| backend_err("recording jtis", e))?;
        }
        let outcome = self.record_jtis_on(&mut conn, keys, &order, &mut fresh, now).await;
        if relaxed
            && sqlx::query("PRAGMA synchronous = FULL")
                .execute(&mut *conn)
                .await
                .is_err()
        {
            // Never hand a relaxed connection back to the pool.
            conn.close_on_drop();
        }
        outcome.map(|()| fresh)
    }

    async fn revoke_token(&self, jti: &str, expires_at: UnixTime) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_revoked (jti, expires_at) VALUES ($1, $2) \
             ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at",
        )
        .bind(jti)
        .bind(time_param(expires_at))
        .execute(&self.pool)
        .await
        .map_err(|e| backend_err("revoking a token", e))?;
        Ok(())
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT expires_at FROM oauth_revoked WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend_err("reading revocations", e))?;
        Ok(found.is_some())
    }

    async fn prune_jtis(&self, now: UnixTime) -> Result<u64, StoreError> {
        let now = time_param(now);
        let jtis = sqlx::query("DELETE FROM oauth_jti WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("pruning jtis", e))?
            .rows_affected();
        let revoked = sqlx::query("DELETE FROM oauth_revoked WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("pruning revocations", e))?
            .rows_affected();
        Ok(jtis + revoked)
    }
}

impl SqlDataStore {
    /// The inserts of [`JtiStore::record_jtis`], in `order`, as one transaction on `conn`.
    async fn record_jtis_on(
        &self,
        conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
        keys: &[(String, UnixTime)],
        order: &[usize],
        fresh: &mut [bool],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut tx = sqlx::Connection::begin(&mut **conn)
            .await
            .map_err(|e| backend_err("recording jtis", e))?;
        for &i in order {
            let (key, expires_at) = &keys[i];
            fresh[i] = sqlx::query(RECORD_JTI)
                .bind(key)
                .bind(time_param(*expires_at))
                .bind(time_param(now))
                .execute(&mut *tx)
                .await
                .map_err(|e| backend_err("recording jtis", e))?
                .rows_affected()
                == 1;
        }
        tx.commit().await.map_err(commit_err)
    }
}
