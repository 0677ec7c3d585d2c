//! WIMSE identifiers, `wimse://<trust-domain>/<path>` (draft-ietf-wimse-identifier-03 §4.4).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::IdError;
use super::rules::{self, Rules};
use super::spiffe::string_like;

pub(super) const PREFIX: &str = "wimse://";

const RULES: Rules = Rules {
    prefix: PREFIX,
    // RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~"
    path_byte: |b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'),
    require_path: true,
    strict_host: true,
};

/// A validated WIMSE identifier in canonical form.
///
/// identifier-03 requires consumers to reject non-canonical identifiers rather than
/// repair them, and to compare identifiers byte for byte; this type does both.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WimseId {
    id: String,
    td_end: usize,
}

impl WimseId {
    /// Parses and validates a WIMSE identifier.
    pub fn parse(input: &str) -> Result<WimseId, IdError> {
        let td_end = rules::parse(input, &RULES)?;
        Ok(WimseId {
            id: input.to_owned(),
            td_end,
        })
    }

    /// The canonical string.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The trust domain name.
    pub fn trust_domain_name(&self) -> &str {
        &self.id[PREFIX.len()..self.td_end]
    }

    /// The path, beginning with `/` (never empty).
    pub fn path(&self) -> &str {
        &self.id[self.td_end..]
    }
}

string_like!(WimseId, as_str);
