//! Carrying a WIT and its WPT in HTTP.
//!
//! The WIT always travels in `Workload-Identity-Token` (workload-creds-02 §5.1.1). The WPT
//! travels in `Authorization: WPT <token68>` (draft-ietf-wimse-wpt-02 §2: exactly one
//! `Authorization` field, the scheme case-insensitive, the credentials `token68`). A WPT
//! cannot share the request with a `Bearer` or `DPoP` access token (§2.2): a second
//! `Authorization` field with such a token, or a `DPoP` proof header, is refused as
//! [`Error::AccessTokenWithWpt`], and the token is never returned. The wpt-01
//! `Workload-Proof-Token` header (with an `ath`-bound `Authorization: Bearer` beside it)
//! is accepted only when [`CarriageConfig::accept_legacy_header`] is on; otherwise it is
//! [`Error::LegacyWptHeader`].

use crate::error::Error;

/// `Workload-Identity-Token`.
pub const WORKLOAD_IDENTITY_TOKEN: &str = "Workload-Identity-Token";
/// `Workload-Proof-Token` (wpt-01; compatibility only).
pub const WORKLOAD_PROOF_TOKEN: &str = "Workload-Proof-Token";
/// `Authorization`.
pub const AUTHORIZATION: &str = "Authorization";
/// `Txn-Token` (draft-ietf-oauth-transaction-tokens).
pub const TXN_TOKEN: &str = "Txn-Token";
/// `DPoP`, the proof header of a DPoP-bound access token (RFC 9449).
pub const DPOP: &str = "DPoP";
/// The `Authorization` scheme for WPTs; also the `WWW-Authenticate` challenge on failure.
pub const WPT_SCHEME: &str = "WPT";

/// Where the WPT was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WptCarriage {
    /// `Authorization: WPT <jwt>` (draft-ietf-wimse-wpt-02).
    Authorization,
    /// `Workload-Proof-Token: <jwt>` (wpt-01).
    LegacyHeader,
}

/// How a receiver reads credentials from headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct CarriageConfig {
    /// The wpt-01 compatibility switch (off by default): also accept the
    /// `Workload-Proof-Token` header, with an `Authorization: Bearer` token beside it.
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
    /// A bearer access token: only with the legacy carriage, where `Authorization` is
    /// free for it (and `ath` must bind it).
    pub access_token: Option<&'a str>,
    /// A `Txn-Token` header.
    pub txn_token: Option<&'a str>,
}

/// Whether `value` is an `Authorization` value with the `WPT` scheme.
pub fn is_wpt_authorization(value: &str) -> bool {
    let (scheme, _) = split_scheme(value);
    scheme.eq_ignore_ascii_case(WPT_SCHEME)
}

/// `scheme 1*SP credentials` split at the first space (RFC 9110 §11.4).
pub(crate) fn split_scheme(value: &str) -> (&str, &str) {
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    (scheme, rest.trim_start_matches(' '))
}

/// RFC 9110 §11.2: `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub(crate) fn is_token68(s: &str) -> bool {
    /// One token68 character, without branches, so that a block of them is checked with
    /// vector instructions (tokens are a kilobyte and checked on every request).
    fn token68_char(b: u8) -> bool {
        ((b | 0x20).wrapping_sub(b'a') < 26)
            | (b.wrapping_sub(b'0') < 10)
            | (b == b'-')
            | (b == b'.')
            | (b == b'_')
            | (b == b'~')
            | (b == b'+')
            | (b == b'/')
    }
    let body = s.trim_end_matches('=');
    let mut blocks = body.as_bytes().chunks_exact(32);
    let blocks_ok = blocks
        .by_ref()
        .all(|block| block.iter().fold(true, |ok, &b| ok & token68_char(b)));
    !body.is_empty() && blocks_ok && blocks.remainder().iter().all(|&b| token68_char(b))
}

/// Finds the WIT, the WPT and the tokens they may bind among `headers`
/// (name, value pairs; names compared case-insensitively). A header that must appear
/// once but appears twice rejects, as does a WPT carried in two places.
pub fn extract_credentials<'a, I>(headers: I, config: &CarriageConfig) -> Result<PresentedCredentials<'a>, Error>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let mut wit = None;
    let mut authorization = Vec::new();
    let mut legacy = None;
    let mut txn = None;
    let mut dpop = false;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(AUTHORIZATION) {
            authorization.push(split_scheme(visible_ascii(AUTHORIZATION, value)?));
            continue;
        }
        if name.eq_ignore_ascii_case(DPOP) {
            dpop = true;
            continue;
        }
        let (slot, canonical) = if name.eq_ignore_ascii_case(WORKLOAD_IDENTITY_TOKEN) {
            (&mut wit, WORKLOAD_IDENTITY_TOKEN)
        } else if name.eq_ignore_ascii_case(WORKLOAD_PROOF_TOKEN) {
            (&mut legacy, WORKLOAD_PROOF_TOKEN)
        } else if name.eq_ignore_ascii_case(TXN_TOKEN) {
            (&mut txn, TXN_TOKEN)
        } else {
            continue;
        };
        store_once(slot, canonical, value)?;
    }
    let wit = wit.ok_or(Error::Header {
        name: WORKLOAD_IDENTITY_TOKEN,
        reason: "missing",
    })?;
    let is_wpt = |scheme: &str| scheme.eq_ignore_ascii_case(WPT_SCHEME);
    if authorization.len() > 1 {
        // A WPT and another scheme's credentials: the case -02 §2.2 names.
        if authorization.iter().any(|(s, _)| is_wpt(s))
            && let Some((other, _)) = authorization.iter().find(|(s, _)| !is_wpt(s))
        {
            return Err(Error::AccessTokenWithWpt {
                scheme: (*other).to_owned(),
            });
        }
        return Err(Error::Header {
            name: AUTHORIZATION,
            reason: "appears more than once (a request carries exactly one)",
        });
    }
    if legacy.is_some() && !config.accept_legacy_header {
        return Err(Error::LegacyWptHeader);
    }
    let (wpt, carriage, access_token) = match (authorization.first().copied(), legacy) {
        (Some((s, credentials)), None) if is_wpt(s) => {
            if dpop && !config.accept_legacy_header {
                return Err(Error::AccessTokenWithWpt { scheme: DPOP.into() });
            }
            if !is_token68(credentials) {
                return Err(Error::Header {
                    name: AUTHORIZATION,
                    reason: "the WPT credentials must be one token68 (a compact JWT)",
                });
            }
            (credentials, WptCarriage::Authorization, None)
        }
        (Some((s, _)), Some(_)) if is_wpt(s) => {
            return Err(Error::Header {
                name: WORKLOAD_PROOF_TOKEN,
                reason: "a second WPT was sent alongside Authorization: WPT",
            });
        }
        (Some((s, token)), Some(l)) if s.eq_ignore_ascii_case("Bearer") => (l, WptCarriage::LegacyHeader, Some(token)),
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

/// Stores the value of the header `name` in `slot`, refusing a second occurrence.
pub(crate) fn store_once<'a>(slot: &mut Option<&'a str>, name: &'static str, value: &'a [u8]) -> Result<(), Error> {
    if slot.is_some() {
        return Err(Error::Header {
            name,
            reason: "appears more than once",
        });
    }
    *slot = Some(visible_ascii(name, value)?);
    Ok(())
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

    /// Every byte, at every position of a 32-byte block and of the remainder, against
    /// RFC 9110's definition of a token68 character.
    #[test]
    fn token68_every_byte_everywhere() {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
        for b in 0..=255u8 {
            for len in [1, 31, 32, 33, 64, 70] {
                for at in [0, len / 2, len - 1] {
                    let mut token = vec![b'A'; len];
                    token[at] = b;
                    let Ok(token) = String::from_utf8(token) else { continue };
                    // A trailing `=` is padding, so it passes at the end of the token.
                    let expected = allowed(b) || (b == b'=' && token[at..].bytes().all(|c| c == b'=') && at > 0);
                    assert_eq!(is_token68(&token), expected, "byte {b:#04x} at {at} of {len}");
                }
            }
        }
        assert!(!is_token68(""));
        assert!(!is_token68("=="));
        assert!(is_token68("a=="));
        assert!(!is_token68("a=b"));
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
        assert_eq!(extract(&h, false).unwrap_err().kind(), "wpt_legacy_header");
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
    fn wpt02_exclusivity_and_syntax() {
        let wit = ("Workload-Identity-Token", "w.w.w");
        let kind = |h: &[(&str, &str)], legacy| extract(h, legacy).err().map(|e| e.kind());
        // Exactly one Authorization field; a Bearer or DPoP token beside the WPT is refused.
        for (second, scheme) in [("Bearer at", "Bearer"), ("DPoP at", "DPoP")] {
            let h = [wit, ("Authorization", "WPT p.p.p"), ("Authorization", second)];
            assert!(
                matches!(extract(&h, false), Err(Error::AccessTokenWithWpt { scheme: s }) if s == scheme),
                "{second}"
            );
            let h = [wit, ("Authorization", second), ("authorization", "wpt p.p.p")];
            assert_eq!(kind(&h, true), Some("access_token_with_wpt"));
        }
        let h = [wit, ("Authorization", "WPT p.p.p"), ("Authorization", "WPT q.q.q")];
        assert_eq!(kind(&h, false), Some("header"));
        let h = [wit, ("Authorization", "WPT p.p.p"), ("DPoP", "proof")];
        assert_eq!(kind(&h, false), Some("access_token_with_wpt"));
        // token68: one token after the scheme, only its characters, `=` only at the end.
        for bad in ["WPT p.p.p extra", "WPT p,p.p", "WPT p=p.p", "WPT =", "WPT p.p.p\""] {
            assert_eq!(kind(&[wit, ("Authorization", bad)], false), Some("header"), "{bad}");
        }
        for good in ["WPT  p.p.p", "wPt a-b_c.d~e+f/g.h==", "WPT p.p.p "] {
            assert!(extract(&[wit, ("Authorization", good)], false).is_ok(), "{good}");
        }
        assert!(is_wpt_authorization("wpt x") && !is_wpt_authorization("Bearer x"));
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
