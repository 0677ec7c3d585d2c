//! Carrying an access token to a protected resource: `Authorization: Bearer <token>`
//! (RFC 6750 §2.1) or `Authorization: DPoP <token>` with one `DPoP: <proof>` header (RFC
//! 9449 §7.1), read strictly.
//!
//! The scheme is case-insensitive and the credentials are one `token68` (RFC 9110 §11.2;
//! RFC 6750's `b64token` is the same set). A request carries at most one `Authorization`
//! field and at most one `DPoP` field (RFC 9449 §4.3 step 1); the `DPoP` scheme needs the
//! proof, and a proof beside a `Bearer` token is refused rather than ignored (the sender
//! believes the token is bound). Other schemes (`WPT`, `Basic`, ...) are not access
//! tokens: [`extract_access_token`] answers `None` for them and leaves them to their own
//! readers.

use crate::error::Error;
use crate::wimse::http::{AUTHORIZATION, DPOP, is_token68, split_scheme, store_once};

/// How the access token was presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenScheme {
    /// `Authorization: Bearer` (RFC 6750).
    Bearer,
    /// `Authorization: DPoP` with a `DPoP` proof (RFC 9449 §7.1).
    Dpop,
}

impl TokenScheme {
    /// The scheme name as written in `Authorization` and `WWW-Authenticate`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScheme::Bearer => "Bearer",
            TokenScheme::Dpop => "DPoP",
        }
    }
}

/// An access token found in a request (not yet verified).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresentedAccessToken<'a> {
    /// The scheme.
    pub scheme: TokenScheme,
    /// The token.
    pub token: &'a str,
    /// The `DPoP` proof (always present with [`TokenScheme::Dpop`], never with `Bearer`).
    pub dpop_proof: Option<&'a str>,
}

/// The one value of a header a request carries at most once (`Content-Type`,
/// `Authorization`, `DPoP` (RFC 9449 §4.3), ...), given all the values it came with:
/// `None` when absent; an error when repeated or not visible ASCII. The rule
/// [`extract_access_token`] applies to its own headers.
pub fn header_once<'a, I>(name: &'static str, values: I) -> Result<Option<&'a str>, Error>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut value = None;
    for v in values {
        store_once(&mut value, name, v)?;
    }
    Ok(value)
}

/// Finds the access token among `headers` (name, value pairs; names compared
/// case-insensitively): `None` when there is no `Authorization` field with the `Bearer`
/// or `DPoP` scheme.
pub fn extract_access_token<'a, I>(headers: I) -> Result<Option<PresentedAccessToken<'a>>, Error>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let mut authorization = None;
    let mut proof = None;
    for (name, value) in headers {
        let (slot, canonical) = if name.eq_ignore_ascii_case(AUTHORIZATION) {
            (&mut authorization, AUTHORIZATION)
        } else if name.eq_ignore_ascii_case(DPOP) {
            (&mut proof, DPOP)
        } else {
            continue;
        };
        store_once(slot, canonical, value)?;
    }
    let Some((scheme, token)) = authorization.map(split_scheme) else {
        return Ok(None);
    };
    let scheme = if scheme.eq_ignore_ascii_case("Bearer") {
        TokenScheme::Bearer
    } else if scheme.eq_ignore_ascii_case("DPoP") {
        TokenScheme::Dpop
    } else {
        return Ok(None);
    };
    if !is_token68(token) {
        return Err(Error::Header {
            name: AUTHORIZATION,
            reason: "the access token must be one token68",
        });
    }
    match (scheme, proof) {
        (TokenScheme::Dpop, None) => Err(Error::Header {
            name: DPOP,
            reason: "missing (the DPoP scheme needs a proof)",
        }),
        (TokenScheme::Bearer, Some(_)) => Err(Error::Header {
            name: DPOP,
            reason: "a DPoP proof came with a Bearer token (use the DPoP scheme)",
        }),
        (_, Some(p)) if !is_token68(p) => Err(Error::Header {
            name: DPOP,
            reason: "the proof must be one compact JWT",
        }),
        (scheme, dpop_proof) => Ok(Some(PresentedAccessToken {
            scheme,
            token,
            dpop_proof,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_carried_once() {
        let once = |values: &[&'static str]| header_once("DPoP", values.iter().map(|v| v.as_bytes()));
        assert_eq!(once(&[]).unwrap(), None);
        assert_eq!(once(&["p.p.p"]).unwrap(), Some("p.p.p"));
        assert_eq!(once(&["p.p.p", "q.q.q"]).unwrap_err().kind(), "header");
        assert_eq!(once(&["caf\u{e9}"]).unwrap_err().kind(), "header");
    }

    fn extract<'a>(h: &'a [(&'a str, &'a str)]) -> Result<Option<PresentedAccessToken<'a>>, Error> {
        extract_access_token(h.iter().map(|(n, v)| (*n, v.as_bytes())))
    }

    #[test]
    fn bearer_and_dpop() {
        let t = extract(&[("authorization", "bearer a.b.c")]).unwrap().unwrap();
        assert_eq!((t.scheme, t.token, t.dpop_proof), (TokenScheme::Bearer, "a.b.c", None));
        let t = extract(&[
            ("Authorization", "DPoP Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            ("dpop", "p.p.p"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(t.scheme, TokenScheme::Dpop);
        assert_eq!(t.dpop_proof, Some("p.p.p"));
        assert_eq!(extract(&[]).unwrap(), None);
        assert_eq!(extract(&[("Authorization", "WPT w.w.w")]).unwrap(), None);
        assert_eq!(extract(&[("DPoP", "p.p.p")]).unwrap(), None);
    }

    #[test]
    fn refusals() {
        let kind = |h: &[(&str, &str)]| extract(h).unwrap_err().kind();
        assert_eq!(
            kind(&[("Authorization", "Bearer a"), ("authorization", "Bearer b")]),
            "header"
        );
        assert_eq!(
            kind(&[("Authorization", "DPoP a"), ("DPoP", "p"), ("dpop", "q")]),
            "header"
        );
        assert_eq!(kind(&[("Authorization", "DPoP a")]), "header");
        assert_eq!(kind(&[("Authorization", "Bearer a"), ("DPoP", "p")]), "header");
        assert_eq!(kind(&[("Authorization", "Bearer a b")]), "header");
        assert_eq!(kind(&[("Authorization", "Bearer ")]), "header");
        assert_eq!(kind(&[("Authorization", "DPoP a"), ("DPoP", "p q")]), "header");
        assert!(extract_access_token([("Authorization", &b"Bearer \xff"[..])]).is_err());
    }
}
