//! [`AuthorityStore`] on SQL: the signing authorities (public material, sealed private
//! key, lifecycle) and the single-row bundle sequence, bumped by `UPDATE ... RETURNING`.

use async_trait::async_trait;
use sqlx::any::AnyRow;

use super::{SqlDataStore, backend_err, column, time_column, time_param, u64_column};
use crate::datastore::{AuthorityStore, StoreError};
use crate::model::{Authority, AuthorityKind, AuthorityStatus};

/// The columns of `authorities` that make up an [`Authority`].
macro_rules! authority_columns {
    () => {
        "id, kind, status, public_material, private_key, not_before, not_after"
    };
}

fn parse_kind(s: &str) -> Result<AuthorityKind, StoreError> {
    [
        AuthorityKind::X509,
        AuthorityKind::Jwt,
        AuthorityKind::Wit,
        AuthorityKind::AccessToken,
        AuthorityKind::SdCwt,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
    .ok_or_else(|| StoreError::Inconsistent(format!("unknown authority kind {s:?}")))
}

fn parse_status(s: &str) -> Result<AuthorityStatus, StoreError> {
    [AuthorityStatus::Prepared, AuthorityStatus::Active, AuthorityStatus::Old]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| StoreError::Inconsistent(format!("unknown authority status {s:?}")))
}

fn authority_from_row(row: &AnyRow) -> Result<Authority, StoreError> {
    let kind: String = column(row, "kind")?;
    let status: String = column(row, "status")?;
    Ok(Authority {
        id: column(row, "id")?,
        kind: parse_kind(&kind)?,
        status: parse_status(&status)?,
        public: column(row, "public_material")?,
        private_key: column(row, "private_key")?,
        not_before: time_column(row, "not_before")?,
        not_after: time_column(row, "not_after")?,
    })
}

#[async_trait]
impl AuthorityStore for SqlDataStore {
    async fn put_authority(&self, authority: &Authority) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO authorities (id, kind, status, public_material, private_key, not_before, not_after) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, not_after = excluded.not_after, \
             private_key = excluded.private_key \
             WHERE authorities.kind = excluded.kind AND authorities.public_material = excluded.public_material \
             AND authorities.not_before = excluded.not_before",
        )
        .bind(&authority.id)
        .bind(authority.kind.as_str())
        .bind(authority.status.as_str())
        .bind(&authority.public)
        .bind(&authority.private_key)
        .bind(time_param(authority.not_before))
        .bind(time_param(authority.not_after))
        .execute(&self.pool)
        .await
        .map_err(|e| backend_err("storing an authority", e))?;
        if result.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "authority {} exists with another kind, public key or not_before",
                authority.id
            )));
        }
        Ok(())
    }

    async fn list_authorities(&self, kind: Option<AuthorityKind>) -> Result<Vec<Authority>, StoreError> {
        let rows = match kind {
            Some(kind) => {
                sqlx::query(concat!(
                    "SELECT ",
                    authority_columns!(),
                    " FROM authorities WHERE kind = $1 ORDER BY not_before, id"
                ))
                .bind(kind.as_str())
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    authority_columns!(),
                    " FROM authorities ORDER BY not_before, id"
                ))
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(|e| backend_err("listing authorities", e))?;
        rows.iter().map(authority_from_row).collect()
    }

    async fn delete_authority(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM authorities WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("deleting an authority", e))?;
        Ok(result.rows_affected() > 0)
    }

    async fn bump_bundle_sequence(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("UPDATE bundle_sequence SET seq = seq + 1 WHERE id = 1 RETURNING seq")
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend_err("bumping the bundle sequence", e))?
            .ok_or_else(|| StoreError::Inconsistent("the bundle_sequence row is missing".into()))?;
        u64_column(&row, "seq")
    }

    async fn bundle_sequence(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT seq FROM bundle_sequence WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend_err("reading the bundle sequence", e))?;
        row.as_ref().map_or(Ok(0), |row| u64_column(row, "seq"))
    }
}
