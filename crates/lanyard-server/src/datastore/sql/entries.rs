//! [`EntryStore`] on SQL: entries (unique by a canonical key of identity, parent and
//! selectors) and the `entry_events` change log, written in the same transaction.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AssertSqlSafe};

use lanyard_core::{CryptoProvider, SpiffeId, UnixTime, WorkloadId, hex};

use super::{
    SqlDataStore, backend_err, bool_column, column, commit_err, is_unique_violation, json_column, lookup_u64,
    time_column, time_param, to_json, ttl_param, u64_column,
};
use crate::datastore::{EntryEvent, EntryFilter, EntryStore, StoreError};
use crate::model::{Entry, EntrySpec, Selector};

/// The columns of `entries` that make up an [`Entry`], in `SELECT`/`RETURNING` lists.
macro_rules! entry_columns {
    () => {
        "id, spiffe_id, parent_id, selectors, x509_svid_ttl, jwt_svid_ttl, wit_ttl, dns_names, \
         federates_with, admin, claims, revision, created_at"
    };
}

fn new_entry_id(crypto: &dyn CryptoProvider) -> Result<String, StoreError> {
    let mut id = [0u8; 16];
    crypto
        .fill_random(&mut id)
        .map_err(|e| StoreError::backend("generating an entry ID", e))?;
    Ok(hex::encode(&id))
}

/// An [`EntrySpec`] in column form.
struct EntryColumns {
    key: String,
    spiffe_id: String,
    parent_id: String,
    selectors: String,
    x509_svid_ttl: i64,
    jwt_svid_ttl: i64,
    wit_ttl: i64,
    dns_names: String,
    federates_with: String,
    admin: bool,
    claims: String,
}

impl EntryColumns {
    fn new(spec: &EntrySpec, crypto: &dyn CryptoProvider) -> Result<EntryColumns, StoreError> {
        if spec.selectors.is_empty() {
            return Err(StoreError::Invalid("an entry needs at least one selector".into()));
        }
        Ok(EntryColumns {
            key: entry_key(spec, crypto)?,
            spiffe_id: spec.spiffe_id.as_str().to_owned(),
            parent_id: spec.parent_id.as_str().to_owned(),
            selectors: to_json(&spec.selectors)?,
            x509_svid_ttl: ttl_param(spec.x509_svid_ttl, "x509_svid_ttl")?,
            jwt_svid_ttl: ttl_param(spec.jwt_svid_ttl, "jwt_svid_ttl")?,
            wit_ttl: ttl_param(spec.wit_ttl, "wit_ttl")?,
            dns_names: to_json(&spec.dns_names)?,
            federates_with: to_json(&spec.federates_with)?,
            admin: spec.admin,
            claims: to_json(&spec.claims)?,
        })
    }

    /// Binds the columns, in the order `entry_key, spiffe_id, parent_id, selectors,
    /// x509_svid_ttl, jwt_svid_ttl, wit_ttl, dns_names, federates_with, admin, claims` (the
    /// same in the INSERT and the UPDATE).
    fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
        query
            .bind(&self.key)
            .bind(&self.spiffe_id)
            .bind(&self.parent_id)
            .bind(&self.selectors)
            .bind(self.x509_svid_ttl)
            .bind(self.jwt_svid_ttl)
            .bind(self.wit_ttl)
            .bind(&self.dns_names)
            .bind(&self.federates_with)
            .bind(self.admin)
            .bind(&self.claims)
    }
}

/// What makes two entries the same: identity, parent and the *set* of selectors. The
/// SHA-256 (hex) of a versioned JSON encoding, so the indexed value has a fixed size and
/// no separator can be forged.
fn entry_key(spec: &EntrySpec, crypto: &dyn CryptoProvider) -> Result<String, StoreError> {
    let mut selectors: Vec<&Selector> = spec.selectors.iter().collect();
    selectors.sort();
    selectors.dedup();
    let canonical = to_json(&(
        "lanyard-entry-key-v1",
        spec.spiffe_id.as_str(),
        spec.parent_id.as_str(),
        selectors,
    ))?;
    Ok(hex::encode(&crypto.sha256(canonical.as_bytes())))
}

fn entry_from_row(row: &AnyRow) -> Result<Entry, StoreError> {
    let id: String = column(row, "id")?;
    let spiffe_id: String = column(row, "spiffe_id")?;
    let parent_id: String = column(row, "parent_id")?;
    Ok(Entry {
        spiffe_id: WorkloadId::parse(&spiffe_id)
            .map_err(|e| StoreError::backend(format!("entry {id} has an invalid identity"), e))?,
        parent_id: SpiffeId::parse(&parent_id)
            .map_err(|e| StoreError::backend(format!("entry {id} has an invalid parent"), e))?,
        selectors: json_column(row, "selectors")?,
        x509_svid_ttl: u64_column(row, "x509_svid_ttl")?,
        jwt_svid_ttl: u64_column(row, "jwt_svid_ttl")?,
        wit_ttl: u64_column(row, "wit_ttl")?,
        dns_names: json_column(row, "dns_names")?,
        federates_with: json_column(row, "federates_with")?,
        admin: bool_column(row, "admin")?,
        claims: json_column(row, "claims")?,
        revision: u64_column(row, "revision")?,
        created_at: time_column(row, "created_at")?,
        id,
    })
}

fn entry_from_spec(id: String, spec: &EntrySpec, revision: u64, created_at: UnixTime) -> Entry {
    Entry {
        id,
        spiffe_id: spec.spiffe_id.clone(),
        parent_id: spec.parent_id.clone(),
        selectors: spec.selectors.clone(),
        x509_svid_ttl: spec.x509_svid_ttl,
        jwt_svid_ttl: spec.jwt_svid_ttl,
        wit_ttl: spec.wit_ttl,
        dns_names: spec.dns_names.clone(),
        federates_with: spec.federates_with.clone(),
        admin: spec.admin,
        claims: spec.claims.clone(),
        revision,
        created_at,
    }
}

const DUPLICATE_ENTRY: &str = "an entry with the same identity, parent and selectors";

async fn append_entry_event(
    conn: &mut AnyConnection,
    entry_id: &str,
    parent_id: &str,
    deleted: bool,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO entry_events (entry_id, parent_id, deleted) VALUES ($1, $2, $3)")
        .bind(entry_id)
        .bind(parent_id)
        .bind(deleted)
        .execute(conn)
        .await
        .map_err(|e| backend_err("appending to the entry log", e))?;
    Ok(())
}

/// Inserts one entry and its event, inside the caller's transaction.
async fn insert_entry(
    conn: &mut AnyConnection,
    crypto: &dyn CryptoProvider,
    spec: &EntrySpec,
    now: UnixTime,
) -> Result<Entry, StoreError> {
    let cols = EntryColumns::new(spec, crypto)?;
    let id = new_entry_id(crypto)?;
    let query = sqlx::query(
        "INSERT INTO entries (id, entry_key, spiffe_id, parent_id, selectors, x509_svid_ttl, \
         jwt_svid_ttl, wit_ttl, dns_names, federates_with, admin, claims, revision, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13)",
    )
    .bind(&id);
    let result = cols.bind(query).bind(time_param(now)).execute(&mut *conn).await;
    match result {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyExists(DUPLICATE_ENTRY.into())),
        Err(e) => return Err(backend_err("inserting an entry", e)),
    }
    append_entry_event(conn, &id, &cols.parent_id, false).await?;
    Ok(entry_from_spec(id, spec, 1, now))
}

#[async_trait]
impl EntryStore for SqlDataStore {
    fn local_changes(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(Arc::clone(&self.changed))
    }

    async fn create_entry(&self, spec: &EntrySpec, now: UnixTime) -> Result<Entry, StoreError> {
        let mut tx = self.begin_entry_write().await?;
        let entry = insert_entry(&mut tx, &*self.crypto, spec, now).await?;
        tx.commit().await.map_err(commit_err)?;
        self.changed.notify_one();
        Ok(entry)
    }

    async fn create_entries(&self, specs: &[EntrySpec], now: UnixTime) -> Result<Vec<Entry>, StoreError> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_entry_write().await?;
        let mut entries = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            // Any error drops `tx`, which rolls the whole batch back.
            let entry = insert_entry(&mut tx, &*self.crypto, spec, now)
                .await
                .map_err(|e| match e {
                    StoreError::AlreadyExists(m) => StoreError::AlreadyExists(format!("entry #{i}: {m}")),
                    StoreError::Invalid(m) => StoreError::Invalid(format!("entry #{i}: {m}")),
                    other => other,
                })?;
            entries.push(entry);
        }
        tx.commit().await.map_err(commit_err)?;
        self.changed.notify_one();
        Ok(entries)
    }

    async fn get_entry(&self, id: &str) -> Result<Option<Entry>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", entry_columns!(), " FROM entries WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend_err("reading an entry", e))?;
        row.as_ref().map(entry_from_row).transpose()
    }

    async fn update_entry(
        &self,
        id: &str,
        spec: &EntrySpec,
        expected_revision: Option<u64>,
    ) -> Result<Entry, StoreError> {
        let cols = EntryColumns::new(spec, &*self.crypto)?;
        let mut tx = self.begin_entry_write().await?;
        // Entry writers are serialized (see `begin_entry_write`), so this read stays
        // current until the commit.
        let row = sqlx::query("SELECT parent_id, revision, created_at FROM entries WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| backend_err("reading an entry", e))?
            .ok_or_else(|| StoreError::NotFound(format!("entry {id}")))?;
        let old_parent: String = column(&row, "parent_id")?;
        let revision = u64_column(&row, "revision")?;
        let created_at = time_column(&row, "created_at")?;
        if let Some(expected) = expected_revision
            && expected != revision
        {
            return Err(StoreError::Conflict(format!(
                "entry {id} is at revision {revision}, not {expected}"
            )));
        }
        let new_revision = revision + 1;
        let query = sqlx::query(
            "UPDATE entries SET entry_key = $3, spiffe_id = $4, parent_id = $5, selectors = $6, \
             x509_svid_ttl = $7, jwt_svid_ttl = $8, wit_ttl = $9, dns_names = $10, \
             federates_with = $11, admin = $12, claims = $13, revision = $14 \
             WHERE id = $1 AND revision = $2",
        )
        .bind(id)
        .bind(lookup_u64(revision));
        let result = cols.bind(query).bind(lookup_u64(new_revision)).execute(&mut *tx).await;
        match result {
            Ok(r) if r.rows_affected() == 1 => {}
            Ok(_) => return Err(StoreError::Conflict(format!("entry {id} changed concurrently"))),
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(DUPLICATE_ENTRY.into()));
            }
            Err(e) => return Err(backend_err("updating an entry", e)),
        }
        if old_parent != cols.parent_id {
            append_entry_event(&mut tx, id, &old_parent, true).await?;
        }
        append_entry_event(&mut tx, id, &cols.parent_id, false).await?;
        tx.commit().await.map_err(commit_err)?;
        self.changed.notify_one();
        Ok(entry_from_spec(id.to_owned(), spec, new_revision, created_at))
    }

    async fn delete_entry(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_entry_write().await?;
        let parent: Option<String> = sqlx::query_scalar("DELETE FROM entries WHERE id = $1 RETURNING parent_id")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| backend_err("deleting an entry", e))?;
        let Some(parent) = parent else {
            return Ok(false);
        };
        append_entry_event(&mut tx, id, &parent, true).await?;
        tx.commit().await.map_err(commit_err)?;
        self.changed.notify_one();
        Ok(true)
    }

    async fn list_entries(&self, filter: &EntryFilter) -> Result<Vec<Entry>, StoreError> {
        let mut sql = String::from(concat!("SELECT ", entry_columns!(), " FROM entries"));
        let mut conditions = Vec::new();
        if filter.parent_id.is_some() {
            conditions.push(format!("parent_id = ${}", conditions.len() + 1));
        }
        if filter.spiffe_id.is_some() {
            conditions.push(format!("spiffe_id = ${}", conditions.len() + 1));
        }
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(" ORDER BY id");
        // Only fixed fragments and placeholders above; the values are bound.
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(parent) = &filter.parent_id {
            query = query.bind(parent.as_str().to_owned());
        }
        if let Some(spiffe_id) = &filter.spiffe_id {
            query = query.bind(spiffe_id.clone());
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(|e| backend_err("listing entries", e))?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn latest_entry_event(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT seq FROM entry_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend_err("reading the entry log", e))?;
        row.as_ref().map_or(Ok(0), |row| u64_column(row, "seq"))
    }

    async fn entry_events_since(&self, seq: u64, limit: u32) -> Result<Vec<EntryEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, entry_id, parent_id, deleted FROM entry_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(lookup_u64(seq))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| backend_err("reading the entry log", e))?;
        rows.iter()
            .map(|row| {
                Ok(EntryEvent {
                    seq: u64_column(row, "seq")?,
                    entry_id: column(row, "entry_id")?,
                    parent_id: column(row, "parent_id")?,
                    deleted: bool_column(row, "deleted")?,
                })
            })
            .collect()
    }

    async fn prune_entry_events(&self, keep: u64) -> Result<u64, StoreError> {
        // With an empty log, MAX(seq) is NULL and nothing matches.
        let events = sqlx::query("DELETE FROM entry_events WHERE seq <= (SELECT MAX(seq) FROM entry_events) - $1")
            .bind(lookup_u64(keep))
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("pruning the entry log", e))?
            .rows_affected();
        Ok(events)
    }
}
