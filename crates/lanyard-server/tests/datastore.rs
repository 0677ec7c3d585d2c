//! The datastore conformance suite: one set of cases, each an async fn over a
//! `dyn DataStore`, run against SQLite (a fresh file per case) and, when
//! `LANYARD_TEST_DATABASE_URL` names a PostgreSQL server (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`), against PostgreSQL (a fresh
//! `lanyard_test_<random>` database per case, dropped afterwards). Without that variable
//! the PostgreSQL half prints a skip line, unless `LANYARD_REQUIRE_POSTGRES=1`, which
//! makes it fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, Connection, Executor};

use lanyard_core::{SpiffeId, UnixTime, WorkloadId};
use lanyard_server::datastore::{DataStore, EntryEvent, EntryFilter, SqlDataStore, StoreError, TokenUse};
use lanyard_server::model::{Agent, Authority, AuthorityKind, AuthorityStatus, Entry, EntrySpec, Selector};

type Store = Arc<dyn DataStore>;

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
    }
}

fn token_hash(token: &str) -> String {
    lanyard_crypto::provider()
        .sha256(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn assert_matches_spec(entry: &Entry, spec: &EntrySpec) {
    assert_eq!(entry.spiffe_id, spec.spiffe_id);
    assert_eq!(entry.parent_id, spec.parent_id);
    assert_eq!(entry.selectors, spec.selectors);
    assert_eq!(entry.x509_svid_ttl, spec.x509_svid_ttl);
    assert_eq!(entry.jwt_svid_ttl, spec.jwt_svid_ttl);
    assert_eq!(entry.wit_ttl, spec.wit_ttl);
    assert_eq!(entry.dns_names, spec.dns_names);
    assert_eq!(entry.federates_with, spec.federates_with);
    assert_eq!(entry.admin, spec.admin);
}

fn ids(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| e.id.clone()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn all_events(store: &dyn DataStore) -> Vec<EntryEvent> {
    store.entry_events_since(0, 10_000).await.unwrap()
}

// ---- entries ----

async fn entry_crud(store: Store) {
    let store = &*store;
    let mut s = spec("spiffe://example.org/web", PARENT_A, &["unix:uid:1000", "unix:gid:50"]);
    s.x509_svid_ttl = 3600;
    s.jwt_svid_ttl = 300;
    s.wit_ttl = 600;
    s.dns_names = vec!["web.example.org".into()];
    s.federates_with = vec!["partner.example".into()];
    s.admin = true;

    let created = store.create_entry(&s, NOW).await.unwrap();
    assert_eq!(created.id.len(), 32, "16 random bytes, hex");
    assert!(created.id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(created.revision, 1);
    assert_eq!(created.created_at, NOW);
    assert_matches_spec(&created, &s);
    assert_eq!(store.get_entry(&created.id).await.unwrap(), Some(created.clone()));
    assert_eq!(store.get_entry("no-such-entry").await.unwrap(), None);

    // A WIMSE identity, and a second entry with a different ID.
    let wimse = spec("wimse://example.org/ns/prod/svc", PARENT_A, &["k8s:ns:prod"]);
    let other = store.create_entry(&wimse, NOW).await.unwrap();
    assert_ne!(other.id, created.id);
    assert_matches_spec(&store.get_entry(&other.id).await.unwrap().unwrap(), &wimse);

    // Unconditional update: every field replaced, revision bumped, created_at kept.
    let mut s2 = spec("spiffe://example.org/web2", PARENT_B, &["unix:uid:1001"]);
    s2.x509_svid_ttl = 60;
    s2.dns_names = vec!["a.example".into(), "b.example".into()];
    let updated = store.update_entry(&created.id, &s2, None).await.unwrap();
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.revision, 2);
    assert_eq!(updated.created_at, NOW);
    assert_matches_spec(&updated, &s2);
    assert_eq!(store.get_entry(&created.id).await.unwrap(), Some(updated.clone()));

    // Conditional update at the current revision.
    s2.admin = true;
    let updated3 = store.update_entry(&created.id, &s2, Some(2)).await.unwrap();
    assert_eq!(updated3.revision, 3);

    // A stale revision is a conflict and changes nothing.
    s2.wit_ttl = 999;
    let err = store.update_entry(&created.id, &s2, Some(2)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.get_entry(&created.id).await.unwrap(), Some(updated3.clone()));

    // Missing entries.
    let err = store.update_entry("no-such-entry", &s2, None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store.update_entry("no-such-entry", &s2, Some(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    // Invalid input.
    let empty = spec("spiffe://example.org/x", PARENT_A, &[]);
    let err = store.create_entry(&empty, NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let err = store.update_entry(&created.id, &empty, None).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let mut huge = spec("spiffe://example.org/x", PARENT_A, &["unix:uid:1"]);
    huge.x509_svid_ttl = u64::MAX;
    let err = store.create_entry(&huge, NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");

    // Delete.
    assert!(store.delete_entry(&created.id).await.unwrap());
    assert_eq!(store.get_entry(&created.id).await.unwrap(), None);
    assert!(!store.delete_entry(&created.id).await.unwrap());
    let err = store.update_entry(&created.id, &s2, None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(
        ids(&store.list_entries(&EntryFilter::default()).await.unwrap()),
        vec![other.id]
    );
}

async fn entry_duplicates(store: Store) {
    let store = &*store;
    let a = spec("spiffe://example.org/web", PARENT_A, &["unix:uid:1000", "unix:gid:50"]);
    let first = store.create_entry(&a, NOW).await.unwrap();

    // Same identity, parent and selector set (in another order, or repeated): duplicate,
    // whatever the other fields say.
    let mut reordered = spec("spiffe://example.org/web", PARENT_A, &["unix:gid:50", "unix:uid:1000"]);
    reordered.x509_svid_ttl = 42;
    reordered.admin = true;
    let err = store.create_entry(&reordered, NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    let repeated = spec(
        "spiffe://example.org/web",
        PARENT_A,
        &["unix:gid:50", "unix:uid:1000", "unix:gid:50"],
    );
    let err = store.create_entry(&repeated, NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");

    // Any one of the three differing: not a duplicate.
    let subset = spec("spiffe://example.org/web", PARENT_A, &["unix:uid:1000"]);
    let other_parent = spec("spiffe://example.org/web", PARENT_B, &["unix:uid:1000", "unix:gid:50"]);
    let other_identity = spec("spiffe://example.org/api", PARENT_A, &["unix:uid:1000", "unix:gid:50"]);
    // A selector whose value holds the separator must not collide with a split one.
    let tricky = spec("spiffe://example.org/web", PARENT_A, &["unix:uid:1000:unix:gid:50"]);
    let mut created = vec![first.id.clone()];
    for s in [&subset, &other_parent, &other_identity, &tricky] {
        created.push(store.create_entry(s, NOW).await.unwrap().id);
    }
    assert_eq!(
        ids(&store.list_entries(&EntryFilter::default()).await.unwrap()),
        sorted(created.clone())
    );

    // Updating an entry into a duplicate of another is rejected and changes nothing.
    let subset_entry = store.get_entry(&created[1]).await.unwrap().unwrap();
    let err = store
        .update_entry(&subset_entry.id, &reordered, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    assert_eq!(store.get_entry(&subset_entry.id).await.unwrap(), Some(subset_entry));

    // Updating an entry to itself (same key) is fine.
    let same = store.update_entry(&first.id, &reordered, Some(1)).await.unwrap();
    assert_eq!(same.revision, 2);

    // Once deleted, the same entry can be created again.
    assert!(store.delete_entry(&first.id).await.unwrap());
    let again = store.create_entry(&a, NOW).await.unwrap();
    assert_ne!(again.id, first.id);
    assert_eq!(again.revision, 1);
}

async fn entry_bulk_all_or_none(store: Store) {
    let store = &*store;
    assert_eq!(store.create_entries(&[], NOW).await.unwrap(), Vec::<Entry>::new());

    let batch = vec![
        spec("spiffe://example.org/a", PARENT_A, &["unix:uid:1"]),
        spec("spiffe://example.org/b", PARENT_A, &["unix:uid:2"]),
        spec("spiffe://example.org/c", PARENT_B, &["unix:uid:3"]),
    ];
    let created = store.create_entries(&batch, NOW).await.unwrap();
    assert_eq!(created.len(), 3);
    for (entry, s) in created.iter().zip(&batch) {
        assert_matches_spec(entry, s);
        assert_eq!(entry.revision, 1);
        assert_eq!(store.get_entry(&entry.id).await.unwrap().as_ref(), Some(entry));
    }
    assert_eq!(ids(&created).into_iter().collect::<BTreeSet<_>>().len(), 3);
    let before = store.list_entries(&EntryFilter::default()).await.unwrap();
    let events_before = store.latest_entry_event().await.unwrap();
    assert_eq!(all_events(store).await.len(), 3);

    // A duplicate of an existing entry late in the batch rolls back the earlier ones.
    let clash_existing = vec![
        spec("spiffe://example.org/d", PARENT_A, &["unix:uid:4"]),
        spec("spiffe://example.org/e", PARENT_A, &["unix:uid:5"]),
        spec("spiffe://example.org/a", PARENT_A, &["unix:uid:1"]),
    ];
    let err = store.create_entries(&clash_existing, NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");

    // A duplicate inside the batch itself, likewise.
    let clash_inside = vec![
        spec("spiffe://example.org/f", PARENT_A, &["unix:uid:6"]),
        spec("spiffe://example.org/g", PARENT_A, &["unix:uid:7"]),
        spec("spiffe://example.org/f", PARENT_A, &["unix:uid:6"]),
    ];
    let err = store.create_entries(&clash_inside, NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");

    // An invalid member, likewise.
    let invalid = vec![
        spec("spiffe://example.org/h", PARENT_A, &["unix:uid:8"]),
        spec("spiffe://example.org/i", PARENT_A, &[]),
    ];
    let err = store.create_entries(&invalid, NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");

    assert_eq!(store.list_entries(&EntryFilter::default()).await.unwrap(), before);
    assert_eq!(store.latest_entry_event().await.unwrap(), events_before);
    assert_eq!(all_events(store).await.len(), 3, "a rolled-back batch logs nothing");

    // The entries a failed batch tried to create are still free.
    let retry = store.create_entries(&clash_existing[..2], NOW).await.unwrap();
    assert_eq!(retry.len(), 2);
}

async fn entry_list_filters(store: Store) {
    let store = &*store;
    let e1 = store
        .create_entry(&spec("spiffe://example.org/web", PARENT_A, &["unix:uid:1"]), NOW)
        .await
        .unwrap();
    let e2 = store
        .create_entry(&spec("spiffe://example.org/web", PARENT_B, &["unix:uid:1"]), NOW)
        .await
        .unwrap();
    let e3 = store
        .create_entry(&spec("spiffe://example.org/db", PARENT_A, &["unix:uid:2"]), NOW)
        .await
        .unwrap();
    let e4 = store
        .create_entry(&spec("wimse://example.org/web", PARENT_A, &["unix:uid:3"]), NOW)
        .await
        .unwrap();

    let all = store.list_entries(&EntryFilter::default()).await.unwrap();
    assert_eq!(
        ids(&all),
        sorted(vec![e1.id.clone(), e2.id.clone(), e3.id.clone(), e4.id.clone()]),
        "ordered by ID"
    );
    assert_eq!(all.iter().find(|e| e.id == e2.id), Some(&e2));

    let by_parent = |p: &str| EntryFilter {
        parent_id: Some(sid(p)),
        spiffe_id: None,
    };
    let by_identity = |s: &str| EntryFilter {
        parent_id: None,
        spiffe_id: Some(s.into()),
    };
    let list = |f: EntryFilter| async move { ids(&store.list_entries(&f).await.unwrap()) };

    assert_eq!(
        list(by_parent(PARENT_A)).await,
        sorted(vec![e1.id.clone(), e3.id.clone(), e4.id.clone()])
    );
    assert_eq!(list(by_parent(PARENT_B)).await, vec![e2.id.clone()]);
    assert_eq!(list(by_parent(PARENT_C)).await, Vec::<String>::new());
    assert_eq!(
        list(by_identity("spiffe://example.org/web")).await,
        sorted(vec![e1.id.clone(), e2.id.clone()])
    );
    assert_eq!(list(by_identity("wimse://example.org/web")).await, vec![e4.id.clone()]);
    assert_eq!(
        list(by_identity("spiffe://example.org/none")).await,
        Vec::<String>::new()
    );
    let both = EntryFilter {
        parent_id: Some(sid(PARENT_B)),
        spiffe_id: Some("spiffe://example.org/web".into()),
    };
    assert_eq!(list(both).await, vec![e2.id.clone()]);
    let both_none = EntryFilter {
        parent_id: Some(sid(PARENT_B)),
        spiffe_id: Some("spiffe://example.org/db".into()),
    };
    assert_eq!(list(both_none).await, Vec::<String>::new());

    // Filters see updates.
    store
        .update_entry(
            &e3.id,
            &spec("spiffe://example.org/db", PARENT_B, &["unix:uid:2"]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        list(by_parent(PARENT_B)).await,
        sorted(vec![e2.id.clone(), e3.id.clone()])
    );
}

async fn entry_event_log(store: Store) {
    let store = &*store;
    assert_eq!(store.latest_entry_event().await.unwrap(), 0);
    assert_eq!(all_events(store).await, Vec::new());

    let e1 = store
        .create_entry(&spec("spiffe://example.org/one", PARENT_A, &["unix:uid:1"]), NOW)
        .await
        .unwrap();
    let e2 = store
        .create_entry(&spec("spiffe://example.org/two", PARENT_B, &["unix:uid:2"]), NOW)
        .await
        .unwrap();
    // Update in place, then move e2 to another parent, then delete e1.
    store
        .update_entry(
            &e1.id,
            &spec("spiffe://example.org/one", PARENT_A, &["unix:uid:11"]),
            None,
        )
        .await
        .unwrap();
    store
        .update_entry(
            &e2.id,
            &spec("spiffe://example.org/two", PARENT_C, &["unix:uid:2"]),
            Some(1),
        )
        .await
        .unwrap();
    assert!(store.delete_entry(&e1.id).await.unwrap());

    // Failures log nothing.
    let dup = store
        .create_entry(&spec("spiffe://example.org/two", PARENT_C, &["unix:uid:2"]), NOW)
        .await;
    assert!(matches!(dup, Err(StoreError::AlreadyExists(_))));
    let stale = store
        .update_entry(
            &e2.id,
            &spec("spiffe://example.org/two", PARENT_A, &["unix:uid:2"]),
            Some(1),
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))));
    assert!(!store.delete_entry(&e1.id).await.unwrap());
    assert!(matches!(
        store
            .update_entry(
                &e1.id,
                &spec("spiffe://example.org/one", PARENT_A, &["unix:uid:1"]),
                None
            )
            .await,
        Err(StoreError::NotFound(_))
    ));

    let events = all_events(store).await;
    let summary: Vec<(String, &str, bool)> = events
        .iter()
        .map(|e| (e.entry_id.clone(), e.parent_id.as_str(), e.deleted))
        .collect();
    assert_eq!(
        summary,
        vec![
            (e1.id.clone(), PARENT_A, false),
            (e2.id.clone(), PARENT_B, false),
            (e1.id.clone(), PARENT_A, false),
            // A move: gone for the old parent, then present for the new one.
            (e2.id.clone(), PARENT_B, true),
            (e2.id.clone(), PARENT_C, false),
            (e1.id.clone(), PARENT_A, true),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq), "seq increases");
    assert!(events[0].seq >= 1);
    let last = events.last().unwrap().seq;
    assert_eq!(store.latest_entry_event().await.unwrap(), last);

    // Paging.
    let page1 = store.entry_events_since(0, 2).await.unwrap();
    assert_eq!(page1, events[..2]);
    let page2 = store.entry_events_since(page1[1].seq, 3).await.unwrap();
    assert_eq!(page2, events[2..5]);
    let page3 = store.entry_events_since(page2[2].seq, 100).await.unwrap();
    assert_eq!(page3, events[5..]);
    assert_eq!(store.entry_events_since(last, 100).await.unwrap(), Vec::new());
    assert_eq!(store.entry_events_since(u64::MAX, 100).await.unwrap(), Vec::new());
    assert_eq!(store.entry_events_since(0, 0).await.unwrap(), Vec::new());

    // A bulk create logs one event per entry, in order.
    let batch = store
        .create_entries(
            &[
                spec("spiffe://example.org/b1", PARENT_A, &["unix:uid:21"]),
                spec("spiffe://example.org/b2", PARENT_B, &["unix:uid:22"]),
            ],
            NOW,
        )
        .await
        .unwrap();
    let tail = store.entry_events_since(last, 100).await.unwrap();
    assert_eq!(tail.len(), 2);
    assert_eq!(tail[0].entry_id, batch[0].id);
    assert_eq!(tail[0].parent_id, PARENT_A);
    assert_eq!(tail[1].entry_id, batch[1].id);
    assert_eq!(tail[1].parent_id, PARENT_B);
    assert!(!tail[0].deleted && !tail[1].deleted);
    assert!(tail[0].seq > last && tail[1].seq > tail[0].seq);
}

async fn entry_concurrent_creates(store: Store) {
    let s = spec(
        "spiffe://example.org/race",
        PARENT_A,
        &["unix:uid:1000", "unix:gid:1000"],
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8u64 {
        let store = Arc::clone(&store);
        let mut s = s.clone();
        s.x509_svid_ttl = i; // same key, different payloads
        if i % 2 == 1 {
            s.selectors.reverse();
        }
        tasks.spawn(async move { store.create_entry(&s, NOW).await });
    }
    let mut won = Vec::new();
    let mut lost = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(entry) => won.push(entry),
            Err(StoreError::AlreadyExists(_)) => lost += 1,
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one create wins");
    assert_eq!(lost, 7);
    let all = store.list_entries(&EntryFilter::default()).await.unwrap();
    assert_eq!(all, won);
    let events = all_events(&*store).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].entry_id, won[0].id);
}

// ---- join tokens ----

async fn join_tokens(store: Store) {
    let store = &*store;
    let valid = token_hash("valid-token");
    store.create_join_token(&valid, NOW.plus(600)).await.unwrap();
    let err = store.create_join_token(&valid, NOW.plus(60)).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    assert_eq!(store.consume_join_token(&valid, NOW).await.unwrap(), TokenUse::Consumed);
    assert_eq!(store.consume_join_token(&valid, NOW).await.unwrap(), TokenUse::Unknown);
    assert_eq!(
        store
            .consume_join_token(&token_hash("never-issued"), NOW)
            .await
            .unwrap(),
        TokenUse::Unknown
    );

    // Expired: reported once, and removed.
    let expired = token_hash("expired-token");
    store.create_join_token(&expired, NOW.minus(1)).await.unwrap();
    assert_eq!(
        store.consume_join_token(&expired, NOW).await.unwrap(),
        TokenUse::Expired
    );
    assert_eq!(
        store.consume_join_token(&expired, NOW).await.unwrap(),
        TokenUse::Unknown
    );

    // Valid until `expires_at`, not at it.
    let edge = token_hash("edge-token");
    store.create_join_token(&edge, NOW).await.unwrap();
    assert_eq!(store.consume_join_token(&edge, NOW).await.unwrap(), TokenUse::Expired);
    let edge2 = token_hash("edge-token-2");
    store.create_join_token(&edge2, NOW.plus(1)).await.unwrap();
    assert_eq!(store.consume_join_token(&edge2, NOW).await.unwrap(), TokenUse::Consumed);

    // A used-up token's hash may be issued again.
    store.create_join_token(&valid, NOW.plus(600)).await.unwrap();
    assert_eq!(store.consume_join_token(&valid, NOW).await.unwrap(), TokenUse::Consumed);

    // Raw tokens are refused: only hashes are stored.
    let err = store
        .create_join_token("raw-secret-token", NOW.plus(600))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(
        !format!("{err}").contains("raw-secret-token"),
        "no secret in the message"
    );
    let err = store.consume_join_token("raw-secret-token", NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

async fn join_token_concurrent_consume(store: Store) {
    let hash = token_hash("contended-token");
    store.create_join_token(&hash, NOW.plus(600)).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = Arc::clone(&store);
        let hash = hash.clone();
        tasks.spawn(async move { store.consume_join_token(&hash, NOW).await });
    }
    let mut consumed = 0;
    let mut unknown = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap().unwrap() {
            TokenUse::Consumed => consumed += 1,
            TokenUse::Unknown => unknown += 1,
            TokenUse::Expired => panic!("not expired"),
        }
    }
    assert_eq!((consumed, unknown), (1, 19), "exactly one use");
}

// ---- agents ----

fn agent(id: &str, serial: &str) -> Agent {
    Agent {
        id: sid(id),
        attestation_type: "join_token".into(),
        svid_serial: serial.into(),
        previous_svid_serial: String::new(),
        svid_expires_at: NOW.plus(3600),
        selectors: vec![selector("join_token:abc"), selector("unix:uid:0")],
        banned: false,
        created_at: NOW,
    }
}

async fn agents(store: Store) {
    let store = &*store;
    assert_eq!(store.list_agents().await.unwrap(), Vec::new());
    assert_eq!(store.get_agent(&sid(PARENT_A)).await.unwrap(), None);

    let b = agent(PARENT_B, "02");
    let a = agent(PARENT_A, "01");
    store.upsert_agent(&b).await.unwrap();
    store.upsert_agent(&a).await.unwrap();
    assert_eq!(store.get_agent(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.list_agents().await.unwrap(),
        vec![a.clone(), b.clone()],
        "ordered by ID"
    );

    // Re-attestation replaces the fields, but keeps the first `created_at`.
    let mut a2 = a.clone();
    a2.attestation_type = "x509pop".into();
    a2.svid_serial = "03".into();
    a2.previous_svid_serial = "01".into();
    a2.svid_expires_at = NOW.plus(7200);
    a2.selectors = vec![selector("x509pop:subject:cn:node-a")];
    a2.created_at = NOW.plus(100);
    store.upsert_agent(&a2).await.unwrap();
    let stored = store.get_agent(&a.id).await.unwrap().unwrap();
    assert_eq!(
        stored,
        Agent {
            created_at: NOW,
            ..a2.clone()
        }
    );

    // The previous serial's grace ends only while the current serial is the one named.
    store.clear_previous_svid_serial(&a.id, "02").await.unwrap();
    assert_eq!(
        store.get_agent(&a.id).await.unwrap().unwrap().previous_svid_serial,
        "01"
    );
    store.clear_previous_svid_serial(&a.id, "03").await.unwrap();
    assert_eq!(store.get_agent(&a.id).await.unwrap().unwrap().previous_svid_serial, "");
    store.upsert_agent(&a2).await.unwrap();

    // Ban.
    assert!(store.ban_agent(&a.id).await.unwrap());
    assert!(store.get_agent(&a.id).await.unwrap().unwrap().banned);
    assert!(store.ban_agent(&a.id).await.unwrap(), "banning twice still finds it");
    assert!(!store.ban_agent(&sid(PARENT_C)).await.unwrap());
    assert_eq!(store.get_agent(&sid(PARENT_C)).await.unwrap(), None);
    assert!(!store.get_agent(&b.id).await.unwrap().unwrap().banned);

    // An upsert (say a re-attestation that raced the ban) does not lift a ban.
    store.upsert_agent(&a2).await.unwrap();
    assert!(store.get_agent(&a.id).await.unwrap().unwrap().banned);

    // An agent stored banned is banned.
    let c = Agent {
        banned: true,
        ..agent(PARENT_C, "04")
    };
    store.upsert_agent(&c).await.unwrap();
    assert_eq!(store.get_agent(&c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(store.list_agents().await.unwrap().len(), 3);
}

// ---- authorities ----

fn authority(id: &str, kind: AuthorityKind, status: AuthorityStatus, not_before: u64) -> Authority {
    Authority {
        id: id.into(),
        kind,
        status,
        public: format!("public-{id}").into_bytes(),
        private_key: vec![0, 1, 2, 255, id.len() as u8],
        not_before: UnixTime(not_before),
        not_after: UnixTime(not_before + 86_400),
    }
}

async fn authorities(store: Store) {
    let store = &*store;
    assert_eq!(store.list_authorities(None).await.unwrap(), Vec::new());

    let ca = authority("ca-1", AuthorityKind::X509, AuthorityStatus::Active, 1_000);
    let jwt_new = authority("jwt-2", AuthorityKind::Jwt, AuthorityStatus::Prepared, 3_000);
    let jwt_old = authority("jwt-1", AuthorityKind::Jwt, AuthorityStatus::Active, 2_000);
    let wit = authority("wit-1", AuthorityKind::Wit, AuthorityStatus::Active, 1_500);
    for a in [&jwt_new, &ca, &wit, &jwt_old] {
        store.put_authority(a).await.unwrap();
    }

    assert_eq!(
        store.list_authorities(None).await.unwrap(),
        vec![ca.clone(), wit.clone(), jwt_old.clone(), jwt_new.clone()],
        "ordered by not_before"
    );
    assert_eq!(
        store.list_authorities(Some(AuthorityKind::Jwt)).await.unwrap(),
        vec![jwt_old.clone(), jwt_new.clone()]
    );
    assert_eq!(
        store.list_authorities(Some(AuthorityKind::X509)).await.unwrap(),
        vec![ca.clone()]
    );
    assert_eq!(
        store.list_authorities(Some(AuthorityKind::Wit)).await.unwrap(),
        vec![wit.clone()]
    );

    // Rotation: prepared -> active, active -> old with a new not_after; a re-encrypted
    // private key may be written too.
    let jwt_new_active = Authority {
        status: AuthorityStatus::Active,
        ..jwt_new.clone()
    };
    let jwt_old_retired = Authority {
        status: AuthorityStatus::Old,
        not_after: UnixTime(9_999),
        private_key: vec![9, 9, 9],
        ..jwt_old.clone()
    };
    store.put_authority(&jwt_new_active).await.unwrap();
    store.put_authority(&jwt_old_retired).await.unwrap();
    assert_eq!(
        store.list_authorities(Some(AuthorityKind::Jwt)).await.unwrap(),
        vec![jwt_old_retired.clone(), jwt_new_active.clone()]
    );

    // The key material behind an ID cannot be swapped.
    let swapped = Authority {
        public: b"another key".to_vec(),
        ..jwt_new_active.clone()
    };
    let err = store.put_authority(&swapped).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let rekinded = Authority {
        kind: AuthorityKind::Wit,
        ..jwt_new_active.clone()
    };
    let err = store.put_authority(&rekinded).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store.list_authorities(Some(AuthorityKind::Jwt)).await.unwrap(),
        vec![jwt_old_retired.clone(), jwt_new_active.clone()]
    );

    // Delete.
    assert!(store.delete_authority("jwt-1").await.unwrap());
    assert!(!store.delete_authority("jwt-1").await.unwrap());
    assert!(!store.delete_authority("no-such-authority").await.unwrap());
    assert_eq!(
        store.list_authorities(None).await.unwrap(),
        vec![ca, wit, jwt_new_active]
    );
}

// ---- bundle sequence ----

async fn bundle_sequence(store: Store) {
    assert_eq!(store.bundle_sequence().await.unwrap(), 0);
    assert_eq!(store.bump_bundle_sequence().await.unwrap(), 1);
    assert_eq!(store.bundle_sequence().await.unwrap(), 1);
    assert_eq!(store.bump_bundle_sequence().await.unwrap(), 2);

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let store = Arc::clone(&store);
        tasks.spawn(async move { store.bump_bundle_sequence().await });
    }
    let mut seen = BTreeSet::new();
    while let Some(result) = tasks.join_next().await {
        assert!(seen.insert(result.unwrap().unwrap()), "every bump returns a new value");
    }
    assert_eq!(seen, (3..=12).collect::<BTreeSet<u64>>());
    assert_eq!(store.bundle_sequence().await.unwrap(), 12);
}

// ---- federated bundles ----

async fn federated_bundles(store: Store) {
    let store = &*store;
    assert_eq!(store.get_federated_bundle("partner.example").await.unwrap(), None);
    assert_eq!(store.list_federated_bundles().await.unwrap(), Vec::<String>::new());

    let doc1 = r#"{"keys":[],"spiffe_sequence":1}"#;
    let doc2 = r#"{"keys":[{"kty":"EC"}],"spiffe_sequence":2}"#;
    store.put_federated_bundle("partner.example", doc1, NOW).await.unwrap();
    store.put_federated_bundle("another.example", doc1, NOW).await.unwrap();
    assert_eq!(
        store.get_federated_bundle("partner.example").await.unwrap(),
        Some((doc1.to_owned(), NOW))
    );

    // Replaced by trust domain.
    store
        .put_federated_bundle("partner.example", doc2, NOW.plus(300))
        .await
        .unwrap();
    assert_eq!(
        store.get_federated_bundle("partner.example").await.unwrap(),
        Some((doc2.to_owned(), NOW.plus(300)))
    );
    assert_eq!(
        store.get_federated_bundle("another.example").await.unwrap(),
        Some((doc1.to_owned(), NOW))
    );
    assert_eq!(
        store.list_federated_bundles().await.unwrap(),
        vec!["another.example".to_owned(), "partner.example".to_owned()]
    );

    // Deleted by trust domain (a trust domain no longer federated with); the others stay.
    assert!(store.delete_federated_bundle("another.example").await.unwrap());
    assert!(!store.delete_federated_bundle("another.example").await.unwrap());
    assert!(!store.delete_federated_bundle("never.example").await.unwrap());
    assert_eq!(store.get_federated_bundle("another.example").await.unwrap(), None);
    assert_eq!(
        store.list_federated_bundles().await.unwrap(),
        vec!["partner.example".to_owned()]
    );
    assert_eq!(
        store.get_federated_bundle("partner.example").await.unwrap(),
        Some((doc2.to_owned(), NOW.plus(300)))
    );
    // Stored again later, it is back.
    store.put_federated_bundle("another.example", doc1, NOW).await.unwrap();
    assert_eq!(store.list_federated_bundles().await.unwrap().len(), 2);
}

// ---- harness ----

/// Runs `case` against a store in a fresh SQLite file.
async fn pruning(store: Store) {
    // Join tokens: expired ones go, live ones stay usable.
    store.create_join_token(&token_hash("old"), NOW.minus(1)).await.unwrap();
    store
        .create_join_token(&token_hash("live"), NOW.plus(600))
        .await
        .unwrap();
    // Entry events: five changes, keep the newest two.
    let entry = store
        .create_entry(&spec("spiffe://example.org/p", PARENT_A, &["unix:uid:1"]), NOW)
        .await
        .unwrap();
    for i in 0..3u64 {
        let mut changed = spec("spiffe://example.org/p", PARENT_A, &["unix:uid:1"]);
        changed.x509_svid_ttl = 100 + i;
        store.update_entry(&entry.id, &changed, None).await.unwrap();
    }
    store.delete_entry(&entry.id).await.unwrap();
    let latest = store.latest_entry_event().await.unwrap();
    assert_eq!(store.entry_events_since(0, 100).await.unwrap().len(), 5);

    assert_eq!(store.prune(NOW, 2).await.unwrap(), (1, 3));
    let left = store.entry_events_since(0, 100).await.unwrap();
    assert_eq!(left.iter().map(|e| e.seq).collect::<Vec<_>>(), [latest - 1, latest]);
    assert_eq!(store.latest_entry_event().await.unwrap(), latest);
    assert_eq!(
        store.consume_join_token(&token_hash("live"), NOW).await.unwrap(),
        TokenUse::Consumed
    );
    assert_ne!(
        store.consume_join_token(&token_hash("old"), NOW).await.unwrap(),
        TokenUse::Consumed
    );
    // Nothing more to prune.
    assert_eq!(store.prune(NOW, 2).await.unwrap(), (0, 0));
}

async fn server_secrets(store: Store) {
    // The first writer wins, and every later caller (another replica) gets its value.
    let first = store.get_or_create_secret("mac", b"first").await.unwrap();
    assert_eq!(first, b"first");
    assert_eq!(store.get_or_create_secret("mac", b"second").await.unwrap(), b"first");
    assert_eq!(store.get_or_create_secret("other", b"x").await.unwrap(), b"x");
    // Concurrent creators agree on one value.
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.get_or_create_secret("race", &[i]).await.unwrap() })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for task in tasks {
        seen.insert(task.await.unwrap());
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
}

async fn run_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lanyard.db").display());
    let store = Arc::new(SqlDataStore::connect(&url).await.unwrap());
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
    let db: String = format!(
        "lanyard_test_{}",
        random.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .await
        .unwrap();

    let store = Arc::new(SqlDataStore::connect(&with_database(&admin_url, &db)).await.unwrap());
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

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::run_sqlite(super::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::run_postgres(stringify!($case), super::$case).await;
                }
            )*
        }
    };
}

conformance!(
    entry_crud,
    entry_duplicates,
    entry_bulk_all_or_none,
    entry_list_filters,
    entry_event_log,
    entry_concurrent_creates,
    join_tokens,
    join_token_concurrent_consume,
    agents,
    authorities,
    bundle_sequence,
    federated_bundles,
    server_secrets,
    pruning,
);

// ---- SQLite specifics ----

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub.db");
    let url = format!("sqlite://{}", path.display());
    let store = SqlDataStore::connect(&url).await.unwrap();
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
    let store = SqlDataStore::connect(&url).await.unwrap();
    assert_eq!(store.get_entry(&entry.id).await.unwrap(), Some(entry));
    assert_eq!(store.bundle_sequence().await.unwrap(), 1);
    assert_eq!(store.latest_entry_event().await.unwrap(), 1);
}

#[tokio::test]
async fn sqlite_in_memory() {
    let store = SqlDataStore::connect("sqlite::memory:").await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    let entry = store
        .create_entry(&spec("spiffe://example.org/web", PARENT_A, &["unix:uid:1"]), NOW)
        .await
        .unwrap();
    assert_eq!(store.get_entry(&entry.id).await.unwrap(), Some(entry));
}

#[tokio::test]
async fn rejects_unknown_url_schemes_without_echoing_them() {
    let err = SqlDataStore::connect("mysql://root:hunter2@localhost/db")
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
