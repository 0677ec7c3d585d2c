//! One module per top-level subcommand, and the argument blocks they share.

pub(crate) mod admin;
pub(crate) mod agent;
pub(crate) mod args;
pub(crate) mod bundle;
pub(crate) mod httpsig;
pub(crate) mod key;
pub(crate) mod sdcwt;
pub(crate) mod server;
pub(crate) mod token;
pub(crate) mod verify;
pub(crate) mod workload;
pub(crate) mod x509;
