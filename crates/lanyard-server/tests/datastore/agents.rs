//! [`AgentStore`] cases.

use std::sync::Arc;

use lanyard_server::datastore::AgentStore;
use lanyard_server::model::Agent;

use crate::*;

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

pub(crate) async fn agents(store: Arc<dyn AgentStore>) {
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
