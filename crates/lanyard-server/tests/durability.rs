//! Crash durability of the SQLite datastore: a child process (this test binary, re-run
//! with `LANYARD_DURABILITY_CHILD_DB` set) writes as fast as it can and prints every
//! write the store acknowledged; the parent kills it with SIGKILL mid-burst, reopens the
//! file and checks that every acknowledged write is there and the database is intact.
//! The writes include batches of one-time values (`jti`s), which have their own
//! connection (`synchronous=NORMAL`, WAL checkpointed in the background): a `jti`
//! acknowledged before the kill must be refused as a replay after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sqlx::Connection;

use lanyard_core::{SpiffeId, UnixTime, WorkloadId};
use lanyard_server::datastore::{AuthorityStore, EntryStore, JtiStore, SqlDataStore};
use lanyard_server::model::{EntrySpec, Selector};

const CHILD_ENV: &str = "LANYARD_DURABILITY_CHILD_DB";
const CHILD_TEST: &str = "child_write_burst";
const WRITERS: u64 = 4;

fn url(path: &str) -> String {
    format!("sqlite://{path}")
}

/// The frames in the WAL of the database `conn` is open on (a `PASSIVE` checkpoint's
/// answer: busy, frames in the WAL, frames checkpointed).
async fn wal_frames(conn: &mut sqlx::SqliteConnection) -> i64 {
    let (_, frames, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(conn)
        .await
        .unwrap();
    frames
}

/// A store on a new SQLite file: the directory (removed when dropped), the file's path and
/// the store.
async fn fresh_store() -> (tempfile::TempDir, String, SqlDataStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lanyard.db").to_str().unwrap().to_owned();
    let store = SqlDataStore::connect(&url(&path), lanyard_crypto::provider())
        .await
        .unwrap();
    (dir, path, store)
}

fn spec(writer: u64, i: u64) -> EntrySpec {
    EntrySpec {
        spiffe_id: WorkloadId::parse(&format!("spiffe://example.org/w{writer}/e{i}")).unwrap(),
        parent_id: SpiffeId::parse("spiffe://example.org/spire/agent/a").unwrap(),
        selectors: vec![Selector::parse(&format!("unix:uid:{i}")).unwrap()],
        x509_svid_ttl: 0,
        jwt_svid_ttl: 0,
        wit_ttl: 0,
        dns_names: Vec::new(),
        federates_with: Vec::new(),
        admin: false,
        claims: Default::default(),
    }
}

/// Writes one acknowledgement line straight to the process's stdout (not through the
/// test harness's capture) and flushes it; a broken pipe ends the child.
fn ack(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// The child's half: does nothing unless `LANYARD_DURABILITY_CHILD_DB` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn child_write_burst() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Arc::new(
        SqlDataStore::connect(&url(&path), lanyard_crypto::provider())
            .await
            .unwrap(),
    );
    // Bounded, so a child whose parent vanished stops on its own.
    let stop = Instant::now() + Duration::from_secs(30);
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let mut i = 0;
            while Instant::now() < stop {
                let entry = store
                    .create_entry(&spec(writer, i), UnixTime(1_700_000_000))
                    .await
                    .unwrap();
                ack(&format!("ENTRY {}", entry.id));
                i += 1;
            }
        });
    }
    {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            while Instant::now() < stop {
                let seq = store.bump_bundle_sequence().await.unwrap();
                ack(&format!("SEQ {seq}"));
            }
        });
    }
    {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let mut batch = 0;
            while Instant::now() < stop {
                let keys: Vec<(String, UnixTime)> = (0..8).map(|k| (format!("jti-{batch}-{k}"), FAR)).collect();
                let fresh = store.record_jtis(&keys, NOW).await.unwrap();
                for ((key, _), fresh) in keys.iter().zip(fresh) {
                    assert!(fresh);
                    ack(&format!("JTI {key}"));
                }
                batch += 1;
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
}

/// The `now` and the expiry of the child's `jti`s.
const NOW: UnixTime = UnixTime(1_700_000_000);
const FAR: UnixTime = UnixTime(1_800_000_000);

#[test]
fn acknowledged_writes_survive_sigkill() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lanyard.db").to_str().unwrap().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Create the schema first, so the child starts writing at once.
    rt.block_on(async {
        SqlDataStore::connect(&url(&path), lanyard_crypto::provider())
            .await
            .unwrap()
            .close()
            .await
    });

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, &path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();

    // Only complete lines count: a line cut off by the kill was never fully acknowledged.
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match stdout.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) if buf.ends_with(b"\n") => {
                    let line = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
                    if tx.send(line).is_err() {
                        break;
                    }
                }
                Ok(_) => break,
            }
        }
    });

    let mut lines = Vec::new();
    // Wait (generously: the child has to start up) for the first acknowledgement of both
    // writers (on a loaded machine the jti writer may start well after the entry one) ...
    let startup = Instant::now() + Duration::from_secs(60);
    let acknowledged = |lines: &[String], kind: &str| lines.iter().any(|l| l.starts_with(kind));
    while !(acknowledged(&lines, "ENTRY ") && acknowledged(&lines, "JTI ")) {
        let left = startup.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(e) => {
                child.kill().ok();
                panic!("the child acknowledged nothing: {e}");
            }
        }
    }
    // ... then let it write for ~300 ms and kill it mid-burst.
    let deadline = Instant::now() + Duration::from_millis(300);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the child exited early"),
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    reader.join().unwrap();
    lines.extend(rx.try_iter()); // acknowledged before the kill, read after it

    let entry_ids: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("ENTRY ")).collect();
    let max_seq = lines
        .iter()
        .filter_map(|l| l.strip_prefix("SEQ "))
        .map(|s| s.parse::<u64>().unwrap())
        .max()
        .unwrap_or(0);
    assert!(!entry_ids.is_empty());
    eprintln!(
        "the child acknowledged {} entries and bundle sequence {max_seq} before SIGKILL",
        entry_ids.len()
    );

    rt.block_on(async {
        // The file is intact ...
        let mut conn = sqlx::SqliteConnection::connect(&url(&path)).await.unwrap();
        let check: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert_eq!(check, vec!["ok".to_owned()]);
        conn.close().await.unwrap();

        // ... and holds every acknowledged write.
        let store = SqlDataStore::connect(&url(&path), lanyard_crypto::provider())
            .await
            .unwrap();
        let mut missing = Vec::new();
        for id in &entry_ids {
            if store.get_entry(id).await.unwrap().is_none() {
                missing.push(*id);
            }
        }
        assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
        assert!(store.bundle_sequence().await.unwrap() >= max_seq);
        // Every stored entry has its event (same transaction).
        let entries = store.list_entries(&Default::default()).await.unwrap();
        assert!(entries.len() >= entry_ids.len());
        let events = store.entry_events_since(0, u32::MAX).await.unwrap();
        assert_eq!(events.len(), entries.len());
        // Every acknowledged jti is still recorded: using it again is a replay.
        let jtis: Vec<(String, UnixTime)> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("JTI "))
            .map(|k| (k.to_owned(), FAR))
            .collect();
        assert!(!jtis.is_empty());
        let fresh = store.record_jtis(&jtis, NOW).await.unwrap();
        let lost: Vec<&str> = jtis
            .iter()
            .zip(&fresh)
            .filter(|(_, fresh)| **fresh)
            .map(|((k, _), _)| k.as_str())
            .collect();
        assert!(lost.is_empty(), "acknowledged jtis lost: {lost:?}");
        store.close().await;
    });
}

/// Used `jti`s go to the store's journal (`<database>.jtis/`), not to the database: a
/// second of them at full load would otherwise be thousands of WAL frames to checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jtis_go_to_the_journal_not_the_wal() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let (_dir, path, store) = fresh_store().await;
    let mut conn = sqlx::SqliteConnection::connect(&url(&path)).await.unwrap();
    let before = wal_frames(&mut conn).await;
    for batch in 0..200 {
        let keys: Vec<(String, UnixTime)> = (0..4).map(|k| (format!("w-{batch}-{k}"), FAR)).collect();
        assert!(store.record_jtis(&keys, NOW).await.unwrap().iter().all(|f| *f));
    }
    assert_eq!(wal_frames(&mut conn).await, before, "jtis were written to the WAL");
    conn.close().await.unwrap();
    let journal = std::path::PathBuf::from(format!("{path}.jtis"));
    let bytes: u64 = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(bytes, 800 * 24, "one 24-byte record per key");
    store.close().await;
}

/// A SQLite store decides replays in memory and appends used keys to its journal; when it
/// opens, it reads back the journal and the tables earlier versions wrote (the log
/// `oauth_jti_log` and the keyed `oauth_jti`), so a key recorded in any is a replay after
/// an upgrade too.
#[tokio::test]
async fn a_reopened_store_remembers_keys_of_the_log_and_of_earlier_versions() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let (_dir, path, store) = fresh_store().await;
    // More keys than one page of the read-back.
    let keys: Vec<(String, UnixTime)> = (0..12_500).map(|k| (format!("log-{k}"), FAR)).collect();
    assert!(store.record_jtis(&keys, NOW).await.unwrap().iter().all(|f| *f));
    store.close().await;
    // What an earlier version left in the keyed table.
    let mut conn = sqlx::SqliteConnection::connect(&url(&path)).await.unwrap();
    for table in ["oauth_jti", "oauth_jti_log"] {
        let sql = format!("INSERT INTO {table} (jti_key, expires_at) VALUES ('legacy-{table}', $1)");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(FAR.as_secs() as i64)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();

    let store = SqlDataStore::connect(&url(&path), lanyard_crypto::provider())
        .await
        .unwrap();
    let again = [
        ("legacy-oauth_jti".to_owned(), FAR),
        ("legacy-oauth_jti_log".to_owned(), FAR),
        ("log-0".to_owned(), FAR),
        ("log-12499".to_owned(), FAR),
        ("new".to_owned(), FAR),
    ];
    assert_eq!(
        store.record_jtis(&again, NOW).await.unwrap(),
        [false, false, false, false, true]
    );
    store.close().await;
}

/// Pruning forgets every expired key and no live one, and a reopened store still refuses
/// the live ones.
#[tokio::test]
async fn pruning_the_log_drops_expired_keys_only() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let (_dir, path, store) = fresh_store().await;
    let soon = UnixTime(NOW.as_secs() + 10);
    let expired: Vec<(String, UnixTime)> = (0..5_500).map(|k| (format!("old-{k}"), soon)).collect();
    let live: Vec<(String, UnixTime)> = (0..50).map(|k| (format!("live-{k}"), FAR)).collect();
    store.record_jtis(&expired, NOW).await.unwrap();
    store.record_jtis(&live, NOW).await.unwrap();
    assert_eq!(store.prune_jtis(soon.plus(1)).await.unwrap(), 5_500);
    assert_eq!(store.prune_jtis(soon.plus(1)).await.unwrap(), 0);
    store.close().await;
    let store = SqlDataStore::connect(&url(&path), lanyard_crypto::provider())
        .await
        .unwrap();
    assert!(store.record_jtis(&live, soon.plus(1)).await.unwrap().iter().all(|f| !f));
    store.close().await;
}
