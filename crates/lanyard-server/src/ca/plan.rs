//! The rotation decision, as a pure function of one kind's stored authorities and the
//! time: [`plan`] returns the next single step to take, or `None` when the state is
//! settled. The key manager applies a step, re-reads the datastore and plans again, so
//! every decision is taken on fresh data (see the replica notes in [`super`]).

use std::cmp::Ordering;

use lanyard_core::UnixTime;

use crate::model::{Authority, AuthorityStatus};

/// Seconds in a day.
const DAY: u64 = 86_400;

/// One change to a kind's authorities.
#[derive(Debug)]
pub(super) enum Step {
    /// Several authorities are ACTIVE (replicas raced): all but the winner become OLD.
    /// OLD, not deleted: a loser may already have signed something on its replica.
    Demote(Vec<Authority>),
    /// Delete these: PREPARED duplicates (only the winner is kept; none of them has
    /// signed anything), expired PREPARED ones, and OLD ones past their retention.
    Remove(Vec<Authority>),
    /// `next` (PREPARED) becomes ACTIVE; `retire` (the current ACTIVE, if any) becomes
    /// OLD first.
    Activate {
        /// The PREPARED authority to activate.
        next: Box<Authority>,
        /// The ACTIVE authority it replaces.
        retire: Option<Box<Authority>>,
    },
    /// Create a new authority with this status; `retire` (an expired ACTIVE) becomes OLD
    /// first.
    Create {
        /// `Active` (nothing usable signs) or `Prepared`.
        status: AuthorityStatus,
        /// The expired ACTIVE authority it replaces.
        retire: Option<Box<Authority>>,
    },
}

/// The winner order among authorities of one status: earliest `not_before`, then smallest
/// ID. Every replica computes the same winner from the same rows.
pub(super) fn precedence(a: &Authority, b: &Authority) -> Ordering {
    a.not_before.cmp(&b.not_before).then_with(|| a.id.cmp(&b.id))
}

fn lifetime(a: &Authority) -> u64 {
    a.not_after.as_secs().saturating_sub(a.not_before.as_secs())
}

/// When the successor of `a` is prepared: `notAfter − min(lifetime/2, 30 d)`.
pub(super) fn prepare_at(a: &Authority) -> UnixTime {
    a.not_after.minus((lifetime(a) / 2).min(30 * DAY))
}

/// When the successor of `a` takes over: `notAfter − min(lifetime/6, 7 d)`.
pub(super) fn activate_at(a: &Authority) -> UnixTime {
    a.not_after.minus((lifetime(a) / 6).min(7 * DAY))
}

/// Whether an OLD authority can go: what it signed expired at its notAfter at the
/// latest, and `max_credential_ttl` more is kept as a margin.
fn retention_over(a: &Authority, now: UnixTime, max_credential_ttl: u64) -> bool {
    a.not_after.plus(max_credential_ttl) < now
}

/// The next step for one kind's authorities (all of one kind), or `None` if settled.
pub(super) fn plan(list: &[Authority], now: UnixTime, max_credential_ttl: u64) -> Option<Step> {
    let mut active: Vec<&Authority> = list.iter().filter(|a| a.status == AuthorityStatus::Active).collect();
    let mut prepared: Vec<&Authority> = list.iter().filter(|a| a.status == AuthorityStatus::Prepared).collect();
    active.sort_by(|a, b| precedence(a, b));
    prepared.sort_by(|a, b| precedence(a, b));

    // 1. Replicas raced to activate: keep the winner only.
    if active.len() > 1 {
        return Some(Step::Demote(active[1..].iter().map(|a| (*a).clone()).collect()));
    }
    // 2. Useless PREPARED ones: losers of a race, and expired ones.
    let (usable_prepared, useless): (Vec<&Authority>, Vec<&Authority>) =
        prepared.into_iter().partition(|p| now < p.not_after);
    let mut remove: Vec<Authority> = useless.into_iter().cloned().collect();
    remove.extend(usable_prepared.iter().skip(1).map(|p| (*p).clone()));
    // 3. OLD ones whose credentials have all expired.
    remove.extend(
        list.iter()
            .filter(|a| a.status == AuthorityStatus::Old && retention_over(a, now, max_credential_ttl))
            .cloned(),
    );
    if !remove.is_empty() {
        return Some(Step::Remove(remove));
    }
    let next = usable_prepared.first().map(|p| Box::new((*p).clone()));
    // 4. The lifecycle.
    match active.first() {
        // Nothing signs: the prepared one takes over at once, or a new one is created
        // active (first start, or a replica down past its CA's expiry).
        None => Some(match next {
            Some(next) => Step::Activate { next, retire: None },
            None => Step::Create {
                status: AuthorityStatus::Active,
                retire: None,
            },
        }),
        Some(current) if now >= current.not_after => {
            let retire = Some(Box::new((*current).clone()));
            Some(match next {
                Some(next) => Step::Activate { next, retire },
                None => Step::Create {
                    status: AuthorityStatus::Active,
                    retire,
                },
            })
        }
        Some(current) => match next {
            Some(next) if now >= activate_at(current) => Some(Step::Activate {
                next,
                retire: Some(Box::new((*current).clone())),
            }),
            None if now >= prepare_at(current) => Some(Step::Create {
                status: AuthorityStatus::Prepared,
                retire: None,
            }),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AuthorityKind;

    const H: u64 = 3600;
    const T0: u64 = 1_800_000_000;

    fn auth(id: &str, status: AuthorityStatus, nb: u64, na: u64) -> Authority {
        Authority {
            id: id.into(),
            kind: AuthorityKind::Jwt,
            status,
            public: Vec::new(),
            private_key: Vec::new(),
            not_before: UnixTime(nb),
            not_after: UnixTime(na),
        }
    }

    fn at(h: u64) -> UnixTime {
        UnixTime(T0 + h * H)
    }

    #[test]
    fn schedule_of_a_day_long_authority() {
        let a = auth("a", AuthorityStatus::Active, T0, T0 + 24 * H);
        assert_eq!(prepare_at(&a), at(12));
        assert_eq!(activate_at(&a), at(20));
        // Long-lived authorities are capped at 30 d / 7 d before expiry.
        let long = auth("l", AuthorityStatus::Active, T0, T0 + 365 * DAY);
        assert_eq!(prepare_at(&long), UnixTime(T0 + 335 * DAY));
        assert_eq!(activate_at(&long), UnixTime(T0 + 358 * DAY));
    }

    #[test]
    fn lifecycle_steps() {
        let a = auth("a", AuthorityStatus::Active, T0, T0 + 24 * H);
        assert!(matches!(
            plan(&[], at(0), H),
            Some(Step::Create {
                status: AuthorityStatus::Active,
                retire: None
            })
        ));
        assert!(plan(std::slice::from_ref(&a), at(11), H).is_none());
        assert!(matches!(
            plan(std::slice::from_ref(&a), at(12), H),
            Some(Step::Create {
                status: AuthorityStatus::Prepared,
                ..
            })
        ));
        let p = auth("p", AuthorityStatus::Prepared, T0 + 12 * H, T0 + 36 * H);
        assert!(plan(&[a.clone(), p.clone()], at(19), H).is_none());
        match plan(&[a.clone(), p.clone()], at(20), H) {
            Some(Step::Activate { next, retire }) => {
                assert_eq!(next.id, "p");
                assert_eq!(retire.map(|r| r.id), Some("a".into()));
            }
            other => panic!("{other:?}"),
        }
        let old = auth("a", AuthorityStatus::Old, T0, T0 + 24 * H);
        let p_active = auth("p", AuthorityStatus::Active, T0 + 12 * H, T0 + 36 * H);
        // At 25 h the old one is still kept (the step due is the new one's successor,
        // prepared from 24 h on); at 25 h + 1 s it is past notAfter + max credential TTL,
        // and removal comes first.
        assert!(matches!(
            plan(&[old.clone(), p_active.clone()], UnixTime(T0 + 25 * H), H),
            Some(Step::Create {
                status: AuthorityStatus::Prepared,
                ..
            })
        ));
        match plan(&[old, p_active], UnixTime(T0 + 25 * H + 1), H) {
            Some(Step::Remove(v)) => assert_eq!(v.len(), 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn races_and_downtime() {
        let a = auth("a", AuthorityStatus::Active, T0, T0 + 24 * H);
        let b = auth("b", AuthorityStatus::Active, T0, T0 + 24 * H);
        match plan(&[b.clone(), a.clone()], at(0), H) {
            Some(Step::Demote(v)) => assert_eq!(v.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), ["b"]),
            other => panic!("{other:?}"),
        }
        let p1 = auth("p1", AuthorityStatus::Prepared, T0 + 12 * H, T0 + 36 * H);
        let p2 = auth("p2", AuthorityStatus::Prepared, T0 + 12 * H, T0 + 36 * H);
        match plan(&[a.clone(), p2, p1], at(12), H) {
            Some(Step::Remove(v)) => assert_eq!(v.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), ["p2"]),
            other => panic!("{other:?}"),
        }
        // Down past expiry without a prepared one: retire and create active.
        match plan(std::slice::from_ref(&a), at(30), H) {
            Some(Step::Create {
                status: AuthorityStatus::Active,
                retire: Some(r),
            }) => assert_eq!(r.id, "a"),
            other => panic!("{other:?}"),
        }
    }
}
