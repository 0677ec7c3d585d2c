//! The SQL datastore: one implementation of every store trait and one SQL text for SQLite
//! and PostgreSQL, through sqlx's `Any` driver. This file holds the connection, the
//! transaction rules and the column conversions; each noun's trait is implemented in its
//! own file under `sql/`.
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
//! timeout on every pooled connection: a write is durable once its call returns. The one
//! exception is the connection that records batches of one-time values (`sql/jtis.rs`),
//! which is opened with `synchronous=NORMAL` (docs/security.md says why).

mod agents;
mod authorities;
mod clients;
mod entries;
mod federated_bundles;
mod join_tokens;
mod jti_journal;
mod jtis;
mod live_jtis;
mod secrets;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor, Row, Transaction};

use lanyard_core::{CryptoProvider, UnixTime};

use super::StoreError;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Applied to every pooled SQLite connection. (`journal_mode=WAL` is a property of the
/// database file; it is set once, in [`SqlDataStore::connect`].)
const SQLITE_CONNECTION_PRAGMAS: &str =
    "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;";

/// Pool options for SQLite connections that run `pragmas` when they open.
fn sqlite_pool_options(pragmas: &'static str) -> AnyPoolOptions {
    AnyPoolOptions::new().after_connect(move |conn, _meta| {
        Box::pin(async move {
            conn.execute(pragmas).await?;
            Ok(())
        })
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The SQL datastore, on SQLite (`sqlite://path/to/file.db`, created if missing, or
/// `sqlite::memory:` for tests) or PostgreSQL (`postgres://...`).
///
/// Behaviour beyond the store traits' contracts:
/// - when an update moves an entry to another parent, two events are logged: the old
///   parent with `deleted: true` (the entry is gone *for that agent*), then the new parent
///   with `deleted: false`;
/// - [`upsert_agent`](super::AgentStore::upsert_agent) keeps the first `created_at` and never
///   lifts a ban (so a re-attestation racing an admin's ban cannot undo it);
/// - [`put_authority`](super::AuthorityStore::put_authority) may change an existing authority's
///   status, `not_after` and (re-encrypted) private key, but not its kind, public material
///   or `not_before`: that is [`StoreError::Conflict`];
/// - join tokens must be given as lowercase SHA-256 hex (anything else is
///   [`StoreError::Invalid`], so a raw token is never stored);
/// - entries need at least one selector; TTLs must fit in an `i64`; timestamps beyond
///   `i64::MAX` are stored as `i64::MAX`;
/// - on SQLite, the used one-time values are decided by this store value
///   (`sql/live_jtis.rs`): two stores on one file do not see each other's, which is why a
///   server locks its SQLite file (`server.rs`).
pub struct SqlDataStore {
    pool: AnyPool,
    /// On SQLite, the used one-time values, decided in memory (`sql/live_jtis.rs`); on
    /// PostgreSQL, none (the `oauth_jti` table decides, for every replica).
    live_jtis: Option<Arc<live_jtis::LiveJtis>>,
    /// On a SQLite file, the journal that makes them durable (`sql/jti_journal.rs`); none
    /// for an in-memory database, which does not outlive the process either.
    jti_journal: Option<Arc<jti_journal::JtiJournal>>,
    backend: Backend,
    /// Signalled after every committed entry write of this process.
    changed: Arc<tokio::sync::Notify>,
    /// Entry IDs (random) and entry keys (SHA-256).
    crypto: Arc<dyn CryptoProvider>,
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
    /// `crypto` draws entry IDs and hashes entry keys.
    pub async fn connect(url: &str, crypto: Arc<dyn CryptoProvider>) -> Result<SqlDataStore, StoreError> {
        sqlx::any::install_default_drivers();
        if url.starts_with("sqlite:") {
            SqlDataStore::connect_sqlite(url, crypto).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            SqlDataStore::connect_postgres(url, crypto).await
        } else {
            // The URL itself is not echoed: it may carry a password.
            Err(StoreError::Invalid(
                "unsupported database URL: expected sqlite:... or postgres://...".into(),
            ))
        }
    }

    /// The file of a SQLite URL (`sqlite://path`, `sqlite:path`, with or without a query);
    /// `None` for an in-memory SQLite database and for other backends.
    pub fn sqlite_file(url: &str) -> Option<&str> {
        let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty() && !path.starts_with(":memory:") && !url.contains("mode=memory")).then_some(path)
    }

    async fn connect_sqlite(url: &str, crypto: Arc<dyn CryptoProvider>) -> Result<SqlDataStore, StoreError> {
        let file = SqlDataStore::sqlite_file(url).map(str::to_owned);
        let memory = file.is_none();
        let url = if memory || url.contains("mode=") {
            url.to_owned()
        } else if url.contains('?') {
            format!("{url}&mode=rwc")
        } else {
            format!("{url}?mode=rwc")
        };
        let options = sqlite_pool_options(SQLITE_CONNECTION_PRAGMAS);
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
        let live_jtis = Arc::new(live_jtis::LiveJtis::new(Arc::clone(&crypto), live_jtis::MAX_LIVE_JTIS));
        let started = Instant::now();
        let now = lanyard_core::Clock::now(&lanyard_core::SystemClock);
        SqlDataStore::restore_jtis(&pool, &live_jtis, now).await?;
        let jti_journal = match &file {
            // Beside the database's real path (it exists now), whatever name it was opened by.
            Some(file) => Some(jti_journal::JtiJournal::open(
                &jti_journal::JtiJournal::dir_of(
                    &std::fs::canonicalize(file).map_or_else(|_| file.clone(), |p| p.display().to_string()),
                ),
                &live_jtis,
                now,
            )?),
            None => None,
        };
        tracing::debug!(
            live = live_jtis.len(),
            millis = started.elapsed().as_millis() as u64,
            "read the used one-time values back"
        );
        Ok(SqlDataStore {
            pool,
            live_jtis: Some(live_jtis),
            jti_journal,
            backend: Backend::Sqlite,
            changed: Arc::default(),
            crypto,
        })
    }

    async fn connect_postgres(url: &str, crypto: Arc<dyn CryptoProvider>) -> Result<SqlDataStore, StoreError> {
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
            live_jtis: None,
            jti_journal: None,
            pool,
            backend: Backend::Postgres,
            changed: Arc::default(),
            crypto,
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

fn lookup_u64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

// ---- agents and authorities ----

#[cfg(test)]
mod tests {
    use super::SqlDataStore;

    #[test]
    fn the_file_of_a_sqlite_url() {
        assert_eq!(
            SqlDataStore::sqlite_file("sqlite://data/lanyard.db"),
            Some("data/lanyard.db")
        );
        assert_eq!(
            SqlDataStore::sqlite_file("sqlite:///abs/l.db?mode=rwc"),
            Some("/abs/l.db")
        );
        assert_eq!(SqlDataStore::sqlite_file("sqlite:l.db"), Some("l.db"));
        assert_eq!(SqlDataStore::sqlite_file("sqlite::memory:"), None);
        assert_eq!(
            SqlDataStore::sqlite_file("sqlite://x.db?mode=memory&cache=shared"),
            None
        );
        assert_eq!(SqlDataStore::sqlite_file("postgres://u@h/db"), None);
    }
}
