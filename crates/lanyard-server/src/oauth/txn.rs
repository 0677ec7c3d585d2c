//! The Transaction Token Service (draft-ietf-oauth-transaction-tokens-11): a token exchange
//! with `requested_token_type=urn:ietf:params:oauth:token-type:txn_token` answers a
//! `txntoken+jwt`.
//!
//! The TTS and the authorization server are one service and share keys: Txn-Tokens are
//! signed with the ACTIVE access-token key and verified with the access-token JWK Set
//! (`/oauth/jwks`), so a workload's Txn-Token layer trusts that JWK Set. The `typ` keeps
//! the two token kinds apart (an `at+jwt` is never accepted as a Txn-Token, nor the
//! reverse).
//!
//! Request (draft §"Txn-Token Request"): the client must be allowed Txn-Tokens by its
//! policy; `audience` is required and must be exactly the server's trust domain
//! (`invalid_target` otherwise; no `resource`); `scope` is required; no `actor_token` (the
//! requester is the authenticated client); `subject_token` an access token or JWT-SVID as
//! for any exchange, or a Txn-Token for a replacement. `request_details` becomes `tctx`,
//! `request_context` `rctx` (JSON objects, form-encoded, at most 8 KiB each).
//!
//! Token: `aud` the trust domain, a fresh random `txn`, `sub` the subject token's, `scope`
//! within the subject token's and the client's registered scopes (a subject token without
//! a known scope, such as a JWT-SVID, is refused: the draft forbids treating it as
//! unconstrained), `req_wl` the client's SPIFFE ID (or `client_id`), `iss` this issuer,
//! the subject token's `act` chain kept as `act`, lifetime `[oauth] txn_token_ttl` (60 s by
//! default) and never beyond the subject token. Response: `token_type` `N_A`,
//! `issued_token_type` `...:txn_token`, no refresh token.
//!
//! Replacement (draft §"Replacing Txn-Tokens"): the Txn-Token is verified with this
//! server's keys and trust domain; the new one keeps `txn`, `sub` and `aud`
//! (`check_replacement` refuses anything else), never widens `scope`, is never issued from
//! an expired token, keeps `tctx` (a `request_details` may add members, never change one)
//! and names the replacing workload in `req_wl`. The call chain of requesting workloads is
//! kept inside the TTS, as the draft asks (no array-valued `req_wl`): one audit line per
//! Txn-Token names the `txn` and the chain so far ([`TxnChains`], in memory per replica
//! and bounded; on a replica that has not seen the `txn`, the chain starts from the
//! replaced token's `req_wl`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use lanyard_core::UnixTime;
use lanyard_core::oauth::{
    AccessTokenType, ExchangeRules, TokenExchange, TokenRequest, TokenResponse, TokenTypeUri, TxnTokenClaims,
    VerifiedDpopProof, Violation, check_replacement, decide_exchange, issue_txn_token, parse_context_object,
};
use serde_json::{Map, Value};

use super::AuthorizationServer;
use super::client_auth::AuthenticatedClient;
use super::error::OAuthError;
use super::exchange::requesting_workload;
use super::grant::{TokenOutcome, registered_scope};
use crate::model::AuthorityKind;

/// The most transactions whose call chain a replica remembers.
const MAX_CHAINS: usize = 100_000;

/// The longest call chain remembered per transaction (the oldest hops are dropped).
const MAX_CHAIN_LEN: usize = 64;

/// The call chain of requesting workloads per `txn`, until the last Txn-Token of the
/// transaction expires.
#[derive(Debug, Default)]
pub(crate) struct TxnChains {
    chains: Mutex<HashMap<String, (UnixTime, Vec<String>)>>,
}

impl TxnChains {
    /// Appends `req_wl` to `txn`'s chain (starting it with `previous` when this replica
    /// has not seen the transaction), keeps it until `until`, and returns the chain.
    fn record(&self, txn: &str, previous: Option<&str>, req_wl: &str, until: UnixTime, now: UnixTime) -> Vec<String> {
        let mut chains = self.chains.lock().unwrap_or_else(PoisonError::into_inner);
        if chains.len() >= MAX_CHAINS {
            make_room(&mut chains, now);
        }
        let entry = chains
            .entry(txn.to_owned())
            .or_insert_with(|| (until, previous.map(str::to_owned).into_iter().collect()));
        entry.0 = entry.0.max(until);
        entry.1.push(req_wl.to_owned());
        if entry.1.len() > MAX_CHAIN_LEN {
            entry.1.remove(0);
        }
        entry.1.clone()
    }
}

/// Called when `chains` is full: drops the expired transactions and, if more than half of
/// [`MAX_CHAINS`] are still live, the ones that expire soonest, down to half. So the next
/// sweep is at least `MAX_CHAINS / 2` new transactions away (each costs O(1) amortized,
/// where sweeping whenever full cost a pass over 100 000 entries per request under a
/// sustained load), and the chains forgotten are those closest to their end. A forgotten
/// transaction's chain starts again from the replaced token's `req_wl`, as on a replica
/// that never saw it.
fn make_room(chains: &mut HashMap<String, (UnixTime, Vec<String>)>, now: UnixTime) {
    chains.retain(|_, (expiry, _)| *expiry > now);
    let keep = MAX_CHAINS / 2;
    if chains.len() > keep {
        let mut expiries: Vec<UnixTime> = chains.values().map(|(expiry, _)| *expiry).collect();
        let drop = expiries.len() - keep;
        let (_, threshold, _) = expiries.select_nth_unstable(drop - 1);
        let threshold = *threshold;
        chains.retain(|_, (expiry, _)| *expiry > threshold);
    }
}

impl AuthorizationServer {
    /// Serves a Txn-Token request (see the module documentation).
    pub(crate) async fn txn_token(
        &self,
        request: &TokenRequest,
        exchange: &TokenExchange,
        client: &AuthenticatedClient,
        dpop: Option<&VerifiedDpopProof>,
        now: UnixTime,
    ) -> Result<TokenOutcome, OAuthError> {
        let spec = &client.client.spec;
        if !spec.exchange.txn_tokens {
            return Err(OAuthError::Exchange(
                Violation::ExchangeNotAllowed { mode: "Txn-Tokens" }.into(),
            ));
        }
        if exchange.actor.is_some() {
            return Err(OAuthError::Request(
                Violation::InvalidParameter {
                    name: "actor_token",
                    reason: "a Txn-Token request names no actor: the requester is the authenticated client".into(),
                }
                .into(),
            ));
        }
        let trust_domain = self.state.trust_domain.name();
        match (request.audiences.as_slice(), request.resources.is_empty()) {
            ([], true) => return Err(OAuthError::Request(Violation::MissingParameter("audience").into())),
            ([one], true) if one == trust_domain => {}
            _ => {
                return Err(OAuthError::InvalidTarget(format!(
                    "a Txn-Token's audience is the trust domain {trust_domain:?}, alone"
                )));
            }
        }
        let requested = request
            .scope
            .as_ref()
            .ok_or_else(|| OAuthError::Request(Violation::MissingParameter("scope").into()))?;
        let details = context(exchange.request_details.as_deref(), "request_details")?;
        let context_object = context(exchange.request_context.as_deref(), "request_context")?;
        let presented = self.verify_subject(exchange, client, dpop, now).await?;
        let rules = ExchangeRules {
            allow_impersonation: true,
            allow_delegation: false,
            policy_scope: registered_scope(spec)?,
            require_subject_scope: true,
            max_ttl: self.state.config.oauth.txn_token_ttl,
        };
        let outcome =
            decide_exchange(&presented.subject, None, Some(requested), &rules, now).map_err(OAuthError::Exchange)?;
        let ttl = outcome
            .exp
            .as_secs()
            .saturating_sub(now.as_secs())
            .min(self.state.keys.max_ttl(AuthorityKind::AccessToken, now).await?);
        let req_wl = requesting_workload(client);
        let mut extra = Map::new();
        // The acting chain rides along for the services (recipients ignore claims they do
        // not understand, draft -11 §"Txn-Token Format").
        if let Some(act) = outcome.act.as_ref().and_then(|a| serde_json::to_value(a).ok()) {
            extra.insert("act".into(), act);
        }
        let claims = match &presented.txn {
            Some(previous) => {
                let claims = TxnTokenClaims {
                    iss: Some(self.issuer.clone()),
                    iat: now,
                    exp: now.plus(ttl),
                    aud: previous.aud.clone(),
                    txn: previous.txn.clone(),
                    sub: previous.sub.clone(),
                    scope: outcome.scope.clone(),
                    req_wl: req_wl.clone(),
                    tctx: merge_tctx(previous.tctx.as_ref(), details)?,
                    rctx: context_object.or_else(|| previous.rctx.clone()),
                    extra,
                };
                check_replacement(previous, &claims, now).map_err(OAuthError::Exchange)?;
                claims
            }
            None => TxnTokenClaims {
                iss: Some(self.issuer.clone()),
                iat: now,
                exp: now.plus(ttl),
                aud: trust_domain.to_owned(),
                txn: self.random_id()?,
                sub: outcome.sub.clone(),
                scope: outcome.scope.clone(),
                req_wl: req_wl.clone(),
                tctx: details,
                rctx: context_object,
                extra,
            },
        };
        let (key, kid) = self.state.keys.access_token_signer().await?;
        let token = issue_txn_token(key.as_ref(), &kid, &claims).map_err(OAuthError::Issue)?;
        let previous_wl = presented.txn.as_ref().map(|p| p.req_wl.as_str());
        let chain = self
            .txn_chains
            .record(&claims.txn, previous_wl, &req_wl, claims.exp, now);
        crate::audit::txn_token(
            &claims.txn,
            &claims.sub,
            &claims.scope.to_string(),
            &chain,
            presented.txn.is_some(),
        );
        Ok(TokenOutcome {
            response: TokenResponse {
                access_token: token,
                token_type: AccessTokenType::NotApplicable,
                expires_in: Some(ttl),
                scope: Some(claims.scope.clone()),
                issued_token_type: Some(TokenTypeUri::TxnToken),
            },
            jti: claims.txn,
        })
    }
}

/// Reads an optional `request_details` / `request_context` parameter.
fn context(value: Option<&str>, name: &'static str) -> Result<Option<Map<String, Value>>, OAuthError> {
    value
        .map(|v| parse_context_object(name, v))
        .transpose()
        .map_err(OAuthError::Request)
}

/// A replacement's `tctx`: the replaced token's, with members `details` adds; changing a
/// member is refused (the transaction context is immutable).
fn merge_tctx(
    previous: Option<&Map<String, Value>>,
    details: Option<Map<String, Value>>,
) -> Result<Option<Map<String, Value>>, OAuthError> {
    let Some(details) = details else {
        return Ok(previous.cloned());
    };
    let mut merged = previous.cloned().unwrap_or_default();
    for (name, value) in details {
        match merged.get(&name) {
            Some(old) if *old != value => {
                return Err(OAuthError::Request(
                    Violation::InvalidParameter {
                        name: "request_details",
                        reason: format!("a replacement must not change the transaction context member {name:?}"),
                    }
                    .into(),
                ));
            }
            Some(_) => {}
            None => {
                merged.insert(name, value);
            }
        }
    }
    Ok(Some(merged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_chain_grows_per_txn() {
        let chains = TxnChains::default();
        let now = UnixTime(1_000);
        assert_eq!(chains.record("t1", None, "gw", UnixTime(1_060), now), ["gw"]);
        assert_eq!(
            chains.record("t1", Some("gw"), "agent", UnixTime(1_070), now),
            ["gw", "agent"]
        );
        assert_eq!(chains.record("t2", None, "gw", UnixTime(1_060), now), ["gw"]);
        // A replica that never saw the transaction starts from the replaced token's req_wl.
        let other = TxnChains::default();
        assert_eq!(
            other.record("t1", Some("agent"), "tool", UnixTime(1_080), now),
            ["agent", "tool"]
        );
    }

    #[test]
    fn a_full_set_of_chains_forgets_the_soonest_to_expire_half() {
        let chains = TxnChains::default();
        let now = UnixTime(1_000);
        // All live; transaction i expires at 2000 + i.
        for i in 0..MAX_CHAINS as u64 {
            chains.record(&format!("t{i}"), None, "gw", UnixTime(2_000 + i), now);
        }
        chains.record("new", None, "gw", UnixTime(9_000_000), now);
        let map = chains.chains.lock().unwrap();
        assert!(map.len() <= MAX_CHAINS / 2 + 1, "{}", map.len());
        assert!(map.contains_key("new"));
        // The latest-expiring ones are kept, the soonest dropped.
        assert!(map.contains_key(&format!("t{}", MAX_CHAINS - 1)));
        assert!(!map.contains_key("t0"));
    }

    #[test]
    fn tctx_members_are_added_never_changed() {
        let object = |v: serde_json::Value| match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let previous = object(serde_json::json!({"action": "BUY"}));
        let merged = merge_tctx(
            Some(&previous),
            Some(object(serde_json::json!({"qty": "1", "action": "BUY"}))),
        )
        .ok()
        .flatten()
        .unwrap_or_default();
        assert_eq!(merged.len(), 2);
        let refused = merge_tctx(Some(&previous), Some(object(serde_json::json!({"action": "SELL"}))));
        assert!(matches!(refused, Err(OAuthError::Request(_))));
        assert_eq!(merge_tctx(Some(&previous), None).ok().flatten(), Some(previous));
    }
}
