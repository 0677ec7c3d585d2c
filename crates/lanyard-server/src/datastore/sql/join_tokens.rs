//! [`JoinTokenStore`] on SQL: tokens by their SHA-256 hex, used up by `DELETE ... RETURNING`
//! so that of concurrent uses exactly one sees the row.

use async_trait::async_trait;

use lanyard_core::UnixTime;

use super::{SqlDataStore, backend_err, is_unique_violation, time_param};
use crate::datastore::{JoinTokenStore, StoreError, TokenUse};

fn check_token_hash(token_hash: &str) -> Result<(), StoreError> {
    if token_hash.len() == 64 && token_hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            "a join token is stored by its SHA-256 as 64 lowercase hex digits".into(),
        ))
    }
}

#[async_trait]
impl JoinTokenStore for SqlDataStore {
    async fn create_join_token(&self, token_hash: &str, expires_at: UnixTime) -> Result<(), StoreError> {
        check_token_hash(token_hash)?;
        let result = sqlx::query("INSERT INTO join_tokens (token_hash, expires_at) VALUES ($1, $2)")
            .bind(token_hash)
            .bind(time_param(expires_at))
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists("join token".into())),
            Err(e) => Err(backend_err("storing a join token", e)),
        }
    }

    async fn consume_join_token(&self, token_hash: &str, now: UnixTime) -> Result<TokenUse, StoreError> {
        check_token_hash(token_hash)?;
        let expires_at: Option<i64> =
            sqlx::query_scalar("DELETE FROM join_tokens WHERE token_hash = $1 RETURNING expires_at")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| backend_err("using a join token", e))?;
        Ok(match expires_at {
            None => TokenUse::Unknown,
            Some(expires_at) if time_param(now) >= expires_at => TokenUse::Expired,
            Some(_) => TokenUse::Consumed,
        })
    }

    async fn prune_join_tokens(&self, now: UnixTime) -> Result<u64, StoreError> {
        let tokens = sqlx::query("DELETE FROM join_tokens WHERE expires_at < $1")
            .bind(time_param(now))
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("pruning join tokens", e))?
            .rows_affected();
        Ok(tokens)
    }
}
