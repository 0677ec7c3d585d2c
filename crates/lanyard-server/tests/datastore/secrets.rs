//! [`SecretStore`] cases.

use std::collections::BTreeSet;
use std::sync::Arc;

use lanyard_server::datastore::SecretStore;

pub(crate) async fn server_secrets(store: Arc<dyn SecretStore>) {
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
