//! [`ClientStore`] and [`JtiStore`] cases.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use lanyard_core::UnixTime;
use lanyard_core::oauth::{AuthMethod, GrantType, SpiffeIdPattern};
use lanyard_server::datastore::{
    CLIENT_CACHE_TTL, CachedClients, ClientStore, GroupCommitJtis, JtiStore, MirroredRevocations,
    REVOCATION_MIRROR_TTL, StoreError,
};
use lanyard_server::model::{OAuthClient, OAuthClientSpec};

use crate::NOW;

fn client(id: &str, secret_hash: Option<&str>) -> OAuthClient {
    OAuthClient {
        client_id: id.into(),
        spec: OAuthClientSpec {
            spiffe_ids: vec![SpiffeIdPattern::parse("spiffe://example.org/billing/*").unwrap()],
            auth_methods: vec![AuthMethod::SpiffeJwt, AuthMethod::PrivateKeyJwt],
            jwks: None,
            jwks_uri: Some("https://billing.example.org/jwks".into()),
            grant_types: vec![GrantType::ClientCredentials],
            scopes: vec!["read".into(), "write".into()],
            audiences: vec!["https://ledger.example.org".into()],
            access_token_ttl: 120,
            require_dpop: true,
            require_certificate_binding: false,
            exchange: Default::default(),
        },
        secret_hash: secret_hash.map(str::to_owned),
        has_secret: secret_hash.is_some(),
        revision: 1,
        created_at: NOW,
    }
}

pub(crate) async fn client_crud(store: Arc<dyn ClientStore>) {
    assert!(!store.any_client_has_secret().await.unwrap());
    let a = client("spiffe://example.org/billing", None);
    let b = client(
        "https://b.example.org/client",
        Some("$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA"),
    );
    store.create_client(&a).await.unwrap();
    store.create_client(&b).await.unwrap();
    assert!(matches!(
        store.create_client(&a).await.unwrap_err(),
        StoreError::AlreadyExists(_)
    ));
    assert!(matches!(
        store.create_client(&client("", None)).await.unwrap_err(),
        StoreError::Invalid(_)
    ));
    assert_eq!(store.get_client(&a.client_id).await.unwrap().as_deref(), Some(&a));
    assert_eq!(store.get_client(&b.client_id).await.unwrap().as_deref(), Some(&b));
    assert_eq!(store.get_client("nobody").await.unwrap(), None);
    assert!(store.any_client_has_secret().await.unwrap());
    let ids: Vec<String> = store
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(ids, [b.client_id.clone(), a.client_id.clone()]);

    // Update: new settings, the secret dropped, revision bumped; a stale revision conflicts.
    let mut changed = b.clone();
    changed.spec.scopes = vec!["read".into()];
    changed.secret_hash = None;
    let stored = store.update_client(&changed, Some(1)).await.unwrap();
    assert_eq!(stored.revision, 2);
    assert_eq!(stored.spec.scopes, ["read"]);
    assert!(!stored.has_secret);
    assert_eq!(stored.created_at, NOW);
    assert!(matches!(
        store.update_client(&changed, Some(1)).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    assert!(matches!(
        store.update_client(&client("nobody", None), None).await.unwrap_err(),
        StoreError::NotFound(_)
    ));
    assert!(!store.any_client_has_secret().await.unwrap());

    assert!(store.delete_client(&a.client_id).await.unwrap());
    assert!(!store.delete_client(&a.client_id).await.unwrap());
    assert_eq!(store.list_clients().await.unwrap().len(), 1);
}

pub(crate) async fn jti_replay(store: Arc<dyn JtiStore>) {
    let exp = UnixTime(NOW.as_secs() + 300);
    assert!(store.record_jti("client-a:1", exp, NOW).await.unwrap());
    // The same key again, while live: a replay.
    assert!(!store.record_jti("client-a:1", exp, NOW.plus(10)).await.unwrap());
    assert!(!store.record_jti("client-a:1", exp, exp).await.unwrap());
    // Another key is independent.
    assert!(store.record_jti("client-b:1", exp, NOW).await.unwrap());
    // Once expired, the key may be taken again (the assertion itself is expired by then).
    assert!(
        store
            .record_jti("client-a:1", exp.plus(300), exp.plus(1))
            .await
            .unwrap()
    );
    // Bad keys are refused, never truncated.
    for bad in [String::new(), "k".repeat(129)] {
        assert!(matches!(
            store.record_jti(&bad, exp, NOW).await.unwrap_err(),
            StoreError::Invalid(_)
        ));
    }
    // Pruning drops only expired rows: client-b's (and, on SQLite, whose log keeps every
    // use, the first use of client-a:1).
    let pruned = store.prune_jtis(exp.plus(1)).await.unwrap();
    assert!((1..=2).contains(&pruned), "{pruned}");
    assert!(
        !store
            .record_jti("client-a:1", exp.plus(300), exp.plus(2))
            .await
            .unwrap()
    );
}

pub(crate) async fn jti_concurrent(store: Arc<dyn JtiStore>) {
    let exp = UnixTime(NOW.as_secs() + 300);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.record_jti("race", exp, NOW).await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for task in tasks {
        if task.await.unwrap() {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
}

pub(crate) async fn revocations(store: Arc<dyn JtiStore>) {
    let exp = UnixTime(NOW.as_secs() + 300);
    assert!(!store.is_revoked("t-1").await.unwrap());
    store.revoke_token("t-1", exp).await.unwrap();
    store.revoke_token("t-1", exp).await.unwrap();
    assert!(store.is_revoked("t-1").await.unwrap());
    assert!(!store.is_revoked("t-2").await.unwrap());
    // Several at once, in order, repeats and more than one statement's worth included; and
    // through the batching wrapper, concurrent checks each get their own answer.
    let mut jtis: Vec<String> = (0..300).map(|i| format!("t-{i}")).collect();
    jtis.push("t-1".into());
    let among = store.revoked_among(&jtis).await.unwrap();
    assert_eq!(among.iter().filter(|r| **r).count(), 2);
    assert!(among[1] && among[300] && !among[0] && !among[2]);
    let batched: Arc<dyn JtiStore> = Arc::new(GroupCommitJtis::spawn(Arc::clone(&store)));
    let checks: Vec<_> = (0..64)
        .map(|i| {
            let batched = Arc::clone(&batched);
            tokio::spawn(async move { batched.is_revoked(&format!("t-{}", i % 4)).await.unwrap() })
        })
        .collect();
    for (i, check) in checks.into_iter().enumerate() {
        assert_eq!(check.await.unwrap(), i % 4 == 1, "t-{}", i % 4);
    }
    batched.revoke_token("t-2", exp).await.unwrap();
    assert!(batched.is_revoked("t-2").await.unwrap());
    assert_eq!(store.prune_jtis(exp.plus(1)).await.unwrap(), 2);
    let revoked: BTreeSet<bool> = [store.is_revoked("t-1").await.unwrap()].into();
    assert_eq!(revoked, [false].into());
}

pub(crate) async fn jti_batch(store: Arc<dyn JtiStore>) {
    let exp = UnixTime(NOW.as_secs() + 300);
    assert!(store.record_jti("seen", exp, NOW).await.unwrap());
    let keys: Vec<(String, UnixTime)> = ["b", "seen", "a", "b", "c"]
        .iter()
        .map(|k| ((*k).to_owned(), exp))
        .collect();
    // In order: b fresh, seen a replay, a fresh, b again a replay (same batch), c fresh.
    assert_eq!(
        store.record_jtis(&keys, NOW).await.unwrap(),
        [true, false, true, false, true]
    );
    assert!(!store.record_jti("a", exp, NOW).await.unwrap());
    assert!(matches!(
        store
            .record_jtis(&[("ok".to_owned(), exp), (String::new(), exp)], NOW)
            .await
            .unwrap_err(),
        StoreError::Invalid(_)
    ));
    // A refused batch records nothing.
    assert!(store.record_jti("ok", exp, NOW).await.unwrap());
    // A key whose record expired is taken over by a batch.
    let earlier = UnixTime(NOW.as_secs() - 100);
    assert!(
        store
            .record_jti("stale", UnixTime(NOW.as_secs() - 10), earlier)
            .await
            .unwrap()
    );
    assert_eq!(
        store.record_jtis(&[("stale".to_owned(), exp)], NOW).await.unwrap(),
        [true]
    );
    // A batch larger than one statement (several statements in one transaction), with a
    // repeat across statement boundaries.
    let mut many: Vec<(String, UnixTime)> = (0..600).map(|i| (format!("many-{i:04}"), exp)).collect();
    many.push(("many-0000".to_owned(), exp));
    let fresh = store.record_jtis(&many, NOW).await.unwrap();
    assert_eq!(fresh.iter().filter(|f| **f).count(), 600);
    assert!(!fresh[600]);
    assert!(!store.record_jti("many-0599", exp, NOW).await.unwrap());
}

/// The revocation copy the server puts in front of the store: the store lists every
/// revocation (and refuses to beyond the limit); a revocation through the copy is seen at
/// once, one behind it (another replica) within the TTL; with more revocations than it
/// keeps, every check asks the store.
pub(crate) async fn revocation_mirror(store: Arc<dyn JtiStore>) {
    let exp = UnixTime(NOW.as_secs() + 300);
    assert_eq!(store.all_revocations(10).await.unwrap(), Some(Default::default()));
    store.revoke_token("m-1", exp).await.unwrap();
    store.revoke_token("m-2", exp).await.unwrap();
    assert_eq!(
        store.all_revocations(2).await.unwrap(),
        Some(["m-1".to_owned(), "m-2".to_owned()].into())
    );
    assert_eq!(store.all_revocations(1).await.unwrap(), None);

    let mirrored = MirroredRevocations::new(Arc::clone(&store));
    assert!(mirrored.is_revoked("m-1").await.unwrap());
    assert!(!mirrored.is_revoked("m-3").await.unwrap());
    // Through the copy: at once.
    mirrored.revoke_token("m-3", exp).await.unwrap();
    assert!(mirrored.is_revoked("m-3").await.unwrap());
    assert!(store.is_revoked("m-3").await.unwrap());
    // Behind it: within the TTL (and not before this check, had the copy been read after
    // the revocation: it was read before).
    store.revoke_token("m-4", exp).await.unwrap();
    tokio::time::sleep(REVOCATION_MIRROR_TTL + Duration::from_millis(50)).await;
    assert!(mirrored.is_revoked("m-4").await.unwrap());
    // Concurrent checks after the TTL read the store once and each get their answer.
    tokio::time::sleep(REVOCATION_MIRROR_TTL + Duration::from_millis(50)).await;
    let mirrored = Arc::new(mirrored);
    let checks: Vec<_> = (0..32)
        .map(|i| {
            let mirrored = Arc::clone(&mirrored);
            tokio::spawn(async move { mirrored.is_revoked(&format!("m-{}", i % 6)).await.unwrap() })
        })
        .collect();
    for (i, check) in checks.into_iter().enumerate() {
        assert_eq!(check.await.unwrap(), (1..=4).contains(&(i % 6)), "m-{}", i % 6);
    }
    // A revocation while the copy is being read: the read's copy, taken before the
    // revocation was committed, does not replace the one the revocation entered.
    let read_started = Arc::new(tokio::sync::Notify::new());
    let slow = Arc::new(MirroredRevocations::new(Arc::new(SlowRevocationReads(
        Arc::clone(&store),
        Arc::clone(&read_started),
    ))));
    let reading = {
        let slow = Arc::clone(&slow);
        tokio::spawn(async move { slow.is_revoked("m-1").await.unwrap() })
    };
    read_started.notified().await;
    slow.revoke_token("m-6", exp).await.unwrap();
    assert!(slow.is_revoked("m-6").await.unwrap());
    assert!(reading.await.unwrap());

    // More revocations than kept: each check goes to the store, and is still right.
    let small = MirroredRevocations::with_limit(Arc::clone(&store), 2);
    assert!(small.is_revoked("m-4").await.unwrap());
    assert!(!small.is_revoked("m-5").await.unwrap());
    store.revoke_token("m-5", exp).await.unwrap();
    assert!(small.is_revoked("m-5").await.unwrap());
}

/// A store whose listing of every revocation takes 300 ms (a read under way while a
/// revocation is made), and says when it has read.
#[derive(Debug)]
struct SlowRevocationReads(Arc<dyn JtiStore>, Arc<tokio::sync::Notify>);

#[async_trait::async_trait]
impl JtiStore for SlowRevocationReads {
    async fn record_jti(&self, key: &str, expires_at: UnixTime, now: UnixTime) -> Result<bool, StoreError> {
        self.0.record_jti(key, expires_at, now).await
    }
    async fn revoke_token(&self, jti: &str, expires_at: UnixTime) -> Result<(), StoreError> {
        self.0.revoke_token(jti, expires_at).await
    }
    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        self.0.is_revoked(jti).await
    }
    async fn all_revocations(&self, limit: usize) -> Result<Option<std::collections::HashSet<String>>, StoreError> {
        let read = self.0.all_revocations(limit).await;
        self.1.notify_one();
        tokio::time::sleep(Duration::from_millis(300)).await;
        read
    }
    async fn prune_jtis(&self, now: UnixTime) -> Result<u64, StoreError> {
        self.0.prune_jtis(now).await
    }
}

/// The group-commit wrapper the server puts in front of the store: concurrent requests
/// share transactions, and still exactly one use of each key is fresh.
pub(crate) async fn jti_group_commit(store: Arc<dyn JtiStore>) {
    let exp = UnixTime(NOW.as_secs() + 300);
    let batched: Arc<dyn JtiStore> = Arc::new(GroupCommitJtis::spawn(Arc::clone(&store)));
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let batched = Arc::clone(&batched);
            tokio::spawn(async move { batched.record_jti(&format!("k{}", i % 16), exp, NOW).await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for task in tasks {
        fresh += usize::from(task.await.unwrap());
    }
    assert_eq!(fresh, 16);
    // What the wrapper recorded, the store itself holds (a replica without it sees it).
    assert!(!store.record_jti("k3", exp, NOW).await.unwrap());
    assert!(batched.record_jti("new", exp, NOW).await.unwrap());
    assert!(!store.record_jti("new", exp, NOW).await.unwrap());
    // A bad key fails alone.
    assert!(matches!(
        batched.record_jti(&"k".repeat(129), exp, NOW).await.unwrap_err(),
        StoreError::Invalid(_)
    ));
    assert!(batched.record_jti("after", exp, NOW).await.unwrap());
    // A full store stays "full" (a 503 at the token endpoint) for each caller of the batch.
    let full: Arc<dyn JtiStore> = Arc::new(GroupCommitJtis::spawn(Arc::new(AlwaysFull(store))));
    assert!(matches!(
        full.record_jti("any", exp, NOW).await.unwrap_err(),
        StoreError::Full(_)
    ));
}

/// A store with no room for one-time values.
#[derive(Debug)]
struct AlwaysFull(Arc<dyn JtiStore>);

#[async_trait::async_trait]
impl JtiStore for AlwaysFull {
    async fn record_jti(&self, _: &str, _: UnixTime, _: UnixTime) -> Result<bool, StoreError> {
        Err(StoreError::Full("no room".into()))
    }
    async fn record_jtis(&self, _: &[(String, UnixTime)], _: UnixTime) -> Result<Vec<bool>, StoreError> {
        Err(StoreError::Full("no room".into()))
    }
    async fn revoke_token(&self, jti: &str, expires_at: UnixTime) -> Result<(), StoreError> {
        self.0.revoke_token(jti, expires_at).await
    }
    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        self.0.is_revoked(jti).await
    }
    async fn prune_jtis(&self, now: UnixTime) -> Result<u64, StoreError> {
        self.0.prune_jtis(now).await
    }
}

/// The client cache the server puts in front of the store: changes through it are seen at
/// once, changes behind it (another replica) within the TTL, unknown clients never cached.
pub(crate) async fn client_cache(store: Arc<dyn ClientStore>) {
    let cached = CachedClients::new(Arc::clone(&store));
    let a = client("spiffe://example.org/billing", None);
    assert_eq!(cached.get_client(&a.client_id).await.unwrap(), None);
    store.create_client(&a).await.unwrap();
    assert_eq!(cached.get_client(&a.client_id).await.unwrap().as_deref(), Some(&a));

    // Through the cache: seen at once.
    let mut changed = a.clone();
    changed.spec.scopes = vec!["write".into()];
    let updated = cached.update_client(&changed, None).await.unwrap();
    assert_eq!(
        cached.get_client(&a.client_id).await.unwrap().as_deref(),
        Some(&updated)
    );

    // Behind it (another replica): the cached copy serves until the TTL has passed.
    let mut elsewhere = updated.clone();
    elsewhere.spec.scopes = vec!["admin".into()];
    let newer = store.update_client(&elsewhere, None).await.unwrap();
    assert_eq!(
        cached.get_client(&a.client_id).await.unwrap().as_deref(),
        Some(&updated)
    );
    tokio::time::sleep(CLIENT_CACHE_TTL + std::time::Duration::from_millis(100)).await;
    assert_eq!(cached.get_client(&a.client_id).await.unwrap().as_deref(), Some(&newer));

    assert!(cached.delete_client(&a.client_id).await.unwrap());
    assert_eq!(cached.get_client(&a.client_id).await.unwrap(), None);
}
