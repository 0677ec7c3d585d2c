//! A client of the SPIFFE Workload API (digest `shared/specs/spiffe.md` §5), as served by
//! Lanyard's agent and by SPIRE's.
//!
//! - [`EndpointAddress`]: the `SPIFFE_ENDPOINT_SOCKET` forms (`unix:///path`, `unix:/path`,
//!   `tcp://IP:port`).
//! - [`WorkloadApiClient`]: typed fetches and watches of X.509-SVIDs, JWT-SVIDs, WIT-SVIDs
//!   and their bundles, and JWT-SVID validation; it sends the `workload.spiffe.io: true`
//!   security header on every call, validates every response (mandatory fields, DER
//!   encodings, SPIFFE IDs matching certificates) and maps gRPC statuses to
//!   [`ClientError`]; and [`WorkloadApiClient::fetch_sd_cwt`], Lanyard's SD-CWT extension
//!   on the same socket ([`SdCwtEntry`]).
//! - [`files::FileWriter`]: keeps SVIDs, keys and bundles on disk (atomically, mode 0600)
//!   for applications that do not speak the Workload API, running a reload command after
//!   each rotation.
//!
//! Private keys and bearer tokens are never shown by `Debug` and never logged.
//!
//! ```no_run
//! # async fn example() -> Result<(), lanyard_workload::ClientError> {
//! use lanyard_workload::{EndpointAddress, WorkloadApiClient};
//!
//! let address = EndpointAddress::parse("unix:///run/lanyard/agent.sock")?;
//! let client = WorkloadApiClient::connect(&address).await?;
//! let context = client.fetch_x509_context().await?;
//! let svid = context.default_svid().expect("never empty");
//! println!("I am {}", svid.spiffe_id);
//! let jwt = client.fetch_jwt_svid(&["db"], None).await?;
//! println!("token for {}", jwt[0].spiffe_id);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod address;
mod client;
mod error;
pub mod files;
mod sdcwt;
mod types;

// Public API
pub use address::{AddressError, ENDPOINT_SOCKET_ENV, EndpointAddress};
pub use client::{SECURITY_HEADER, Watch, WorkloadApiClient, connect_channel};
pub use error::ClientError;
/// The DER certificate and PKCS#8 key types of [`X509SvidEntry`] (from `rustls-pki-types`).
pub use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
pub use sdcwt::SdCwtEntry;
pub use types::{JwtBundles, JwtSvidEntry, WitBundles, WitSvidEntry, X509Bundles, X509Context, X509SvidEntry};
