//! CBOR Web Tokens (RFC 8392): the registered claims, NumericDate, and the confirmation
//! claim `cnf` (RFC 8747) with its COSE_Key method.

mod claims;
mod cnf;

pub use claims::{NumericDate, StandardClaims, label};
pub use cnf::Confirmation;
