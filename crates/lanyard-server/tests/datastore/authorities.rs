//! [`AuthorityStore`] cases: signing authorities and the bundle sequence.

use std::collections::BTreeSet;
use std::sync::Arc;

use lanyard_server::datastore::{AuthorityStore, StoreError};
use lanyard_server::model::{Authority, AuthorityKind, AuthorityStatus};

use crate::*;

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

pub(crate) async fn authorities(store: Arc<dyn AuthorityStore>) {
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

pub(crate) async fn bundle_sequence(store: Arc<dyn AuthorityStore>) {
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
