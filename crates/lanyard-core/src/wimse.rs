//! The WIMSE service-to-service credentials: the Workload Identity Token
//! (draft-ietf-wimse-workload-creds-02 §5), the Workload Proof Token
//! (draft-ietf-wimse-wpt, `Authorization: WPT` carriage from the editor's copy after
//! PR #287), their HTTP carriage, and a cache of verified WITs.

mod http;
mod wit;
mod wit_cache;
mod wpt;

pub use http::{
    AUTHORIZATION, CarriageConfig, PresentedCredentials, TXN_TOKEN, WORKLOAD_IDENTITY_TOKEN, WORKLOAD_PROOF_TOKEN,
    WPT_SCHEME, WptCarriage, audience_for, extract_credentials, proof_headers,
};
pub use wit::{VerifiedWit, WitClaims, WitIssuer, WitPolicy, WitProfile, WitVerifier, issue_wit};
pub use wit_cache::WitCache;
pub use wpt::{ProofTokens, VerifiedProof, WptClaims, WptParams, WptPolicy, WptVerifier, create_wpt};
