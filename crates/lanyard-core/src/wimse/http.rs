//! Carrying a WIT and its WPT in HTTP.
//!
//! The WIT always travels in `Workload-Identity-Token` (workload-creds-02 §5.2). The WPT
//! travels in `Authorization: WPT <jwt>` (draft-ietf-wimse-wpt editor's copy after PR
//! #287, the newest form, and the default); the older `Workload-Proof-Token` header of
//! wpt-01 is accepted only when [`CarriageConfig::accept_legacy_header`] is on.

use crate::error::Error;

/// `Workload-Identity-Token`.
pub const WORKLOAD_IDENTITY_TOKEN: &str = "Workload-Identity-Token";
/// `Workload-Proof-Token` (wpt-01; compatibility only).
pub const WORKLOAD_PROOF_TOKEN: &str = "Workload-Proof-Token";
/// `Authorization`.
pub const AUTHORIZATION: &str = "Authorization";
/// `Txn-Token` (draft-ietf-oauth-transaction-tokens).
pub const TXN_TOKEN: &str = "Txn-Token";
/// The `Authorization` scheme for WPTs; also the `WWW-Authenticate` challenge on failure.
pub const WPT_SCHEME: &str = "WPT";

/// Where the WPT was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WptCarriage {
    /// `Authorization: WPT <jwt>` (newest).
    Authorization,
    /// `Workload-Proof-Token: <jwt>` (wpt-01).
    LegacyHeader,
}

/// How a receiver reads credentials from headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct CarriageConfig {
    /// Also accept the wpt-01 `Workload-Proof-Token` header (off by default).
    pub accept_legacy_header: bool,
}

/// The credentials found in a request's headers (not yet verified).
#[derive(Clone, Copy, Debug)]
pub struct PresentedCredentials<'a> {
    /// The WIT.
    pub wit: &'a str,
    /// The WPT.
    pub wpt: &'a str,
    /// Where the WPT was.
    pub carriage: WptCarriage,
    /// A bearer access token (only possible with the legacy carriage, where
    /// `Authorization` is free for it).
    pub access_token: Option<&'a str>,
    /// A `Txn-Token` header.
    pub txn_token: Option<&'a str>,
}

/// Finds the WIT, the WPT and the tokens they may bind among `headers`
/// (name, value pairs; names compared case-insensitively). A header that must appear
/// once but appears twice rejects, as does a WPT carried in two places.
pub fn extract_credentials<'a, I>(headers: I, config: &CarriageConfig) -> Result<PresentedCredentials<'a>, Error>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let mut wit = None;
    let mut authorization = None;
    let mut legacy = None;
    let mut txn = None;
    for (name, value) in headers {
        let (slot, canonical) = if name.eq_ignore_ascii_case(WORKLOAD_IDENTITY_TOKEN) {
            (&mut wit, WORKLOAD_IDENTITY_TOKEN)
        } else if name.eq_ignore_ascii_case(AUTHORIZATION) {
            (&mut authorization, AUTHORIZATION)
        } else if name.eq_ignore_ascii_case(WORKLOAD_PROOF_TOKEN) {
            (&mut legacy, WORKLOAD_PROOF_TOKEN)
        } else if name.eq_ignore_ascii_case(TXN_TOKEN) {
            (&mut txn, TXN_TOKEN)
        } else {
            continue;
        };
        if slot.is_some() {
            return Err(Error::Header {
                name: canonical,
                reason: "appears more than once",
            });
        }
        *slot = Some(visible_ascii(canonical, value)?);
    }
    let wit = wit.ok_or(Error::Header {
        name: WORKLOAD_IDENTITY_TOKEN,
        reason: "missing",
    })?;
    let legacy = match legacy {
        Some(_) if !config.accept_legacy_header => {
            return Err(Error::Header {
                name: WORKLOAD_PROOF_TOKEN,
                reason: "the wpt-01 header is not accepted; send Authorization: WPT",
            });
        }
        other => other,
    };
    let (scheme, credentials) = match authorization {
        Some(v) => {
            let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
            (Some(scheme), rest.trim_start_matches(' '))
        }
        None => (None, ""),
    };
    let (wpt, carriage, access_token) = match (scheme, legacy) {
        (Some(s), None) if s.eq_ignore_ascii_case(WPT_SCHEME) => (credentials, WptCarriage::Authorization, None),
        (Some(s), Some(_)) if s.eq_ignore_ascii_case(WPT_SCHEME) => {
            return Err(Error::Header {
                name: WORKLOAD_PROOF_TOKEN,
                reason: "a second WPT was sent alongside Authorization: WPT",
            });
        }
        (Some(s), Some(l)) if s.eq_ignore_ascii_case("Bearer") => (l, WptCarriage::LegacyHeader, Some(credentials)),
        (None, Some(l)) => (l, WptCarriage::LegacyHeader, None),
        (Some(_), _) => {
            return Err(Error::Header {
                name: AUTHORIZATION,
                reason: "expected the WPT scheme",
            });
        }
        (None, None) => {
            return Err(Error::Header {
                name: AUTHORIZATION,
                reason: "missing (no WPT was sent)",
            });
        }
    };
    if wpt.is_empty() {
        return Err(Error::Header {
            name: AUTHORIZATION,
            reason: "the WPT credentials are empty",
        });
    }
    Ok(PresentedCredentials {
        wit,
        wpt,
        carriage,
        access_token: access_token.filter(|t| !t.is_empty()),
        txn_token: txn,
    })
}

fn visible_ascii<'a>(name: &'static str, value: &'a [u8]) -> Result<&'a str, Error> {
    let s = std::str::from_utf8(value)
        .ok()
        .filter(|s| s.bytes().all(|b| (0x20..0x7f).contains(&b)));
    s.map(|s| s.trim_matches(' ')).ok_or(Error::Header {
        name,
        reason: "value is not visible ASCII",
    })
}

/// The headers that carry `wit` and `wpt` in the given form.
pub fn proof_headers(wit: &str, wpt: &str, carriage: WptCarriage) -> [(&'static str, String); 2] {
    let proof = match carriage {
        WptCarriage::Authorization => (AUTHORIZATION, format!("{WPT_SCHEME} {wpt}")),
        WptCarriage::LegacyHeader => (WORKLOAD_PROOF_TOKEN, wpt.to_owned()),
    };
    [(WORKLOAD_IDENTITY_TOKEN, wit.to_owned()), proof]
}

/// The WPT audience for a target URI: the URI without its query and fragment.
pub fn audience_for(target_uri: &str) -> &str {
    let end = target_uri.find(['?', '#']).unwrap_or(target_uri.len());
    &target_uri[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract<'a>(h: &'a [(&'a str, &'a str)], legacy: bool) -> Result<PresentedCredentials<'a>, Error> {
        extract_credentials(
            h.iter().map(|(n, v)| (*n, v.as_bytes())),
            &CarriageConfig {
                accept_legacy_header: legacy,
            },
        )
    }

    #[test]
    fn authorization_form() {
        let c = extract(
            &[("workload-identity-token", "w.w.w"), ("authorization", "wpt p.p.p")],
            false,
        )
        .unwrap();
        assert_eq!(
            (c.wit, c.wpt, c.carriage),
            ("w.w.w", "p.p.p", WptCarriage::Authorization)
        );
    }

    #[test]
    fn legacy_form_needs_the_switch() {
        let h = [
            ("Workload-Identity-Token", "w.w.w"),
            ("Workload-Proof-Token", "p.p.p"),
            ("Authorization", "Bearer at"),
        ];
        assert_eq!(extract(&h, false).unwrap_err().kind(), "header");
        let c = extract(&h, true).unwrap();
        assert_eq!(
            (c.wpt, c.carriage, c.access_token),
            ("p.p.p", WptCarriage::LegacyHeader, Some("at"))
        );
    }

    #[test]
    fn rejects_duplicates_and_missing() {
        let dup = [
            ("Workload-Identity-Token", "a"),
            ("workload-identity-token", "b"),
            ("Authorization", "WPT x"),
        ];
        assert!(matches!(
            extract(&dup, false),
            Err(Error::Header {
                reason: "appears more than once",
                ..
            })
        ));
        let missing = [("Authorization", "WPT x")];
        assert!(matches!(
            extract(&missing, false),
            Err(Error::Header {
                name: WORKLOAD_IDENTITY_TOKEN,
                ..
            })
        ));
        let bearer = [("Workload-Identity-Token", "a"), ("Authorization", "Bearer x")];
        assert!(matches!(
            extract(&bearer, false),
            Err(Error::Header {
                name: AUTHORIZATION,
                ..
            })
        ));
        let both = [
            ("Workload-Identity-Token", "a"),
            ("Authorization", "WPT x"),
            ("Workload-Proof-Token", "y"),
        ];
        assert!(extract(&both, true).is_err());
        let binary = [("Workload-Identity-Token", "a\u{7f}"), ("Authorization", "WPT x")];
        assert!(extract(&binary, false).is_err());
    }

    #[test]
    fn audience() {
        assert_eq!(
            audience_for("https://svc.example/path?q=1#f"),
            "https://svc.example/path"
        );
        let [(n1, _), (n2, v2)] = proof_headers("w", "p", WptCarriage::Authorization);
        assert_eq!((n1, n2, v2.as_str()), (WORKLOAD_IDENTITY_TOKEN, AUTHORIZATION, "WPT p"));
    }
}
