//! The WIMSE service-to-service credentials: the Workload Identity Token
//! (draft-ietf-wimse-workload-creds-02 §5), the Workload Proof Token
//! (draft-ietf-wimse-wpt-02: `Authorization: WPT`, no `ath`; -01 behind a compatibility
//! switch), their HTTP carriage, and a cache of verified WITs.

pub(crate) mod http;
mod wit;
mod wit_cache;
mod wpt;

pub use http::{
    AUTHORIZATION, CarriageConfig, DPOP, PresentedCredentials, TXN_TOKEN, WORKLOAD_IDENTITY_TOKEN,
    WORKLOAD_PROOF_TOKEN, WPT_SCHEME, WptCarriage, audience_for, extract_credentials, is_wpt_authorization,
    proof_headers,
};
pub use wit::{VerifiedWit, WitClaims, WitIssuer, WitPolicy, WitProfile, WitVerifier, issue_wit};
pub use wit_cache::WitCache;
pub use wpt::{MAX_WPT_LIFETIME, ProofTokens, VerifiedProof, WptClaims, WptParams, WptPolicy, WptVerifier, create_wpt};
