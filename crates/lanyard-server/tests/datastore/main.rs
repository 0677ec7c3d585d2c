//! The datastore conformance suite: one group of cases per store trait (one file each in
//! this directory), each case an async fn over that trait, run against SQLite (a fresh
//! file per case) and, when `LANYARD_TEST_DATABASE_URL` names a PostgreSQL server (an
//! admin URL such as `postgres://postgres@127.0.0.1:5432/postgres`), against PostgreSQL (a
//! fresh `lanyard_test_<random>` database per case, dropped afterwards). Without that
//! variable the PostgreSQL half prints a skip line, unless `LANYARD_REQUIRE_POSTGRES=1`,
//! which makes it fail.
//!
//! A new store trait brings a new file of cases here and one line in `conformance!`;
//! tests are named `<backend>::<group>::<case>`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agents;
mod authorities;
mod clients;
mod entries;
mod federated_bundles;
mod join_tokens;
mod secrets;

use std::future::Future;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, Connection, Executor};

use lanyard_core::{SpiffeId, UnixTime, WorkloadId};
use lanyard_server::datastore::{AuthorityStore, EntryStore, SqlDataStore, StoreError};
use lanyard_server::model::{EntrySpec, Selector};

/// What every case gets: the SQL store, which each case sees through its trait.
type Store = Arc<SqlDataStore>;

const NOW: UnixTime = UnixTime(1_700_000_000);
const PARENT_A: &str = "spiffe://example.org/spire/agent/a";
const PARENT_B: &str = "spiffe://example.org/spire/agent/b";
const PARENT_C: &str = "spiffe://example.org/spire/agent/c";

// ---- helpers ----

fn sid(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

fn selector(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn spec(identity: &str, parent: &str, selectors: &[&str]) -> EntrySpec {
    EntrySpec {
        spiffe_id: WorkloadId::parse(identity).unwrap(),
        parent_id: sid(parent),
        selectors: selectors.iter().map(|s| selector(s)).collect(),
        x509_svid_ttl: 0,
        jwt_svid_ttl: 0,
        wit_ttl: 0,
        dns_names: Vec::new(),
        federates_with: Vec::new(),
        admin: false,
        claims: Default::default(),
    }
}

fn token_hash(token: &str) -> String {
    lanyard_core::hex::encode(&lanyard_crypto::provider().sha256(token.as_bytes()))
}

// ---- harness ----

/// Runs `case` against a store in a fresh SQLite file.
async fn run_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lanyard.db").display());
    let store = Arc::new(SqlDataStore::connect(&url, lanyard_crypto::provider()).await.unwrap());
    assert_eq!(store.backend(), "sqlite");
    case(store.clone()).await;
    store.close().await;
}

/// The admin URL with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

/// Runs `case` against a store in a fresh PostgreSQL database, or prints a skip line.
async fn run_postgres<F, Fut>(name: &str, case: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Ok(admin_url) = std::env::var("LANYARD_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("LANYARD_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "LANYARD_REQUIRE_POSTGRES=1 but LANYARD_TEST_DATABASE_URL is not set"
        );
        eprintln!("skipping postgres::{name}: LANYARD_TEST_DATABASE_URL is not set");
        return;
    };
    let mut random = [0u8; 8];
    lanyard_crypto::provider().fill_random(&mut random).unwrap();
    let db: String = format!("lanyard_test_{}", lanyard_core::hex::encode(&random));
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .await
        .unwrap();

    let store = Arc::new(
        SqlDataStore::connect(&with_database(&admin_url, &db), lanyard_crypto::provider())
            .await
            .unwrap(),
    );
    assert_eq!(store.backend(), "postgres");
    // Spawned, so that a failing case still drops its database.
    let outcome = tokio::spawn(case(store.clone())).await;
    store.close().await;
    admin
        .execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")))
        .await
        .unwrap();
    admin.close().await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Expands every `group: [case, ...]` into `sqlite::group::case` and
/// `postgres::group::case` tests; each case gets the store as its group's trait.
macro_rules! conformance {
    ($($group:ident: [$($case:ident),* $(,)?]),* $(,)?) => {
        mod sqlite {
            $(
                mod $group {
                    $(
                        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                        async fn $case() {
                            crate::run_sqlite(|store| crate::$group::$case(store)).await;
                        }
                    )*
                }
            )*
        }
        mod postgres {
            $(
                mod $group {
                    $(
                        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                        async fn $case() {
                            crate::run_postgres(stringify!($case), |store| crate::$group::$case(store)).await;
                        }
                    )*
                }
            )*
        }
    };
}

conformance! {
    entries: [
        entry_crud,
        entry_duplicates,
        entry_bulk_all_or_none,
        entry_list_filters,
        entry_event_log,
        entry_concurrent_creates,
        entry_event_pruning,
        entry_claims,
    ],
    join_tokens: [join_tokens, join_token_concurrent_consume, join_token_pruning],
    agents: [agents],
    authorities: [authorities, bundle_sequence],
    federated_bundles: [federated_bundles],
    secrets: [server_secrets],
    clients: [client_crud, client_cache, jti_replay, jti_concurrent, jti_batch, jti_group_commit, revocations, revocation_mirror],
}

// ---- SQLite specifics ----

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub.db");
    let url = format!("sqlite://{}", path.display());
    let store = SqlDataStore::connect(&url, lanyard_crypto::provider()).await.unwrap();
    let entry = store
        .create_entry(&spec("spiffe://example.org/web", PARENT_A, &["unix:uid:1"]), NOW)
        .await
        .unwrap();
    assert_eq!(store.bump_bundle_sequence().await.unwrap(), 1);
    store.close().await;
    assert!(path.exists());

    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    conn.close().await.unwrap();

    // Reopening runs no migration twice and keeps the data.
    let store = SqlDataStore::connect(&url, lanyard_crypto::provider()).await.unwrap();
    assert_eq!(store.get_entry(&entry.id).await.unwrap(), Some(entry));
    assert_eq!(store.bundle_sequence().await.unwrap(), 1);
    assert_eq!(store.latest_entry_event().await.unwrap(), 1);
}

#[tokio::test]
async fn sqlite_in_memory() {
    let store = SqlDataStore::connect("sqlite::memory:", lanyard_crypto::provider())
        .await
        .unwrap();
    assert_eq!(store.backend(), "sqlite");
    let entry = store
        .create_entry(&spec("spiffe://example.org/web", PARENT_A, &["unix:uid:1"]), NOW)
        .await
        .unwrap();
    assert_eq!(store.get_entry(&entry.id).await.unwrap(), Some(entry));
}

#[tokio::test]
async fn rejects_unknown_url_schemes_without_echoing_them() {
    let err = SqlDataStore::connect("mysql://root:hunter2@localhost/db", lanyard_crypto::provider())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn database_url_rewriting() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
}
