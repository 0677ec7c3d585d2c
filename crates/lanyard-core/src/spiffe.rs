//! SPIFFE credentials: JWT-SVIDs (JWT-SVID.md) and trust bundles
//! (SPIFFE_Trust_Domain_and_Bundle.md, plus the `wit-svid` key use of WIT-SVID.md §6.1).

mod bundle;
mod jwt_svid;

pub use bundle::SpiffeBundle;
pub use jwt_svid::{
    JwtSvidIssuer, JwtSvidPolicy, JwtSvidVerifier, MAX_AUDIENCE_BYTES, MAX_AUDIENCES, VerifiedJwtSvid, check_audiences,
};
