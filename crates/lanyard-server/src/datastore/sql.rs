//! The SQL [`DataStore`]: one implementation and one SQL text for SQLite and PostgreSQL,
//! through sqlx's `Any` driver.
//!
//! Portability rules: `$1..$n` placeholders only; `ON CONFLICT` upserts and `RETURNING`;
//! only integers, text, bytes and booleans cross the driver, so timestamps are Unix-second
//! integers and lists are JSON text. The schema (`migrations/sqlite`, `migrations/postgres`)
//! is the only per-backend text, plus how an entry-writing transaction starts (below).
//!
//! Concurrency:
//! - duplicate entries are rejected by a UNIQUE index on a canonical key, so concurrent
//!   creates of the same entry cannot both commit;
//! - a join token is used up by `DELETE ... RETURNING`, so of concurrent uses exactly one
//!   sees the row;
//! - the bundle sequence is bumped by `UPDATE ... RETURNING` on a single row;
//! - every entry change appends to `entry_events` in its own transaction. Entry-writing
//!   transactions are serialized (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: an `EXCLUSIVE`
//!   lock on `entry_events`, which still lets readers through), so sequence numbers are
//!   assigned in commit order and a reader following `seq` never skips a change that
//!   commits later with a smaller number.
//!
//! SQLite runs in WAL mode with `synchronous=FULL`, `foreign_keys=ON` and a 5 s busy
//! timeout on every pooled connection: a write is durable once its call returns.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Executor, Row, Transaction};

use lanyard_core::{SpiffeId, UnixTime, WorkloadId, hex};

use super::{DataStore, EntryEvent, EntryFilter, StoreError, TokenUse};
use crate::model::{Agent, Authority, AuthorityKind, AuthorityStatus, Entry, EntrySpec, Selector};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Applied to every pooled SQLite connection. (`journal_mode=WAL` is a property of the
/// database file; it is set once, in [`SqlDataStore::connect`].)
const SQLITE_CONNECTION_PRAGMAS: &str =
    "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;";

/// The columns of `entries` that make up an [`Entry`], in `SELECT`/`RETURNING` lists.
macro_rules! entry_columns {
    () => {
        "id, spiffe_id, parent_id, selectors, x509_svid_ttl, jwt_svid_ttl, wit_ttl, dns_names, \
         federates_with, admin, revision, created_at"
    };
}

/// The columns of `agents` that make up an [`Agent`].
macro_rules! agent_columns {
    () => {
        "id, attestation_type, svid_serial, previous_svid_serial, svid_expires_at, selectors, banned, created_at"
    };
}

/// The columns of `authorities` that make up an [`Authority`].
macro_rules! authority_columns {
    () => {
        "id, kind, status, public_material, private_key, not_before, not_after"
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The SQL datastore, on SQLite (`sqlite://path/to/file.db`, created if missing, or
/// `sqlite::memory:` for tests) or PostgreSQL (`postgres://...`).
///
/// Behaviour beyond the [`DataStore`] contract:
/// - when an update moves an entry to another parent, two events are logged: the old
///   parent with `deleted: true` (the entry is gone *for that agent*), then the new parent
///   with `deleted: false`;
/// - [`upsert_agent`](DataStore::upsert_agent) keeps the first `created_at` and never
///   lifts a ban (so a re-attestation racing an admin's ban cannot undo it);
/// - [`put_authority`](DataStore::put_authority) may change an existing authority's
///   status, `not_after` and (re-encrypted) private key, but not its kind, public material
///   or `not_before`: that is [`StoreError::Conflict`];
/// - join tokens must be given as lowercase SHA-256 hex (anything else is
///   [`StoreError::Invalid`], so a raw token is never stored);
/// - entries need at least one selector; TTLs must fit in an `i64`; timestamps beyond
///   `i64::MAX` are stored as `i64::MAX`.
pub struct SqlDataStore {
    pool: AnyPool,
    backend: Backend,
    /// Signalled after every committed entry write of this process.
    changed: Arc<tokio::sync::Notify>,
}

impl fmt::Debug for SqlDataStore {
    // Not derived: the pool's options hold the database URL, which may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlDataStore")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl SqlDataStore {
    /// Opens the database and brings its schema up to date.
    ///
    /// `sqlite://path/to/file.db` (created if missing; relative to the working directory,
    /// `sqlite:///abs/path.db` for an absolute path), `sqlite::memory:` (one connection,
    /// gone when the store is dropped), or `postgres://user@host/db` (`postgresql://` too).
    pub async fn connect(url: &str) -> Result<SqlDataStore, StoreError> {
        sqlx::any::install_default_drivers();
        if url.starts_with("sqlite:") {
            SqlDataStore::connect_sqlite(url).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            SqlDataStore::connect_postgres(url).await
        } else {
            // The URL itself is not echoed: it may carry a password.
            Err(StoreError::Invalid(
                "unsupported database URL: expected sqlite:... or postgres://...".into(),
            ))
        }
    }

    async fn connect_sqlite(url: &str) -> Result<SqlDataStore, StoreError> {
        let memory = url == "sqlite::memory:" || url.contains("mode=memory");
        let url = if memory || url.contains("mode=") {
            url.to_owned()
        } else if url.contains('?') {
            format!("{url}&mode=rwc")
        } else {
            format!("{url}?mode=rwc")
        };
        let options = AnyPoolOptions::new().after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute(SQLITE_CONNECTION_PRAGMAS).await?;
                Ok(())
            })
        });
        let options = if memory {
            // Every new connection to `:memory:` is a new, empty database: keep exactly one.
            options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            options.max_connections(8).idle_timeout(Duration::from_secs(600))
        };
        let pool = options
            .connect(&url)
            .await
            .map_err(|e| backend_err("opening the SQLite database", e))?;
        if !memory {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
                .fetch_one(&pool)
                .await
                .map_err(|e| backend_err("enabling WAL", e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Inconsistent(format!(
                    "SQLite refused WAL mode (journal_mode is {mode})"
                )));
            }
        }
        SQLITE_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|e| StoreError::backend("migrating the SQLite schema", e))?;
        Ok(SqlDataStore {
            pool,
            backend: Backend::Sqlite,
            changed: Arc::default(),
        })
    }

    async fn connect_postgres(url: &str) -> Result<SqlDataStore, StoreError> {
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .idle_timeout(Duration::from_secs(600))
            .connect(url)
            .await
            .map_err(|e| backend_err("connecting to PostgreSQL", e))?;
        POSTGRES_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|e| StoreError::backend("migrating the PostgreSQL schema", e))?;
        Ok(SqlDataStore {
            pool,
            backend: Backend::Postgres,
            changed: Arc::default(),
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Closes every connection, waiting for calls in progress to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a transaction that changes entries (and so appends to the change log);
    /// these are serialized, see the module documentation.
    async fn begin_entry_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(|e| backend_err("starting a transaction", e)),
            Backend::Postgres => {
                let mut tx = self
                    .pool
                    .begin()
                    .await
                    .map_err(|e| backend_err("starting a transaction", e))?;
                tx.execute("LOCK TABLE entry_events IN EXCLUSIVE MODE")
                    .await
                    .map_err(|e| backend_err("locking the entry log", e))?;
                Ok(tx)
            }
        }
    }
}

// ---- errors and conversions ----

fn backend_err(context: &str, e: sqlx::Error) -> StoreError {
    // sqlx's messages carry the database's message, never the bound parameters.
    StoreError::backend(context, e)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn commit_err(e: sqlx::Error) -> StoreError {
    backend_err("committing", e)
}

fn column<'r, T>(row: &'r AnyRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(name)
        .map_err(|e| StoreError::backend(format!("reading column {name}"), e))
}

/// A boolean column: BOOLEAN on PostgreSQL, a 0/1 INTEGER on SQLite.
fn bool_column(row: &AnyRow, name: &str) -> Result<bool, StoreError> {
    match row.try_get::<bool, _>(name) {
        Ok(b) => Ok(b),
        Err(_) => column::<i64>(row, name).map(|v| v != 0),
    }
}

fn u64_column(row: &AnyRow, name: &str) -> Result<u64, StoreError> {
    let v: i64 = column(row, name)?;
    u64::try_from(v).map_err(|_| StoreError::Inconsistent(format!("column {name} holds a negative value")))
}

fn time_column(row: &AnyRow, name: &str) -> Result<UnixTime, StoreError> {
    u64_column(row, name).map(UnixTime)
}

fn json_column<T: serde::de::DeserializeOwned>(row: &AnyRow, name: &str) -> Result<T, StoreError> {
    let text: String = column(row, name)?;
    serde_json::from_str(&text).map_err(|e| StoreError::backend(format!("column {name} holds bad JSON"), e))
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("cannot encode as JSON: {e}")))
}

/// Timestamps beyond `i64::MAX` (year 292 billion) are stored as `i64::MAX`.
fn time_param(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

fn ttl_param(ttl: u64, name: &str) -> Result<i64, StoreError> {
    i64::try_from(ttl).map_err(|_| StoreError::Invalid(format!("{name} is too large")))
}

fn new_entry_id() -> Result<String, StoreError> {
    let mut id = [0u8; 16];
    lanyard_crypto::provider()
        .fill_random(&mut id)
        .map_err(|e| StoreError::backend("generating an entry ID", e))?;
    Ok(hex::encode(&id))
}

fn check_token_hash(token_hash: &str) -> Result<(), StoreError> {
    if token_hash.len() == 64 && token_hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            "a join token is stored by its SHA-256 as 64 lowercase hex digits".into(),
        ))
    }
}

fn lookup_u64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

// ---- entries ----

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
}

impl EntryColumns {
    fn new(spec: &EntrySpec) -> Result<EntryColumns, StoreError> {
        if spec.selectors.is_empty() {
            return Err(StoreError::Invalid("an entry needs at least one selector".into()));
        }
        Ok(EntryColumns {
            key: entry_key(spec)?,
            spiffe_id: spec.spiffe_id.as_str().to_owned(),
            parent_id: spec.parent_id.as_str().to_owned(),
            selectors: to_json(&spec.selectors)?,
            x509_svid_ttl: ttl_param(spec.x509_svid_ttl, "x509_svid_ttl")?,
            jwt_svid_ttl: ttl_param(spec.jwt_svid_ttl, "jwt_svid_ttl")?,
            wit_ttl: ttl_param(spec.wit_ttl, "wit_ttl")?,
            dns_names: to_json(&spec.dns_names)?,
            federates_with: to_json(&spec.federates_with)?,
            admin: spec.admin,
        })
    }

    /// Binds the columns, in the order `entry_key, spiffe_id, parent_id, selectors,
    /// x509_svid_ttl, jwt_svid_ttl, wit_ttl, dns_names, federates_with, admin` (the same in
    /// the INSERT and the UPDATE).
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
    }
}

/// What makes two entries the same: identity, parent and the *set* of selectors. The
/// SHA-256 (hex) of a versioned JSON encoding, so the indexed value has a fixed size and
/// no separator can be forged.
fn entry_key(spec: &EntrySpec) -> Result<String, StoreError> {
    let mut selectors: Vec<&Selector> = spec.selectors.iter().collect();
    selectors.sort();
    selectors.dedup();
    let canonical = to_json(&(
        "lanyard-entry-key-v1",
        spec.spiffe_id.as_str(),
        spec.parent_id.as_str(),
        selectors,
    ))?;
    Ok(hex::encode(&lanyard_crypto::provider().sha256(canonical.as_bytes())))
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
async fn insert_entry(conn: &mut AnyConnection, spec: &EntrySpec, now: UnixTime) -> Result<Entry, StoreError> {
    let cols = EntryColumns::new(spec)?;
    let id = new_entry_id()?;
    let query = sqlx::query(
        "INSERT INTO entries (id, entry_key, spiffe_id, parent_id, selectors, x509_svid_ttl, \
         jwt_svid_ttl, wit_ttl, dns_names, federates_with, admin, revision, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12)",
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

// ---- agents and authorities ----

fn agent_from_row(row: &AnyRow) -> Result<Agent, StoreError> {
    let id: String = column(row, "id")?;
    Ok(Agent {
        id: SpiffeId::parse(&id).map_err(|e| StoreError::backend("stored agent ID is invalid", e))?,
        attestation_type: column(row, "attestation_type")?,
        svid_serial: column(row, "svid_serial")?,
        previous_svid_serial: column(row, "previous_svid_serial")?,
        svid_expires_at: time_column(row, "svid_expires_at")?,
        selectors: json_column(row, "selectors")?,
        banned: bool_column(row, "banned")?,
        created_at: time_column(row, "created_at")?,
    })
}

fn parse_kind(s: &str) -> Result<AuthorityKind, StoreError> {
    [AuthorityKind::X509, AuthorityKind::Jwt, AuthorityKind::Wit]
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
impl DataStore for SqlDataStore {
    fn local_changes(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(Arc::clone(&self.changed))
    }

    async fn create_entry(&self, spec: &EntrySpec, now: UnixTime) -> Result<Entry, StoreError> {
        let mut tx = self.begin_entry_write().await?;
        let entry = insert_entry(&mut tx, spec, now).await?;
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
            let entry = insert_entry(&mut tx, spec, now).await.map_err(|e| match e {
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
        let cols = EntryColumns::new(spec)?;
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
             federates_with = $11, admin = $12, revision = $13 \
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

    async fn prune(&self, now: UnixTime, keep_events: u64) -> Result<(u64, u64), StoreError> {
        let tokens = sqlx::query("DELETE FROM join_tokens WHERE expires_at < $1")
            .bind(time_param(now))
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("pruning join tokens", e))?
            .rows_affected();
        // With an empty log, MAX(seq) is NULL and nothing matches.
        let events = sqlx::query("DELETE FROM entry_events WHERE seq <= (SELECT MAX(seq) FROM entry_events) - $1")
            .bind(lookup_u64(keep_events))
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("pruning the entry log", e))?
            .rows_affected();
        Ok((tokens, events))
    }

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

    async fn upsert_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO agents (id, attestation_type, svid_serial, svid_expires_at, selectors, banned, created_at, \
             previous_svid_serial) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET attestation_type = excluded.attestation_type, \
             svid_serial = excluded.svid_serial, svid_expires_at = excluded.svid_expires_at, \
             previous_svid_serial = excluded.previous_svid_serial, \
             selectors = excluded.selectors, banned = (agents.banned OR excluded.banned)",
        )
        .bind(agent.id.as_str())
        .bind(&agent.attestation_type)
        .bind(&agent.svid_serial)
        .bind(time_param(agent.svid_expires_at))
        .bind(to_json(&agent.selectors)?)
        .bind(agent.banned)
        .bind(time_param(agent.created_at))
        .bind(&agent.previous_svid_serial)
        .execute(&self.pool)
        .await
        .map_err(|e| backend_err("storing an agent", e))?;
        Ok(())
    }

    async fn clear_previous_svid_serial(&self, id: &SpiffeId, current_serial: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE agents SET previous_svid_serial = '' WHERE id = $1 AND svid_serial = $2")
            .bind(id.as_str())
            .bind(current_serial)
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("updating an agent", e))?;
        Ok(())
    }

    async fn get_agent(&self, id: &SpiffeId) -> Result<Option<Agent>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", agent_columns!(), " FROM agents WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend_err("reading an agent", e))?;
        row.as_ref().map(agent_from_row).transpose()
    }

    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        let rows = sqlx::query(concat!("SELECT ", agent_columns!(), " FROM agents ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| backend_err("listing agents", e))?;
        rows.iter().map(agent_from_row).collect()
    }

    async fn ban_agent(&self, id: &SpiffeId) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE agents SET banned = $2 WHERE id = $1")
            .bind(id.as_str())
            .bind(true)
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("banning an agent", e))?;
        Ok(result.rows_affected() > 0)
    }

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
