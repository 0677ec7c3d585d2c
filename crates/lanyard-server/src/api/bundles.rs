//! The bundles an agent receives (by `GetBundles` and on its `SyncEntries` stream): the
//! trust domain's own bundle, plus the stored bundles of the foreign trust domains its
//! entries federate with.

use std::collections::{BTreeMap, HashSet};

use lanyard_api::agent::v1 as pb;
use lanyard_core::SpiffeId;

use crate::api::status::AgentApiError;
use crate::api::wire;
use crate::entries;
use crate::error::ServerError;
use crate::state::AppState;

/// The own bundle plus the federated bundles the agent's entries need.
pub(crate) async fn for_agent(state: &AppState, agent: &SpiffeId) -> Result<pb::Bundles, AgentApiError> {
    let own = state.keys.bundle().await.map_err(ServerError::from)?;
    let wanted: HashSet<String> = entries::authorized_entries(&*state.stores.entries, agent)
        .await?
        .iter()
        .flat_map(|e| e.federates_with.iter().map(|t| wire::trust_domain_key(t)))
        .collect();
    let mut federated = BTreeMap::new();
    for key in wanted {
        let name = key.trim_start_matches("spiffe://");
        if name == state.trust_domain.name() {
            continue;
        }
        let Some((json, _fetched_at)) = state.stores.federated_bundles.get_federated_bundle(name).await? else {
            continue;
        };
        let sequence = serde_json::from_str::<serde_json::Value>(&json)
            .ok()
            .and_then(|v| v.get("spiffe_sequence").and_then(serde_json::Value::as_u64))
            .unwrap_or(0);
        federated.insert(
            key.clone(),
            pb::Bundle {
                trust_domain: key,
                json: json.into_bytes(),
                sequence,
            },
        );
    }
    Ok(pb::Bundles {
        bundle: Some(wire::bundle(&own)),
        federated_bundles: federated.into_iter().collect(),
    })
}
