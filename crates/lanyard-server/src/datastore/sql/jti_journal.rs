//! The journal that makes a SQLite store's used one-time values durable: the directory
//! `<database file>.jtis/`, beside the database.
//!
//! [`LiveJtis`] decides in memory which keys are fresh; each
//! fresh key is appended here before its caller is answered, and the journal is read back
//! when the store opens, so a replay is still refused after a restart or a `kill -9`.
//!
//! Format: segment files `segment-<number>.log` of fixed 24-byte records, each the 16-byte
//! digest a key is known by in memory and its expiry (Unix seconds, 8 bytes little-endian).
//! A process only appends to the segment it created, and starts a new one every
//! [`SEGMENT_SECS`]. A record torn by a crash can only be the last bytes of a segment,
//! which reading skips; after a failed write (a full disk) the segment is cut back to its
//! last whole record and no key is accepted until a new segment has been started (fail
//! closed). A segment is deleted once every key in it has expired.
//!
//! Why not a table: appending to `oauth_jti_log` cost a hand-off to SQLite's worker thread
//! and back, a transaction with its file locks and a WAL write for every batch of keys;
//! here a key costs one `write(2)` on the request's own thread (docs/benchmarks.md).
//!
//! One store per database file: a server locks its SQLite file (`server.rs`), and a
//! journal opened twice at once would delete the other's segments it finds expired.
//!
//! Durability: the same as the WAL with `synchronous=NORMAL` it replaces. A write is in the
//! operating system's page cache when the caller is answered, so it survives the process
//! being killed; a background task flushes what was written (segments and the directory)
//! to the disk every [`SYNC_EVERY`], so a power loss can forget the keys of the last second
//! (docs/security.md).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use lanyard_core::UnixTime;

use super::live_jtis::{Digest, LiveJtis};
use crate::datastore::StoreError;

/// Bytes of one record: the digest, then the expiry.
const RECORD: usize = 24;

/// Seconds a segment is appended to before the next one starts.
const SEGMENT_SECS: u64 = 60;

/// The most threads that read the journal back at open.
const RESTORE_THREADS: usize = 4;

/// How far apart, at most, the current segment is flushed to the disk.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// A segment no longer written to, and the latest expiry in it.
struct Sealed {
    path: PathBuf,
    latest_expiry: u64,
}

/// The segment being appended to.
struct Current {
    file: Arc<File>,
    number: u64,
    started: u64,
    latest_expiry: u64,
    written: u64,
}

struct State {
    current: Current,
    sealed: Vec<Sealed>,
    /// A write failed: the next append must start a new segment first.
    must_rotate: bool,
    /// Written since the last flush: segments (the current one, and ones sealed since), and
    /// whether the directory gained a segment.
    unflushed: Vec<Arc<File>>,
    directory_changed: bool,
}

/// The journal of one SQLite store (see the module doc).
pub(super) struct JtiJournal {
    dir: PathBuf,
    state: Mutex<State>,
}

impl JtiJournal {
    /// The journal directory of the SQLite database file `database`.
    pub(super) fn dir_of(database: &str) -> PathBuf {
        PathBuf::from(format!("{database}.jtis"))
    }

    /// Opens the journal in `dir` (created if missing): reads every segment back into
    /// `live` (the keys still live at `now`), deletes the segments whose keys have all
    /// expired, and starts a new segment.
    pub(super) fn open(dir: &Path, live: &LiveJtis, now: UnixTime) -> Result<Arc<JtiJournal>, StoreError> {
        let fail = |what: &'static str| move |e: io::Error| StoreError::backend(what, e);
        fs::create_dir_all(dir).map_err(fail("creating the jti journal"))?;
        let segments = list_segments(dir).map_err(fail("reading the jti journal"))?;
        let readers = std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(RESTORE_THREADS);
        let latest = read_back(&segments, live, now, readers).map_err(fail("reading the jti journal"))?;
        let mut sealed = Vec::new();
        for ((_, path), latest_expiry) in segments.iter().zip(latest) {
            if latest_expiry < now.as_secs() {
                fs::remove_file(path).map_err(fail("pruning the jti journal"))?;
            } else {
                sealed.push(Sealed {
                    path: path.clone(),
                    latest_expiry,
                });
            }
        }
        let next = segments.last().map_or(1, |(number, _)| number + 1);
        let current = create_segment(dir, next, now).map_err(fail("creating a jti journal segment"))?;
        let journal = Arc::new(JtiJournal {
            dir: dir.to_owned(),
            state: Mutex::new(State {
                current,
                sealed,
                must_rotate: false,
                unflushed: Vec::new(),
                directory_changed: true,
            }),
        });
        journal.flush();
        spawn_flusher(Arc::downgrade(&journal));
        Ok(journal)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `records` (digest, expiry) in one write. A failed write is cut back to the
    /// last whole record, and the journal refuses to append until it has started a new
    /// segment (see the module doc).
    pub(super) fn append<'a>(
        &self,
        records: impl Iterator<Item = (&'a Digest, u64)>,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut bytes = Vec::with_capacity(RECORD * 4);
        let mut latest = 0;
        for (digest, expiry) in records {
            bytes.extend_from_slice(digest);
            bytes.extend_from_slice(&expiry.to_le_bytes());
            latest = latest.max(expiry);
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let mut state = self.lock();
        let now = now.as_secs();
        let due = state.current.written > 0 && now >= state.current.started.saturating_add(SEGMENT_SECS);
        if state.must_rotate || due {
            self.rotate(&mut state, now)
                .map_err(|e| StoreError::backend("starting a jti journal segment", e))?;
        }
        if let Err(e) = (&*state.current.file).write_all(&bytes) {
            // Whatever part of the records reached the file is cut off; if even that
            // fails, the next segment starts clean.
            let _ = state.current.file.set_len(state.current.written);
            state.must_rotate = true;
            return Err(StoreError::backend("appending to the jti journal", e));
        }
        state.current.written += bytes.len() as u64;
        state.current.latest_expiry = state.current.latest_expiry.max(latest);
        if !state.unflushed.iter().any(|f| Arc::ptr_eq(f, &state.current.file)) {
            let file = Arc::clone(&state.current.file);
            state.unflushed.push(file);
        }
        Ok(())
    }

    /// Seals the current segment and starts the next.
    fn rotate(&self, state: &mut State, now: u64) -> io::Result<()> {
        let next = create_segment(&self.dir, state.current.number + 1, UnixTime(now))?;
        let done = std::mem::replace(&mut state.current, next);
        state.must_rotate = false;
        state.directory_changed = true;
        state.sealed.push(Sealed {
            path: segment_path(&self.dir, done.number),
            latest_expiry: done.latest_expiry,
        });
        Ok(())
    }

    /// Flushes to the disk what was written since the last flush: the segments, then the
    /// directory if it gained one. Blocking: run on a blocking thread.
    fn flush(&self) {
        let (files, directory) = {
            let mut state = self.lock();
            (
                std::mem::take(&mut state.unflushed),
                std::mem::take(&mut state.directory_changed),
            )
        };
        for file in files {
            if let Err(error) = file.sync_data() {
                tracing::warn!(%error, "cannot flush the jti journal to the disk");
            }
        }
        if directory && let Err(error) = File::open(&self.dir).and_then(|d| d.sync_all()) {
            tracing::warn!(%error, "cannot flush the jti journal's directory to the disk");
        }
    }

    /// Deletes the sealed segments whose keys have all expired at `now`; answers how many.
    /// A segment that cannot be deleted is kept for the next time.
    pub(super) fn prune(&self, now: UnixTime) -> Result<usize, StoreError> {
        let expired: Vec<Sealed> = {
            let mut state = self.lock();
            let (expired, kept) = std::mem::take(&mut state.sealed)
                .into_iter()
                .partition(|s| s.latest_expiry < now.as_secs());
            state.sealed = kept;
            expired
        };
        let mut deleted = 0;
        let mut failed = Vec::new();
        let mut error = None;
        for segment in expired {
            match fs::remove_file(&segment.path) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => deleted += 1,
                Err(e) => {
                    error.get_or_insert(e);
                    failed.push(segment);
                }
            }
        }
        if !failed.is_empty() {
            let mut state = self.lock();
            state.sealed.extend(failed);
            state.directory_changed = true;
        } else if deleted > 0 {
            self.lock().directory_changed = true;
        }
        match error {
            Some(e) => Err(StoreError::backend("pruning the jti journal", e)),
            None => Ok(deleted),
        }
    }
}

/// Flushes `journal` every [`SYNC_EVERY`] on a blocking thread, until it is dropped (or
/// there is no runtime to run on: then appends are flushed by the kernel's writeback).
fn spawn_flusher(journal: Weak<JtiJournal>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut every = tokio::time::interval(SYNC_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(journal) = journal.upgrade() else { return };
            if tokio::task::spawn_blocking(move || journal.flush()).await.is_err() {
                return;
            }
        }
    });
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("segment-{number:016}.log"))
}

fn segment_number(file_name: &str) -> Option<u64> {
    file_name.strip_prefix("segment-")?.strip_suffix(".log")?.parse().ok()
}

/// Creates the first free segment from `number` on (a segment is never reopened for
/// writing: see the module doc).
fn create_segment(dir: &Path, mut number: u64, now: UnixTime) -> io::Result<Current> {
    loop {
        match OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(segment_path(dir, number))
        {
            Ok(file) => {
                return Ok(Current {
                    file: Arc::new(file),
                    number,
                    started: now.as_secs(),
                    latest_expiry: 0,
                    written: 0,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => number += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The journal's segments, by number.
fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(number) = segment_number(&entry.file_name().to_string_lossy()) {
            segments.push((number, entry.path()));
        }
    }
    segments.sort();
    Ok(segments)
}

/// Reads every segment back into `live` (the keys still live at `now`) on `parts` threads
/// (at open, one per core, at most [`RESTORE_THREADS`]): each reads every segment (from
/// the page cache after the first) and restores the keys of its own part of the set, so
/// that the hash-table inserts, which wait on memory, overlap (a full set of 12 million
/// keys took 5.5 s on one thread and 3.6–4 s on two, docs/benchmarks.md). A part whose
/// thread cannot be spawned is read on the calling thread. Answers each segment's latest
/// expiry. Any reader's error fails the whole read back.
fn read_back(segments: &[(u64, PathBuf)], live: &LiveJtis, now: UnixTime, parts: usize) -> io::Result<Vec<u64>> {
    let parts = parts.max(1);
    let read_part = move |part: usize| {
        let mine = |digest: &Digest| LiveJtis::part_of(digest, parts) == part;
        segments
            .iter()
            .map(|(_, path)| read_segment(path, live, now, mine))
            .collect::<io::Result<Vec<u64>>>()
    };
    std::thread::scope(|scope| {
        let mut readers = Vec::with_capacity(parts);
        let mut unspawned = Vec::new();
        for part in 0..parts {
            match std::thread::Builder::new()
                .name("jti-journal-reader".into())
                .spawn_scoped(scope, move || read_part(part))
            {
                Ok(reader) => readers.push(reader),
                // No thread to spare (a thread limit): this thread reads that part itself.
                Err(_) => unspawned.push(part),
            }
        }
        let mut results: Vec<io::Result<Vec<u64>>> = unspawned.into_iter().map(read_part).collect();
        // Every reader is joined before any result is looked at (one that panicked and was
        // left unjoined would make the scope panic).
        for reader in readers {
            results.push(
                reader
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("a jti journal reader panicked"))),
            );
        }
        let mut latest = Vec::new();
        for result in results {
            // Every part sees every record, so all answer the same latest expiries.
            latest = result?;
        }
        Ok(latest)
    })
}

/// Reads a segment's records into `live` (those still live at `now` for which `mine`
/// holds); answers the latest expiry in it. Trailing bytes short of a record (a write torn
/// by a crash) are skipped.
fn read_segment(path: &Path, live: &LiveJtis, now: UnixTime, mine: impl Fn(&Digest) -> bool) -> io::Result<u64> {
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut record = [0u8; RECORD];
    let mut latest = 0;
    loop {
        match reader.read_exact(&mut record) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(latest),
            Err(e) => return Err(e),
        }
        let (digest, expiry) = record.split_at(16);
        let mut d: Digest = [0; 16];
        d.copy_from_slice(digest);
        let mut e = [0u8; 8];
        e.copy_from_slice(expiry);
        let expiry = u64::from_le_bytes(e);
        latest = latest.max(expiry);
        if expiry >= now.as_secs() && mine(&d) {
            live.restore_digest(d, expiry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> LiveJtis {
        LiveJtis::new(lanyard_crypto::provider(), 1 << 16)
    }

    fn keys(names: &[&str], expires_at: u64) -> Vec<(String, UnixTime)> {
        names.iter().map(|n| ((*n).to_owned(), UnixTime(expires_at))).collect()
    }

    /// Claims `names` in `live` and appends the claim to `journal`, as the store does.
    fn record(live: &LiveJtis, journal: &JtiJournal, names: &[&str], expires_at: u64, now: u64) -> Vec<bool> {
        let (fresh, claim) = live.claim(&keys(names, expires_at), UnixTime(now)).unwrap();
        journal.append(claim.records(), UnixTime(now)).unwrap();
        fresh
    }

    /// A journal in a new temporary directory, opened at `now` into a new set.
    fn fresh(now: u64) -> (tempfile::TempDir, PathBuf, LiveJtis, Arc<JtiJournal>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.jtis");
        let set = live();
        let journal = JtiJournal::open(&path, &set, UnixTime(now)).unwrap();
        (dir, path, set, journal)
    }

    fn segments(dir: &Path) -> usize {
        fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn keys_survive_a_reopen_and_a_torn_tail_is_skipped() {
        let (_dir, path, first, journal) = fresh(10);
        assert_eq!(record(&first, &journal, &["a", "b"], 500, 10), [true, true]);
        assert_eq!(record(&first, &journal, &["c"], 20, 11), [true]);
        drop(journal);
        // A crash in the middle of a write leaves part of a record at the end.
        let segment = segment_path(&path, 1);
        OpenOptions::new()
            .append(true)
            .open(&segment)
            .unwrap()
            .write_all(&[7; 10])
            .unwrap();

        let second = live();
        let journal = JtiJournal::open(&path, &second, UnixTime(30)).unwrap();
        // "a" and "b" are still replays; "c" expired at 20 and was not read back.
        assert_eq!(
            record(&second, &journal, &["a", "b", "c"], 600, 30),
            [false, false, true]
        );
        assert_eq!(segments(&path), 2, "each process appends to a segment of its own");
        drop(journal);
        let third = live();
        JtiJournal::open(&path, &third, UnixTime(40)).unwrap();
        assert_eq!(third.claim(&keys(&["c"], 700), UnixTime(40)).unwrap().0, [false]);
    }

    #[test]
    fn several_readers_restore_every_live_key_once() {
        let (_dir, path, first, journal) = fresh(10);
        let names: Vec<String> = (0..3000).map(|i| format!("key-{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert!(record(&first, &journal, &names, 500, 10).iter().all(|fresh| *fresh));
        assert_eq!(record(&first, &journal, &["short", "twice"], 20, 11), [true, true]);
        // A second segment, a minute later, in which "twice" (expired by then) is used again.
        let later = 10 + SEGMENT_SECS;
        assert_eq!(record(&first, &journal, &["late", "twice"], 900, later), [true, true]);
        drop(journal);
        let segments = list_segments(&path).unwrap();
        assert_eq!(segments.len(), 2);
        for parts in 1..=RESTORE_THREADS + 1 {
            // Read back at 15, when both records of "twice" are live: the later expiry wins.
            let set = live();
            let latest = read_back(&segments, &set, UnixTime(15), parts).unwrap();
            assert_eq!(latest, [500, 900], "{parts} readers");
            assert_eq!(set.len(), names.len() + 3, "{parts} readers: every live key once");
            let (fresh, _) = set.claim(&keys(&names, 600), UnixTime(100)).unwrap();
            assert!(fresh.iter().all(|fresh| !fresh), "{parts} readers");
            let (fresh, _) = set
                .claim(&keys(&["late", "twice", "short"], 950), UnixTime(100))
                .unwrap();
            assert_eq!(fresh, [false, false, true], "{parts} readers");
        }
        // A segment that cannot be read fails the read back, whichever reader meets it.
        let unreadable = path.join("segment-0000000000000009.log");
        fs::create_dir(&unreadable).unwrap();
        let segments = list_segments(&path).unwrap();
        for parts in 1..=RESTORE_THREADS + 1 {
            assert!(
                read_back(&segments, &live(), UnixTime(15), parts).is_err(),
                "{parts} readers"
            );
        }
    }

    #[test]
    fn segments_rotate_and_are_deleted_once_their_keys_expire() {
        let (_dir, path, set, journal) = fresh(1000);
        record(&set, &journal, &["early"], 1100, 1000);
        record(&set, &journal, &["later"], 2000, 1000 + SEGMENT_SECS);
        assert_eq!(segments(&path), 2);
        // The first segment's keys expire at 1100: gone after that, not before.
        assert_eq!(journal.prune(UnixTime(1100)).unwrap(), 0);
        assert_eq!(journal.prune(UnixTime(1101)).unwrap(), 1);
        assert_eq!(segments(&path), 1);
        // At open, a segment whose keys have all expired is deleted at once.
        drop(journal);
        let reopened = live();
        let journal = JtiJournal::open(&path, &reopened, UnixTime(2001)).unwrap();
        assert_eq!(segments(&path), 1, "only the new, empty segment");
        assert_eq!(journal.prune(UnixTime(2001)).unwrap(), 0);
        assert_eq!(reopened.len(), 0);
    }

    /// After a failed write (simulated: a torn record at the end of the segment, and the
    /// flag the write error sets), the next append starts a new segment, so every record
    /// after the failure is read back whole.
    #[test]
    fn after_a_failed_write_the_next_append_starts_a_new_segment() {
        let (_dir, path, set, journal) = fresh(10);
        record(&set, &journal, &["before"], 500, 10);
        {
            let mut state = journal.lock();
            (&*state.current.file).write_all(&[9; 7]).unwrap();
            state.must_rotate = true;
        }
        record(&set, &journal, &["after"], 500, 11);
        assert_eq!(segments(&path), 2);
        drop(journal);
        let reopened = live();
        JtiJournal::open(&path, &reopened, UnixTime(12)).unwrap();
        assert_eq!(
            reopened
                .claim(&keys(&["before", "after"], 600), UnixTime(12))
                .unwrap()
                .0,
            [false, false]
        );
    }

    /// The flusher task flushes what was written and stops when the journal is dropped.
    #[tokio::test]
    async fn the_flusher_flushes_and_stops_with_the_journal() {
        let (_dir, _path, set, journal) = fresh(10);
        record(&set, &journal, &["a"], 500, 10);
        assert_eq!(journal.lock().unflushed.len(), 1);
        let poll = Duration::from_millis(100);
        for _ in 0..30 {
            tokio::time::sleep(poll).await;
            if journal.lock().unflushed.is_empty() {
                break;
            }
        }
        assert!(journal.lock().unflushed.is_empty(), "not flushed within 3 s");
        let weak = Arc::downgrade(&journal);
        drop(journal);
        for _ in 0..30 {
            tokio::time::sleep(poll).await;
            if weak.upgrade().is_none() {
                break;
            }
        }
        assert!(weak.upgrade().is_none(), "the flusher keeps the journal alive");
    }

    #[test]
    fn an_empty_append_writes_nothing() {
        let (_dir, path, _set, journal) = fresh(10);
        journal.append(std::iter::empty(), UnixTime(10)).unwrap();
        assert_eq!(fs::metadata(segment_path(&path, 1)).unwrap().len(), 0);
    }
}
