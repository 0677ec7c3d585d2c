//! [`JoinTokenStore`] cases.

use std::sync::Arc;

use lanyard_server::datastore::{JoinTokenStore, StoreError, TokenUse};

use crate::*;

pub(crate) async fn join_tokens(store: Arc<dyn JoinTokenStore>) {
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

pub(crate) async fn join_token_concurrent_consume(store: Arc<dyn JoinTokenStore>) {
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

pub(crate) async fn join_token_pruning(store: Arc<dyn JoinTokenStore>) {
    // Expired ones go, live ones stay usable.
    store.create_join_token(&token_hash("old"), NOW.minus(1)).await.unwrap();
    store
        .create_join_token(&token_hash("live"), NOW.plus(600))
        .await
        .unwrap();

    assert_eq!(store.prune_join_tokens(NOW).await.unwrap(), 1);
    assert_eq!(
        store.consume_join_token(&token_hash("live"), NOW).await.unwrap(),
        TokenUse::Consumed
    );
    assert_ne!(
        store.consume_join_token(&token_hash("old"), NOW).await.unwrap(),
        TokenUse::Consumed
    );
    // Nothing more to prune.
    assert_eq!(store.prune_join_tokens(NOW).await.unwrap(), 0);
}
