//! [`FederatedBundleStore`] cases.

use std::sync::Arc;

use lanyard_server::datastore::FederatedBundleStore;

use crate::*;

pub(crate) async fn federated_bundles(store: Arc<dyn FederatedBundleStore>) {
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
