//! [`EntryStore`] cases: entries and their change log.

use std::collections::BTreeSet;
use std::sync::Arc;

use lanyard_server::datastore::{EntryEvent, EntryFilter, EntryStore, StoreError};
use lanyard_server::model::{Entry, EntrySpec};

use crate::*;

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
    assert_eq!(entry.claims, spec.claims);
}

fn ids(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| e.id.clone()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn all_events(store: &dyn EntryStore) -> Vec<EntryEvent> {
    store.entry_events_since(0, 10_000).await.unwrap()
}

pub(crate) async fn entry_crud(store: Arc<dyn EntryStore>) {
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

pub(crate) async fn entry_duplicates(store: Arc<dyn EntryStore>) {
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

pub(crate) async fn entry_bulk_all_or_none(store: Arc<dyn EntryStore>) {
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

pub(crate) async fn entry_list_filters(store: Arc<dyn EntryStore>) {
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

pub(crate) async fn entry_event_log(store: Arc<dyn EntryStore>) {
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

pub(crate) async fn entry_concurrent_creates(store: Arc<dyn EntryStore>) {
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

pub(crate) async fn entry_event_pruning(store: Arc<dyn EntryStore>) {
    // Five changes, keep the newest two.
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

    assert_eq!(store.prune_entry_events(2).await.unwrap(), 3);
    let left = store.entry_events_since(0, 100).await.unwrap();
    assert_eq!(left.iter().map(|e| e.seq).collect::<Vec<_>>(), [latest - 1, latest]);
    assert_eq!(store.latest_entry_event().await.unwrap(), latest);
    // Nothing more to prune.
    assert_eq!(store.prune_entry_events(2).await.unwrap(), 0);
}

/// The SD-CWT `claims` of an entry (migration 0005) survive create, read, update and list
/// exactly, nested values and OIDC names included; an entry without claims reads back
/// with none.
pub(crate) async fn entry_claims(store: Arc<dyn EntryStore>) {
    let store = &*store;
    let mut s = spec("spiffe://example.org/payments", PARENT_A, &["unix:uid:1000"]);
    s.claims = serde_json::from_value(serde_json::json!({
        "claims": {
            "env": "prod",
            "email": "payments@example.org",
            "build": {"repo": "git.example.org/payments", "commit": "4b825dc", "signed": true},
            "zones": ["eu-west-1a", "eu-west-1b"],
            "replicas": 3,
        },
        "always_disclosed": ["env", "node"],
        "selectively_disclosable": ["trust_domain"],
    }))
    .unwrap();
    let created = store.create_entry(&s, NOW).await.unwrap();
    assert_matches_spec(&created, &s);
    assert_eq!(store.get_entry(&created.id).await.unwrap(), Some(created.clone()));

    s.claims.claims.insert("env".into(), "staging".into());
    s.claims.always_disclosed.clear();
    let updated = store.update_entry(&created.id, &s, Some(1)).await.unwrap();
    assert_matches_spec(&updated, &s);
    let listed = store.list_entries(&EntryFilter::default()).await.unwrap();
    assert_eq!(listed, vec![updated]);

    let plain = store
        .create_entry(&spec("spiffe://example.org/plain", PARENT_A, &["unix:uid:1001"]), NOW)
        .await
        .unwrap();
    assert!(store.get_entry(&plain.id).await.unwrap().unwrap().claims.is_empty());
}
