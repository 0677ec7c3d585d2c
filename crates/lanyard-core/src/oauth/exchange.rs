//! The decision at the heart of a token exchange (RFC 8693): who the issued token is about,
//! who acts, what it may do and until when, from the verified subject (and actor) token and
//! the client's policy. No I/O and no token formats: the authorization server verifies the
//! presented tokens, calls [`decide_exchange`], and issues whatever token type was asked for from the
//! [`ExchangeOutcome`].
//!
//! The rules (RFC 8693 §1.1, §4.1, §4.4, §5; draft-ietf-oauth-transaction-tokens-11 for the
//! scope rule):
//!
//! - **Delegation** (an actor is named): the issued token keeps the subject's `sub` and
//!   gains `act` naming the actor, with the subject token's own `act` chain nested inside it
//!   (outermost = current actor). When the subject token carries `may_act`, the actor must
//!   match it (`sub`, and `iss` when `may_act` names one). **Impersonation** (no actor): the
//!   issued token is about the subject and keeps the subject token's `act` chain, so an
//!   exchange never erases who already acted. The client's policy says which of the two it
//!   may ask for.
//! - **Scope** never grows: the requested scope must lie within the subject token's scope
//!   and the policy's; without a request, the intersection is issued. A subject token whose
//!   scope is unknown is limited by the policy alone, unless the caller requires a known
//!   scope (Txn-Tokens do: "MUST NOT treat it as unconstrained").
//! - **Lifetime**: the issued token never outlives the subject token (an expired subject
//!   token refuses), nor the policy's maximum.

use crate::error::Error;
use crate::oauth::access_token::{Actor, MAX_ACTOR_DEPTH};
use crate::oauth::scope::Scope;
use crate::oauth::txn_token::check_not_wider;
use crate::oauth::violation::{Violation, clip};
use crate::time::UnixTime;

/// What the verified subject token says, whatever its format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectToken {
    /// The subject (`sub`).
    pub sub: String,
    /// The issuer that identifies the subject, if known.
    pub iss: Option<String>,
    /// The scope the token grants; `None` when the format carries none (a JWT-SVID).
    pub scope: Option<Scope>,
    /// Expiry.
    pub exp: UnixTime,
    /// The actor chain already in the token.
    pub act: Option<Actor>,
    /// Who may act for the subject (`may_act`, RFC 8693 §4.4), when the token says.
    pub may_act: Option<Actor>,
}

/// What the client asked for and may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeRules {
    /// The client may ask for impersonation (no actor).
    pub allow_impersonation: bool,
    /// The client may ask for delegation (an actor).
    pub allow_delegation: bool,
    /// The widest scope the policy grants.
    pub policy_scope: Scope,
    /// Refuse a subject token whose scope is unknown.
    pub require_subject_scope: bool,
    /// The longest lifetime of the issued token, in seconds.
    pub max_ttl: u64,
}

/// Whose token the result is, who acts, the scope and the expiry to issue with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeOutcome {
    /// The issued token's `sub`: always the subject token's.
    pub sub: String,
    /// The issued token's `act`.
    pub act: Option<Actor>,
    /// The scope to issue.
    pub scope: Scope,
    /// The issued token's expiry.
    pub exp: UnixTime,
}

/// Decides a token exchange for `subject`, acted on by `actor` if any, asking for
/// `requested` scope, under `rules`, at `now` (see the module documentation).
pub fn decide_exchange(
    subject: &SubjectToken,
    actor: Option<&Actor>,
    requested: Option<&Scope>,
    rules: &ExchangeRules,
    now: UnixTime,
) -> Result<ExchangeOutcome, Error> {
    if now >= subject.exp {
        return Err(Error::Expired {
            exp: subject.exp.as_secs(),
            now: now.as_secs(),
        });
    }
    let act = match actor {
        Some(actor) => {
            if !rules.allow_delegation {
                return Err(Violation::ExchangeNotAllowed { mode: "delegation" }.into());
            }
            if let Some(may_act) = &subject.may_act {
                check_may_act(may_act, actor)?;
            }
            let chained = Actor {
                act: subject.act.clone().map(Box::new),
                ..actor.clone()
            };
            if chained.depth() > MAX_ACTOR_DEPTH {
                return Err(Error::invalid_claim(
                    "act",
                    format!("the delegation chain would be deeper than {MAX_ACTOR_DEPTH}"),
                ));
            }
            Some(chained)
        }
        None => {
            if !rules.allow_impersonation {
                return Err(Violation::ExchangeNotAllowed { mode: "impersonation" }.into());
            }
            subject.act.clone()
        }
    };
    let ceiling = match &subject.scope {
        Some(scope) => scope.intersection(&rules.policy_scope),
        None if rules.require_subject_scope => return Err(Violation::SubjectScopeUnknown.into()),
        None => rules.policy_scope.clone(),
    };
    let scope = match requested {
        Some(requested) => {
            if let Some(scope) = &subject.scope {
                check_not_wider(requested, scope)?;
            }
            check_not_wider(requested, &rules.policy_scope)?;
            requested.clone()
        }
        None => ceiling,
    };
    Ok(ExchangeOutcome {
        sub: subject.sub.clone(),
        act,
        scope,
        exp: subject.exp.min(now.plus(rules.max_ttl)),
    })
}

/// The actor must be the party `may_act` names: the same `sub`, and the same `iss` when
/// `may_act` names one (RFC 8693 §4.4).
fn check_may_act(may_act: &Actor, actor: &Actor) -> Result<(), Error> {
    let sub_matches = may_act.sub.is_some() && may_act.sub == actor.sub;
    let iss_matches = may_act.iss.is_none() || may_act.iss == actor.iss;
    if sub_matches && iss_matches {
        Ok(())
    } else {
        Err(Violation::MayActMismatch {
            actor: clip(actor.sub.as_deref().unwrap_or(""), 256),
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const NOW: UnixTime = UnixTime(1_000);

    fn subject() -> SubjectToken {
        SubjectToken {
            sub: "user-1".into(),
            iss: Some("https://idp.example".into()),
            scope: Some(Scope::parse("read write").unwrap()),
            exp: UnixTime(1_300),
            act: None,
            may_act: None,
        }
    }

    fn rules() -> ExchangeRules {
        ExchangeRules {
            allow_impersonation: true,
            allow_delegation: true,
            policy_scope: Scope::parse("read write admin").unwrap(),
            require_subject_scope: false,
            max_ttl: 600,
        }
    }

    #[test]
    fn delegation_nests_the_previous_chain() {
        let mut s = subject();
        s.act = Some(Actor::new("spiffe://example.org/gateway"));
        let agent = Actor::new("spiffe://example.org/agent");
        let out = decide_exchange(&s, Some(&agent), None, &rules(), NOW).unwrap();
        assert_eq!(out.sub, "user-1");
        let chain: Vec<_> = out
            .act
            .as_ref()
            .unwrap()
            .chain()
            .filter_map(|a| a.sub.as_deref())
            .collect();
        assert_eq!(chain, ["spiffe://example.org/agent", "spiffe://example.org/gateway"]);
        assert_eq!(out.scope, Scope::parse("read write").unwrap());
        assert_eq!(out.exp, UnixTime(1_300), "never outlives the subject token");
    }

    #[test]
    fn impersonation_keeps_who_already_acted() {
        let mut s = subject();
        s.act = Some(Actor::new("spiffe://example.org/gateway"));
        let out = decide_exchange(&s, None, Some(&Scope::parse("read").unwrap()), &rules(), NOW).unwrap();
        assert_eq!(out.act, s.act);
        assert_eq!(out.scope, Scope::parse("read").unwrap());
        let short = ExchangeRules { max_ttl: 60, ..rules() };
        assert_eq!(
            decide_exchange(&s, None, None, &short, NOW).unwrap().exp,
            UnixTime(1_060)
        );
    }

    #[test]
    fn may_act_names_the_actor() {
        let mut s = subject();
        s.may_act = Some(Actor {
            iss: Some("https://as.example".into()),
            ..Actor::new("agent")
        });
        let right = Actor {
            iss: Some("https://as.example".into()),
            ..Actor::new("agent")
        };
        decide_exchange(&s, Some(&right), None, &rules(), NOW).unwrap();
        for wrong in [
            Actor::new("agent"),
            Actor::new("other"),
            Actor {
                iss: Some("https://elsewhere.example".into()),
                ..Actor::new("agent")
            },
        ] {
            assert_eq!(
                decide_exchange(&s, Some(&wrong), None, &rules(), NOW)
                    .unwrap_err()
                    .kind(),
                "may_act_mismatch"
            );
        }
    }

    #[test]
    fn policy_scope_and_time_refusals() {
        let agent = Actor::new("agent");
        let only_impersonation = ExchangeRules {
            allow_delegation: false,
            ..rules()
        };
        assert_eq!(
            decide_exchange(&subject(), Some(&agent), None, &only_impersonation, NOW).unwrap_err(),
            Error::OAuth(Violation::ExchangeNotAllowed { mode: "delegation" })
        );
        let only_delegation = ExchangeRules {
            allow_impersonation: false,
            ..rules()
        };
        assert_eq!(
            decide_exchange(&subject(), None, None, &only_delegation, NOW).unwrap_err(),
            Error::OAuth(Violation::ExchangeNotAllowed { mode: "impersonation" })
        );
        let wider = Scope::parse("read admin").unwrap();
        assert_eq!(
            decide_exchange(&subject(), None, Some(&wider), &rules(), NOW)
                .unwrap_err()
                .kind(),
            "scope_widened"
        );
        let mut unscoped = subject();
        unscoped.scope = None;
        assert_eq!(
            decide_exchange(&unscoped, None, Some(&wider), &rules(), NOW)
                .unwrap()
                .scope,
            wider,
            "a subject without scope is limited by the policy"
        );
        let strict = ExchangeRules {
            require_subject_scope: true,
            ..rules()
        };
        assert_eq!(
            decide_exchange(&unscoped, None, None, &strict, NOW).unwrap_err().kind(),
            "subject_scope_unknown"
        );
        assert_eq!(
            decide_exchange(&subject(), None, None, &rules(), UnixTime(1_300))
                .unwrap_err()
                .kind(),
            "expired"
        );
    }
}
