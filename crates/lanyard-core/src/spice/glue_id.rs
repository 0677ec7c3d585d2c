//! GLUE (GLobal Unique Enterprise) identifiers: `urn:glue:<authority>:<external-id>`
//! (draft-ietf-spice-glue-id-08, repository main@595134c).
//!
//! ```text
//! glue-urn             = "urn:glue:" authority-identifier ":" external-identifier
//! authority-identifier = (ALPHA/DIGIT) *49( ALPHA / DIGIT / "+" / "-" / "." )
//! external-identifier  = ( ALPHA / DIGIT / "-" ) *999( ALPHA / DIGIT / "+" / "-" / "." )
//! ```
//!
//! [`GlueId::parse`] accepts what the draft asks implementations to accept for robustness
//! (the `urn:glue:` prefix and the authority in any case, RFC 8141 §3.1) and applies the
//! authority's registered Transformation Rules (LEI: lowercase; DUNS: drop hyphens;
//! ISO/IEC 6523: a colon becomes a period), so equal identifiers have equal canonical
//! forms and compare with plain string equality. [`GlueId::parse_canonical`] accepts only
//! the canonical form. The authority must be registered; each initial authority's
//! identifier format is checked too (GLN: 13 digits with the GS1 check digit; LEI: 20
//! characters with the ISO 17442 check digits; DUNS: 9 digits; PEN: a decimal number;
//! ISO/IEC 6523: a 4-digit ICD, a period, an organization identifier). No percent-encoding,
//! no non-ASCII.

use std::fmt;

/// The authorities of the initial "GLUE Authority Identifier" registry (§7.1.2).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Authority {
    /// `gln`: GS1 Global Location Numbers.
    Gln,
    /// `lei`: GLEIF Legal Entity Identifiers.
    Lei,
    /// `duns`: Dun & Bradstreet numbers.
    Duns,
    /// `pen`: IANA Private Enterprise Numbers.
    Pen,
    /// `iso6523`: ISO/IEC 6523 organization identifiers.
    Iso6523,
}

impl Authority {
    /// Every registered authority.
    pub const ALL: [Authority; 5] = [
        Authority::Gln,
        Authority::Lei,
        Authority::Duns,
        Authority::Pen,
        Authority::Iso6523,
    ];

    /// The canonical (lowercase) Authority Identifier.
    pub fn as_str(self) -> &'static str {
        match self {
            Authority::Gln => "gln",
            Authority::Lei => "lei",
            Authority::Duns => "duns",
            Authority::Pen => "pen",
            Authority::Iso6523 => "iso6523",
        }
    }

    /// Applies the registered Transformation Rules to an external identifier.
    fn transform(self, external: &str) -> String {
        match self {
            Authority::Lei => external.to_ascii_lowercase(),
            Authority::Duns => external.replace('-', ""),
            Authority::Iso6523 => external.replace(':', "."),
            Authority::Gln | Authority::Pen => external.to_owned(),
        }
    }

    /// Checks the authority's own identifier format (after transformation).
    fn check_format(self, external: &str) -> Result<(), GlueIdErrorKind> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let ok = match self {
            Authority::Gln => external.len() == 13 && digits(external) && gs1_check_digit_ok(external),
            Authority::Lei => {
                external.len() == 20 && external.bytes().all(|b| b.is_ascii_alphanumeric()) && lei_checksum_ok(external)
            }
            Authority::Duns => external.len() == 9 && digits(external),
            Authority::Pen => digits(external) && (external == "0" || !external.starts_with('0')),
            Authority::Iso6523 => match external.split_once('.') {
                Some((icd, org)) => icd.len() == 4 && digits(icd) && !org.is_empty(),
                None => false,
            },
        };
        if ok {
            Ok(())
        } else {
            Err(GlueIdErrorKind::AuthorityFormat)
        }
    }
}

/// GS1 mod-10 check digit: weights 3 and 1 alternating from the right, check digit last.
fn gs1_check_digit_ok(digits: &str) -> bool {
    let values: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
    let Some((&check, body)) = values.split_last() else {
        return false;
    };
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { d * 3 } else { *d })
        .sum();
    (10 - sum % 10) % 10 == check
}

/// ISO 17442 (ISO 7064 MOD 97-10): letters as 10..35, the whole number mod 97 is 1.
fn lei_checksum_ok(lei: &str) -> bool {
    let mut rem = 0u32;
    for c in lei.chars() {
        let Some(v) = c.to_digit(36) else {
            return false;
        };
        rem = if v < 10 {
            (rem * 10 + v) % 97
        } else {
            (rem * 100 + v) % 97
        };
    }
    rem == 1
}

/// Why an identifier is not a GLUE URN.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GlueIdErrorKind {
    /// It does not start with `urn:glue:`.
    NotGlueUrn,
    /// The Authority Identifier breaks its ABNF or is longer than 50 characters.
    AuthoritySyntax,
    /// The Authority Identifier is not in the registry.
    UnknownAuthority,
    /// The External Identifier breaks its ABNF (characters, first character, a colon
    /// where the authority defines no substitute) or is longer than 1000 characters.
    ExternalSyntax,
    /// The External Identifier does not have the format its authority assigns.
    AuthorityFormat,
    /// Percent-encoding is not permitted.
    PercentEncoding,
    /// Only US-ASCII is permitted.
    NonAscii,
    /// The input is valid but not in canonical form.
    NotCanonical,
}

impl GlueIdErrorKind {
    /// A stable, lowercase code.
    pub fn as_str(self) -> &'static str {
        match self {
            GlueIdErrorKind::NotGlueUrn => "not_glue_urn",
            GlueIdErrorKind::AuthoritySyntax => "authority_syntax",
            GlueIdErrorKind::UnknownAuthority => "unknown_authority",
            GlueIdErrorKind::ExternalSyntax => "external_syntax",
            GlueIdErrorKind::AuthorityFormat => "authority_format",
            GlueIdErrorKind::PercentEncoding => "percent_encoding",
            GlueIdErrorKind::NonAscii => "non_ascii",
            GlueIdErrorKind::NotCanonical => "not_canonical",
        }
    }
}

/// A refused GLUE identifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid GLUE identifier {input:?}: {}", kind.as_str())]
pub struct GlueIdError {
    /// What was wrong.
    pub kind: GlueIdErrorKind,
    /// The input, cut at 128 bytes.
    pub input: String,
}

/// A valid GLUE URN in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GlueId {
    urn: String,
    authority_len: usize,
}

const PREFIX: &str = "urn:glue:";

impl GlueId {
    /// Parses a GLUE URN, canonicalising it (see the module documentation).
    pub fn parse(input: &str) -> Result<GlueId, GlueIdError> {
        let err = |kind| GlueIdError {
            kind,
            input: input.chars().take(128).collect(),
        };
        if !input.is_ascii() {
            return Err(err(GlueIdErrorKind::NonAscii));
        }
        if input.contains('%') {
            return Err(err(GlueIdErrorKind::PercentEncoding));
        }
        let rest = input
            .get(..PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(PREFIX))
            .map(|_| &input[PREFIX.len()..])
            .ok_or_else(|| err(GlueIdErrorKind::NotGlueUrn))?;
        let (authority, external) = rest
            .split_once(':')
            .ok_or_else(|| err(GlueIdErrorKind::ExternalSyntax))?;
        GlueId::from_parts(authority, external).map_err(err)
    }

    /// Parses a GLUE URN that must already be in canonical form.
    pub fn parse_canonical(input: &str) -> Result<GlueId, GlueIdError> {
        let id = GlueId::parse(input)?;
        if id.as_str() != input {
            return Err(GlueIdError {
                kind: GlueIdErrorKind::NotCanonical,
                input: input.chars().take(128).collect(),
            });
        }
        Ok(id)
    }

    /// The GLUE URN for an identifier as its authority writes it (for example a DUNS
    /// number with hyphens), after the authority's Transformation Rules.
    pub fn new(authority: &str, external: &str) -> Result<GlueId, GlueIdError> {
        GlueId::from_parts(authority, external).map_err(|kind| GlueIdError {
            kind,
            input: format!("{authority}:{external}").chars().take(128).collect(),
        })
    }

    fn from_parts(authority: &str, external: &str) -> Result<GlueId, GlueIdErrorKind> {
        if !external.is_ascii() || !authority.is_ascii() {
            return Err(GlueIdErrorKind::NonAscii);
        }
        if authority.contains('%') || external.contains('%') {
            return Err(GlueIdErrorKind::PercentEncoding);
        }
        let authority = authority.to_ascii_lowercase();
        let id_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.');
        let authority_ok = authority.len() <= 50
            && authority.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && authority.bytes().all(id_char);
        if !authority_ok {
            return Err(GlueIdErrorKind::AuthoritySyntax);
        }
        let registered = Authority::ALL
            .into_iter()
            .find(|a| a.as_str() == authority)
            .ok_or(GlueIdErrorKind::UnknownAuthority)?;
        let external = registered.transform(external);
        let external_ok = external.len() <= 1000
            && external
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-')
            && external.bytes().all(id_char);
        if !external_ok {
            return Err(GlueIdErrorKind::ExternalSyntax);
        }
        registered.check_format(&external)?;
        Ok(GlueId {
            urn: format!("{PREFIX}{authority}:{external}"),
            authority_len: authority.len(),
        })
    }

    /// The canonical URN.
    pub fn as_str(&self) -> &str {
        &self.urn
    }

    /// The Authority Identifier (lowercase).
    pub fn authority(&self) -> &str {
        &self.urn[PREFIX.len()..PREFIX.len() + self.authority_len]
    }

    /// The External Identifier (canonical).
    pub fn external_id(&self) -> &str {
        &self.urn[PREFIX.len() + self.authority_len + 1..]
    }

    /// A non-GLUE URN the draft declares equivalent (§4.1.1: `urn:lei:` for `lei`).
    pub fn equivalent_urn(&self) -> Option<String> {
        (self.authority() == "lei").then(|| format!("urn:lei:{}", self.external_id()))
    }
}

impl fmt::Display for GlueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.urn)
    }
}

impl std::str::FromStr for GlueId {
    type Err = GlueIdError;
    fn from_str(s: &str) -> Result<GlueId, GlueIdError> {
        GlueId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits() {
        // 0614141000067: check digit 7 by the GS1 rule (3·6+1+3·4+1+3·4+1+3·6 = 63).
        assert!(gs1_check_digit_ok("0614141000067"));
        assert!(!gs1_check_digit_ok("0614141000068"));
        // The draft's LEI example.
        assert!(lei_checksum_ok("inr2ejn1eran0w5zp974"));
        assert!(!lei_checksum_ok("inr2ejn1eran0w5zp975"));
    }
}
