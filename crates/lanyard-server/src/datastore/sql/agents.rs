//! [`AgentStore`] on SQL: one row per agent; an upsert keeps the first `created_at` and
//! never lifts a ban.

use async_trait::async_trait;
use sqlx::any::AnyRow;

use lanyard_core::SpiffeId;

use super::{SqlDataStore, backend_err, bool_column, column, json_column, time_column, time_param, to_json};
use crate::datastore::{AgentStore, StoreError};
use crate::model::Agent;

/// The columns of `agents` that make up an [`Agent`].
macro_rules! agent_columns {
    () => {
        "id, attestation_type, svid_serial, previous_svid_serial, svid_expires_at, selectors, banned, created_at"
    };
}

fn agent_from_row(row: &AnyRow) -> Result<Agent, StoreError> {
    let id: String = column(row, "id")?;
    Ok(Agent {
        id: SpiffeId::parse(&id).map_err(|e| StoreError::backend("stored agent ID is invalid", e))?,
        attestation_type: column(row, "attestation_type")?,
        svid_serial: column(row, "svid_serial")?,
        previous_svid_serial: column(row, "previous_svid_serial")?,
        svid_expires_at: time_column(row, "svid_expires_at")?,
        selectors: json_column(row, "selectors")?,
        banned: bool_column(row, "banned")?,
        created_at: time_column(row, "created_at")?,
    })
}

#[async_trait]
impl AgentStore for SqlDataStore {
    async fn upsert_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO agents (id, attestation_type, svid_serial, svid_expires_at, selectors, banned, created_at, \
             previous_svid_serial) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET attestation_type = excluded.attestation_type, \
             svid_serial = excluded.svid_serial, svid_expires_at = excluded.svid_expires_at, \
             previous_svid_serial = excluded.previous_svid_serial, \
             selectors = excluded.selectors, banned = (agents.banned OR excluded.banned)",
        )
        .bind(agent.id.as_str())
        .bind(&agent.attestation_type)
        .bind(&agent.svid_serial)
        .bind(time_param(agent.svid_expires_at))
        .bind(to_json(&agent.selectors)?)
        .bind(agent.banned)
        .bind(time_param(agent.created_at))
        .bind(&agent.previous_svid_serial)
        .execute(&self.pool)
        .await
        .map_err(|e| backend_err("storing an agent", e))?;
        Ok(())
    }

    async fn clear_previous_svid_serial(&self, id: &SpiffeId, current_serial: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE agents SET previous_svid_serial = '' WHERE id = $1 AND svid_serial = $2")
            .bind(id.as_str())
            .bind(current_serial)
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("updating an agent", e))?;
        Ok(())
    }

    async fn get_agent(&self, id: &SpiffeId) -> Result<Option<Agent>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", agent_columns!(), " FROM agents WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend_err("reading an agent", e))?;
        row.as_ref().map(agent_from_row).transpose()
    }

    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        let rows = sqlx::query(concat!("SELECT ", agent_columns!(), " FROM agents ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| backend_err("listing agents", e))?;
        rows.iter().map(agent_from_row).collect()
    }

    async fn ban_agent(&self, id: &SpiffeId) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE agents SET banned = $2 WHERE id = $1")
            .bind(id.as_str())
            .bind(true)
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("banning an agent", e))?;
        Ok(result.rows_affected() > 0)
    }
}
