//! Scopes (RFC 6749 §3.3): `scope = scope-token *( SP scope-token )`,
//! `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, case-sensitive, order meaningless.
//!
//! A [`Scope`] is a set. Parsing is strict (one space between tokens, none leading or
//! trailing, only the characters above), and the canonical form is the tokens sorted and
//! joined by single spaces: that is what Lanyard writes in `scope` claims and responses.
//! The same syntax serves the `scope` claim of RFC 9068 §2.2.3, RFC 8693 §4.2 and
//! Txn-Tokens.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;
use crate::oauth::violation::{Violation, clip};

/// The most scope tokens one value may hold.
pub const MAX_SCOPE_TOKENS: usize = 256;

/// A set of scope tokens.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scope(BTreeSet<String>);

impl Scope {
    /// The empty scope.
    pub fn empty() -> Scope {
        Scope::default()
    }

    /// Parses a space-delimited scope value strictly. Repeated tokens collapse.
    pub fn parse(value: &str) -> Result<Scope, Error> {
        let refuse = |why: &str| -> Error { Violation::ScopeSyntax(why.to_owned()).into() };
        if value.is_empty() {
            return Err(refuse("empty scope"));
        }
        let mut tokens = BTreeSet::new();
        for token in value.split(' ') {
            if token.is_empty() {
                return Err(refuse("scope tokens are separated by exactly one space"));
            }
            if let Some(c) = token.chars().find(|c| !is_scope_char(*c)) {
                return Err(refuse(&format!("character {c:?} is not allowed in a scope token")));
            }
            tokens.insert(token.to_owned());
            if tokens.len() > MAX_SCOPE_TOKENS {
                return Err(refuse(&format!("more than {MAX_SCOPE_TOKENS} scope tokens")));
            }
        }
        Ok(Scope(tokens))
    }

    /// A scope of the given tokens, each checked as [`Scope::parse`] checks them.
    pub fn from_tokens<I, S>(tokens: I) -> Result<Scope, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = BTreeSet::new();
        for token in tokens {
            let token = token.as_ref();
            if token.is_empty() || !token.chars().all(is_scope_char) {
                return Err(Violation::ScopeSyntax(format!("{:?} is not a scope token", clip(token, 64))).into());
            }
            out.insert(token.to_owned());
        }
        Ok(Scope(out))
    }

    /// Whether `token` is in the set.
    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    /// Whether every token of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The tokens in both.
    pub fn intersection(&self, other: &Scope) -> Scope {
        Scope(self.0.intersection(&other.0).cloned().collect())
    }

    /// The tokens in either.
    pub fn union(&self, other: &Scope) -> Scope {
        Scope(self.0.union(&other.0).cloned().collect())
    }

    /// The tokens of `self` that are not in `other`.
    pub fn difference(&self, other: &Scope) -> Scope {
        Scope(self.0.difference(&other.0).cloned().collect())
    }

    /// Succeeds when `self` grants every token of `required`; otherwise names the missing
    /// ones ([`Violation::InsufficientScope`], RFC 6750 `insufficient_scope`).
    pub fn require(&self, required: &Scope) -> Result<(), Error> {
        let missing = required.difference(self);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Violation::InsufficientScope {
                missing: missing.to_string(),
            }
            .into())
        }
    }

    /// The tokens, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// RFC 6749 §3.3: `%x21 / %x23-5B / %x5D-7E` (printable ASCII except space, `"` and `\`).
fn is_scope_char(c: char) -> bool {
    matches!(c, '\u{21}' | '\u{23}'..='\u{5b}' | '\u{5d}'..='\u{7e}')
}

impl fmt::Display for Scope {
    /// The canonical form: sorted, single spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, token) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", self.to_string())
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scope, D::Error> {
        let value = String::deserialize(d)?;
        Scope::parse(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_canonically() {
        let s = Scope::parse("write read read admin:all").unwrap();
        assert_eq!(s.to_string(), "admin:all read write");
        assert_eq!(s.len(), 3);
        assert!(s.contains("read"));
        assert_eq!(serde_json::to_string(&s).unwrap(), r#""admin:all read write""#);
        let back: Scope = serde_json::from_str(r#""read write""#).unwrap();
        assert_eq!(back, Scope::parse("write read").unwrap());
    }

    #[test]
    fn refuses_bad_syntax() {
        for bad in [
            "",
            " read",
            "read ",
            "read  write",
            "re\"ad",
            "re\\ad",
            "read\twrite",
            "é",
        ] {
            assert_eq!(Scope::parse(bad).unwrap_err().kind(), "scope_syntax", "{bad:?}");
        }
        assert!(serde_json::from_str::<Scope>(r#""a  b""#).is_err());
        let many = (0..=MAX_SCOPE_TOKENS)
            .map(|i| format!("s{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(Scope::parse(&many).is_err());
        assert!(Scope::from_tokens(["ok", "not ok"]).is_err());
    }

    #[test]
    fn set_operations() {
        let granted = Scope::parse("read write").unwrap();
        let asked = Scope::parse("read").unwrap();
        assert!(asked.is_subset_of(&granted));
        assert!(!granted.is_subset_of(&asked));
        assert_eq!(
            granted.intersection(&Scope::parse("write delete").unwrap()).to_string(),
            "write"
        );
        assert_eq!(asked.union(&Scope::parse("x").unwrap()).to_string(), "read x");
        assert!(granted.require(&asked).is_ok());
        let e = asked.require(&Scope::parse("read delete admin").unwrap()).unwrap_err();
        assert_eq!(e.kind(), "insufficient_scope");
        assert_eq!(
            e,
            Error::OAuth(Violation::InsufficientScope {
                missing: "admin delete".into()
            })
        );
        assert!(Scope::empty().is_empty());
    }
}
