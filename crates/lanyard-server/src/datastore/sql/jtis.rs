//! [`JtiStore`] on SQL: the one-time-value tables (`oauth_jti`, `oauth_jti_log`) and the
//! revocations.
//!
//! On PostgreSQL, which replicas share, a `jti` is recorded by `INSERT ... ON CONFLICT DO
//! UPDATE ... WHERE expires_at < now`: a fresh key inserts, an expired one is taken over, a
//! live one changes no row (a replay), so concurrent uses on any replica see exactly one
//! success. On SQLite, which one process owns, that process decides in memory and appends
//! the fresh keys to its journal before answering (`live_jtis.rs` and `jti_journal.rs` say
//! why); the log table of earlier versions is still read back and pruned.

use async_trait::async_trait;

use lanyard_core::UnixTime;

use super::live_jtis::LiveJtis;
use super::{SqlDataStore, backend_err, column, commit_err, time_param};
use crate::datastore::{JtiStore, MAX_JTI_KEY, StoreError};

/// Records one key: a fresh key inserts, an expired one is taken over, a live one changes
/// no row (a replay).
const RECORD_JTI: &str = "INSERT INTO oauth_jti (jti_key, expires_at) VALUES ($1, $2) \
     ON CONFLICT (jti_key) DO UPDATE SET expires_at = excluded.expires_at \
     WHERE oauth_jti.expires_at < $3";

#[async_trait]
impl JtiStore for SqlDataStore {
    async fn record_jti(&self, key: &str, expires_at: UnixTime, now: UnixTime) -> Result<bool, StoreError> {
        if key.is_empty() || key.len() > MAX_JTI_KEY {
            return Err(StoreError::Invalid(format!("a jti key is 1 to {MAX_JTI_KEY} bytes")));
        }
        if let Some(live) = &self.live_jtis {
            let fresh = self.record_live(live, &[(key.to_owned(), expires_at)], now)?;
            return Ok(fresh.first().copied().unwrap_or(false));
        }
        let changed = sqlx::query(RECORD_JTI)
            .bind(key)
            .bind(time_param(expires_at))
            .bind(time_param(now))
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("recording a jti", e))?
            .rows_affected();
        Ok(changed == 1)
    }

    async fn record_jtis(&self, keys: &[(String, UnixTime)], now: UnixTime) -> Result<Vec<bool>, StoreError> {
        if let Some((key, _)) = keys.iter().find(|(k, _)| k.is_empty() || k.len() > MAX_JTI_KEY) {
            return Err(StoreError::Invalid(format!(
                "a jti key is 1 to {MAX_JTI_KEY} bytes, not {}",
                key.len()
            )));
        }
        if let Some(live) = &self.live_jtis {
            return self.record_live(live, keys, now);
        }
        // Every replica inserts in the same (sorted) order, so two batches that share keys
        // wait for each other instead of deadlocking on PostgreSQL.
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by(|a, b| keys[*a].0.cmp(&keys[*b].0));
        let mut fresh = vec![false; keys.len()];
        // (PostgreSQL: SQLite went to `record_live` above.)
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| backend_err("recording jtis", e))?;
        let outcome = self.record_jtis_on(&mut conn, keys, &order, &mut fresh, now).await;
        drop(conn);
        outcome.map(|()| fresh)
    }

    async fn revoke_token(&self, jti: &str, expires_at: UnixTime) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_revoked (jti, expires_at) VALUES ($1, $2) \
             ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at",
        )
        .bind(jti)
        .bind(time_param(expires_at))
        .execute(&self.pool)
        .await
        .map_err(|e| backend_err("revoking a token", e))?;
        Ok(())
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT expires_at FROM oauth_revoked WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| backend_err("reading revocations", e))?;
        Ok(found.is_some())
    }

    async fn revoked_among(&self, jtis: &[String]) -> Result<Vec<bool>, StoreError> {
        let mut found = std::collections::HashSet::new();
        for chunk in jtis.chunks(ROWS_PER_STATEMENT) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            // Only placeholders are generated; every value is bound.
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT jti FROM oauth_revoked WHERE jti IN ({})",
                placeholders.join(", ")
            ));
            let mut query = sqlx::query_scalar::<_, String>(sql);
            for jti in chunk {
                query = query.bind(jti.clone());
            }
            found.extend(
                query
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| backend_err("reading revocations", e))?,
            );
        }
        Ok(jtis.iter().map(|jti| found.contains(jti)).collect())
    }

    async fn all_revocations(&self, limit: usize) -> Result<Option<std::collections::HashSet<String>>, StoreError> {
        let jtis: Vec<String> = sqlx::query_scalar("SELECT jti FROM oauth_revoked LIMIT $1")
            .bind(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| backend_err("reading revocations", e))?;
        Ok((jtis.len() <= limit).then(|| jtis.into_iter().collect()))
    }

    async fn prune_jtis(&self, now: UnixTime) -> Result<u64, StoreError> {
        let mut jtis = 0;
        if let Some(live) = &self.live_jtis {
            jtis += live.prune(now) as u64;
            if let Some(journal) = &self.jti_journal
                && let Err(error) = journal.prune(now)
            {
                // Kept for the next pruning; the tables below are pruned regardless.
                tracing::warn!(%error, "pruning the jti journal");
            }
            // The log table of earlier versions, in short transactions (a second of tokens
            // at full load was 11 000 rows).
            const PRUNE_CHUNK: u64 = 2_000;
            loop {
                let deleted = sqlx::query(
                    "DELETE FROM oauth_jti_log WHERE rowid IN \
                     (SELECT rowid FROM oauth_jti_log WHERE expires_at < $1 LIMIT $2)",
                )
                .bind(time_param(now))
                .bind(PRUNE_CHUNK as i64)
                .execute(&self.pool)
                .await
                .map_err(|e| backend_err("pruning jtis", e))?
                .rows_affected();
                jtis += deleted;
                if deleted < PRUNE_CHUNK {
                    break;
                }
            }
        }
        let now = time_param(now);
        jtis += sqlx::query("DELETE FROM oauth_jti WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("pruning jtis", e))?
            .rows_affected();
        let revoked = sqlx::query("DELETE FROM oauth_revoked WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| backend_err("pruning revocations", e))?
            .rows_affected();
        Ok(jtis + revoked)
    }
}

/// Rows per multi-row upsert of a batch (two parameters each, far below the parameter
/// limits of SQLite and PostgreSQL).
const ROWS_PER_STATEMENT: usize = 256;

/// `RECORD_JTI` for `rows` keys at once, answering the keys it recorded: inserted fresh or
/// taken over from an expired row (`RETURNING`); a live key (a replay) changes no row and
/// is not returned. `$1` is `now`; then key and expiry per row.
fn record_jtis_statement(rows: usize) -> String {
    let values: Vec<String> = (0..rows).map(|i| format!("(${}, ${})", 2 * i + 2, 2 * i + 3)).collect();
    format!(
        "INSERT INTO oauth_jti (jti_key, expires_at) VALUES {} \
         ON CONFLICT (jti_key) DO UPDATE SET expires_at = excluded.expires_at \
         WHERE oauth_jti.expires_at < $1 RETURNING jti_key",
        values.join(", ")
    )
}

impl SqlDataStore {
    /// Reads the one-time values still live at `now` back into `live` (when a SQLite store
    /// opens) from the tables of earlier versions: the log `oauth_jti_log` and the keyed
    /// `oauth_jti`. (The journal is read when it opens.)
    pub(super) async fn restore_jtis(pool: &sqlx::AnyPool, live: &LiveJtis, now: UnixTime) -> Result<(), StoreError> {
        /// Rows read per query.
        const PAGE: i64 = 10_000;
        for table in ["oauth_jti_log", "oauth_jti"] {
            let mut after = 0i64;
            loop {
                // Only the table name (one of two constants) is formatted in; values are bound.
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT rowid, jti_key, expires_at FROM {table} WHERE rowid > $1 AND expires_at >= $2 \
                     ORDER BY rowid LIMIT $3"
                ));
                let rows: Vec<(i64, String, i64)> = sqlx::query_as(sql)
                    .bind(after)
                    .bind(time_param(now))
                    .bind(PAGE)
                    .fetch_all(pool)
                    .await
                    .map_err(|e| backend_err("reading jtis", e))?;
                for (_, key, expires_at) in &rows {
                    live.restore(key, u64::try_from(*expires_at).unwrap_or(0));
                }
                match rows.last() {
                    Some((rowid, _, _)) if rows.len() as i64 == PAGE => after = *rowid,
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// [`JtiStore::record_jtis`] on SQLite: `live` decides which keys are fresh, then the
    /// fresh ones are appended to the journal in one write before anyone is answered; if
    /// the write fails, they are given back and the call fails.
    fn record_live(
        &self,
        live: &LiveJtis,
        keys: &[(String, UnixTime)],
        now: UnixTime,
    ) -> Result<Vec<bool>, StoreError> {
        let (fresh, claim) = live.claim(keys, now)?;
        if let Some(journal) = &self.jti_journal
            && !claim.is_empty()
            && let Err(e) = journal.append(claim.records(), now)
        {
            live.release(claim);
            return Err(e);
        }
        Ok(fresh)
    }

    /// The upserts of [`JtiStore::record_jtis`] on `conn`: distinct keys in `order` (sorted),
    /// [`ROWS_PER_STATEMENT`] per statement, one transaction when there is more than one
    /// statement. A key repeated within the batch is fresh at most at its first place.
    async fn record_jtis_on(
        &self,
        conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
        keys: &[(String, UnixTime)],
        order: &[usize],
        fresh: &mut [bool],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let fail = |e| backend_err("recording jtis", e);
        // The first place of each distinct key, in sorted order.
        let mut firsts: Vec<usize> = Vec::with_capacity(order.len());
        for &i in order {
            if firsts.last().is_none_or(|&last| keys[last].0 != keys[i].0) {
                firsts.push(i);
            } else if let Some(last) = firsts.last_mut()
                && i < *last
            {
                *last = i;
            }
        }
        if firsts.is_empty() {
            return Ok(());
        }
        // Only placeholders are generated; every value is bound.
        let upsert = |chunk: &[usize]| {
            let sql = sqlx::AssertSqlSafe(record_jtis_statement(chunk.len()));
            let mut query = sqlx::query(sql).bind(time_param(now));
            for &i in chunk {
                query = query.bind(keys[i].0.clone()).bind(time_param(keys[i].1));
            }
            query
        };
        let chunks: Vec<&[usize]> = firsts.chunks(ROWS_PER_STATEMENT).collect();
        let mut rows = Vec::new();
        if let [only] = chunks.as_slice() {
            rows = upsert(only).fetch_all(&mut **conn).await.map_err(fail)?;
        } else {
            let mut tx = sqlx::Connection::begin(&mut **conn).await.map_err(fail)?;
            for chunk in chunks {
                rows.extend(upsert(chunk).fetch_all(&mut *tx).await.map_err(fail)?);
            }
            tx.commit().await.map_err(commit_err)?;
        }
        let mut recorded = std::collections::HashSet::with_capacity(rows.len());
        for row in &rows {
            recorded.insert(column::<String>(row, "jti_key")?);
        }
        for i in firsts {
            fresh[i] = recorded.contains(&keys[i].0);
        }
        Ok(())
    }
}
