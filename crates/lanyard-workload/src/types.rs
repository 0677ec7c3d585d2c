//! Typed, validated forms of the Workload API's responses, and their conversion from the
//! prost messages (digest §5.2–§5.3: mandatory fields, DER encodings, bundle-map keys).
//!
//! Conversion rejects a whole message if any part is missing or inconsistent, as WAPI §4.5
//! asks clients to do; a rejected message surfaces as [`ClientError::Malformed`].

use std::collections::BTreeMap;
use std::fmt;

use lanyard_api::workload as pb;
use lanyard_core::jose::decode_unverified;
use lanyard_core::{Jwk, JwkSet, SpiffeId, TrustDomain, UnixTime};
use lanyard_x509::{X509Bundle, X509BundleSet, X509Svid};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use crate::error::ClientError;

/// One X.509-SVID from `FetchX509SVID`: the identity, its chain and key, and its trust
/// domain's bundle. `Debug` never shows the key.
pub struct X509SvidEntry {
    /// The SPIFFE ID, equal to the leaf certificate's URI SAN.
    pub spiffe_id: SpiffeId,
    /// DER certificates, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key (PKCS#8 DER). Secret.
    pub key: PrivatePkcs8KeyDer<'static>,
    /// The X.509 authorities (root certificates, DER) of the SVID's own trust domain.
    pub bundle: Vec<CertificateDer<'static>>,
    /// The operator's hint (may be empty).
    pub hint: String,
}

impl X509SvidEntry {
    /// The SVID as a [`lanyard_x509::X509Svid`] (chain and key), e.g. for
    /// [`lanyard_x509::SvidSource`].
    pub fn to_x509_svid(&self) -> X509Svid {
        X509Svid {
            chain: self.chain.clone(),
            key: Some(self.key.clone_key()),
        }
    }

    /// The chain as `CERTIFICATE` PEM blocks, leaf first.
    pub fn chain_pem(&self) -> String {
        self.to_x509_svid().chain_pem()
    }

    /// The key as a `PRIVATE KEY` PEM block. Secret.
    pub fn key_pem(&self) -> String {
        self.to_x509_svid().key_pem().unwrap_or_default()
    }

    /// The own trust domain's bundle as `CERTIFICATE` PEM blocks.
    pub fn bundle_pem(&self) -> String {
        certs_pem(&self.bundle)
    }

    /// The leaf's notAfter.
    pub fn not_after(&self) -> Result<UnixTime, ClientError> {
        self.to_x509_svid()
            .not_after()
            .map_err(|e| ClientError::malformed(e.to_string()))
    }
}

impl Clone for X509SvidEntry {
    fn clone(&self) -> Self {
        X509SvidEntry {
            spiffe_id: self.spiffe_id.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            bundle: self.bundle.clone(),
            hint: self.hint.clone(),
        }
    }
}

impl fmt::Debug for X509SvidEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509SvidEntry")
            .field("spiffe_id", &self.spiffe_id)
            .field("chain_len", &self.chain.len())
            .field("bundle_len", &self.bundle.len())
            .field("hint", &self.hint)
            .finish_non_exhaustive()
    }
}

/// The X.509 context from one `FetchX509SVID` message: every SVID the workload is entitled
/// to (the first is the default) and the federated bundles.
#[derive(Clone, Debug)]
pub struct X509Context {
    /// The SVIDs, never empty; the first one is the default identity (WAPI §8).
    pub svids: Vec<X509SvidEntry>,
    /// X.509 authorities of foreign trust domains the workload should trust.
    pub federated_bundles: BTreeMap<TrustDomain, Vec<CertificateDer<'static>>>,
    /// DER certificate revocation lists, as sent (not interpreted).
    pub crl: Vec<Vec<u8>>,
}

impl X509Context {
    /// The default SVID (the first one).
    pub fn default_svid(&self) -> Option<&X509SvidEntry> {
        self.svids.first()
    }

    /// The SVID with `id`, if any.
    pub fn svid_for(&self, id: &SpiffeId) -> Option<&X509SvidEntry> {
        self.svids.iter().find(|s| &s.spiffe_id == id)
    }

    /// The first SVID with `hint`, if any.
    pub fn svid_by_hint(&self, hint: &str) -> Option<&X509SvidEntry> {
        self.svids.iter().find(|s| s.hint == hint)
    }

    /// All trusted authorities: each SVID's own trust-domain bundle plus the federated ones.
    pub fn bundle_set(&self) -> Result<X509BundleSet, ClientError> {
        let mut set = X509BundleSet::new();
        for (td, certs) in &self.federated_bundles {
            set.insert(x509_bundle(td, certs)?);
        }
        for svid in self.svids.iter().rev() {
            set.insert(x509_bundle(&svid.spiffe_id.trust_domain(), &svid.bundle)?);
        }
        Ok(set)
    }
}

/// The X.509 bundles from one `FetchX509Bundles` message.
#[derive(Clone, Debug)]
pub struct X509Bundles {
    /// X.509 authorities (DER) per trust domain, including the workload's own.
    pub bundles: BTreeMap<TrustDomain, Vec<CertificateDer<'static>>>,
    /// DER certificate revocation lists, as sent (not interpreted).
    pub crl: Vec<Vec<u8>>,
}

impl X509Bundles {
    /// The bundles as a [`X509BundleSet`] for chain verification.
    pub fn bundle_set(&self) -> Result<X509BundleSet, ClientError> {
        let mut set = X509BundleSet::new();
        for (td, certs) in &self.bundles {
            set.insert(x509_bundle(td, certs)?);
        }
        Ok(set)
    }
}

/// One JWT-SVID from `FetchJWTSVID`. `Debug` never shows the token.
#[derive(Clone)]
pub struct JwtSvidEntry {
    /// The SPIFFE ID (the token's `sub`).
    pub spiffe_id: SpiffeId,
    /// The token, JWS compact serialization. A bearer credential: secret.
    pub token: String,
    /// The operator's hint (may be empty).
    pub hint: String,
}

impl JwtSvidEntry {
    /// The token's `exp` (read without verifying the signature).
    pub fn expires_at(&self) -> Option<UnixTime> {
        numeric_claim(&self.token, "exp")
    }

    /// The token's `iat` (read without verifying the signature), if present.
    pub fn issued_at(&self) -> Option<UnixTime> {
        numeric_claim(&self.token, "iat")
    }
}

impl fmt::Debug for JwtSvidEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSvidEntry")
            .field("spiffe_id", &self.spiffe_id)
            .field("hint", &self.hint)
            .finish_non_exhaustive()
    }
}

/// The JWT bundles from one `FetchJWTBundles` message: JWKS documents per trust domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtBundles {
    /// The JWKS JSON bytes per trust domain, as sent (each checked to be a JSON object with
    /// a `keys` array).
    pub bundles: BTreeMap<TrustDomain, Vec<u8>>,
}

impl JwtBundles {
    /// The JWKS of `td` parsed as a [`JwkSet`], or `None` without a bundle for `td`.
    pub fn jwk_set(&self, td: &TrustDomain) -> Option<Result<JwkSet, ClientError>> {
        self.bundles
            .get(td)
            .map(|json| JwkSet::from_json(json).map_err(|e| ClientError::malformed(format!("JWT bundle of {td}: {e}"))))
    }
}

/// One WIT-SVID from `FetchWITSVID`. `Debug` never shows the token or the key.
#[derive(Clone)]
pub struct WitSvidEntry {
    /// The SPIFFE ID.
    pub spiffe_id: SpiffeId,
    /// The WIT, JWS compact serialization.
    pub token: String,
    /// The private key bound by the WIT's `cnf.jwk`, as a JWK JSON document. Secret.
    pub key_jwk: String,
    /// The operator's hint (may be empty).
    pub hint: String,
}

impl WitSvidEntry {
    /// The private key parsed as a [`Jwk`]. Secret.
    pub fn key(&self) -> Result<Jwk, ClientError> {
        Jwk::from_json(self.key_jwk.as_bytes()).map_err(|e| ClientError::malformed(format!("WIT-SVID key: {e}")))
    }

    /// The WIT's `exp` (read without verifying the signature).
    pub fn expires_at(&self) -> Option<UnixTime> {
        numeric_claim(&self.token, "exp")
    }
}

impl fmt::Debug for WitSvidEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WitSvidEntry")
            .field("spiffe_id", &self.spiffe_id)
            .field("hint", &self.hint)
            .finish_non_exhaustive()
    }
}

/// The WIT bundles from one `FetchWITBundles` message: JWKS documents per trust domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitBundles {
    /// The JWKS JSON per trust domain, as sent (each checked to be a JSON object with a
    /// `keys` array).
    pub bundles: BTreeMap<TrustDomain, String>,
}

impl WitBundles {
    /// The JWKS of `td` parsed as a [`JwkSet`], or `None` without a bundle for `td`.
    pub fn jwk_set(&self, td: &TrustDomain) -> Option<Result<JwkSet, ClientError>> {
        self.bundles.get(td).map(|json| {
            JwkSet::from_json(json.as_bytes()).map_err(|e| ClientError::malformed(format!("WIT bundle of {td}: {e}")))
        })
    }
}

fn numeric_claim(token: &str, name: &str) -> Option<UnixTime> {
    decode_unverified(token)
        .ok()?
        .claims
        .get(name)
        .and_then(serde_json::Value::as_u64)
        .map(UnixTime)
}

fn certs_pem(certs: &[CertificateDer<'static>]) -> String {
    X509Svid {
        chain: certs.to_vec(),
        key: None,
    }
    .chain_pem()
}

/// Concatenated certificates as PEM blocks (for bundle files).
pub(crate) fn bundle_pem(certs: &[CertificateDer<'static>]) -> String {
    certs_pem(certs)
}

fn x509_bundle(td: &TrustDomain, certs: &[CertificateDer<'static>]) -> Result<X509Bundle, ClientError> {
    X509Bundle::from_der_certs(td.clone(), certs.iter().cloned())
        .map_err(|e| ClientError::malformed(format!("X.509 bundle of {td}: {e}")))
}

/// Splits concatenated DER certificates (each a DER `SEQUENCE`) without interpreting them.
pub(crate) fn split_der_certs(bytes: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let bad = |why: &str| ClientError::malformed(format!("{what}: {why}"));
    let mut rest = bytes;
    let mut out = Vec::new();
    while !rest.is_empty() {
        if rest[0] != 0x30 {
            return Err(bad("not a DER certificate sequence"));
        }
        let first = *rest.get(1).ok_or_else(|| bad("truncated DER header"))?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(bad("unsupported DER length"));
            }
            let len_bytes = rest.get(2..2 + n).ok_or_else(|| bad("truncated DER header"))?;
            let len = len_bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, 2 + n)
        };
        let total = header
            .checked_add(len)
            .filter(|t| *t <= rest.len())
            .ok_or_else(|| bad("truncated DER certificate"))?;
        out.push(CertificateDer::from(rest[..total].to_vec()));
        rest = &rest[total..];
    }
    if out.is_empty() {
        return Err(bad("missing (empty)"));
    }
    Ok(out)
}

fn trust_domain_key(key: &str, what: &str) -> Result<TrustDomain, ClientError> {
    TrustDomain::parse(key).map_err(|e| ClientError::malformed(format!("{what} key {key:?}: {e}")))
}

fn check_jwks(json: &[u8], what: &str) -> Result<(), ClientError> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| ClientError::malformed(format!("{what}: not JSON: {e}")))?;
    match value.get("keys") {
        Some(serde_json::Value::Array(_)) => Ok(()),
        _ => Err(ClientError::malformed(format!("{what}: not a JWK Set (no keys array)"))),
    }
}

fn parse_spiffe_id(value: &str, what: &str) -> Result<SpiffeId, ClientError> {
    if value.is_empty() {
        return Err(ClientError::malformed(format!("{what}: spiffe_id is missing")));
    }
    let id = SpiffeId::parse(value).map_err(|e| ClientError::malformed(format!("{what}: spiffe_id: {e}")))?;
    if id.is_trust_domain_id() {
        return Err(ClientError::malformed(format!(
            "{what}: {id} is not a workload SPIFFE ID"
        )));
    }
    Ok(id)
}

fn x509_der_map(
    map: std::collections::HashMap<String, Vec<u8>>,
    what: &str,
) -> Result<BTreeMap<TrustDomain, Vec<CertificateDer<'static>>>, ClientError> {
    let mut out = BTreeMap::new();
    for (key, der) in map {
        let td = trust_domain_key(&key, what)?;
        let certs = split_der_certs(&der, &format!("{what} of {td}"))?;
        x509_bundle(&td, &certs)?;
        out.insert(td, certs);
    }
    Ok(out)
}

fn x509_svid(svid: pb::X509svid) -> Result<X509SvidEntry, ClientError> {
    let spiffe_id = parse_spiffe_id(&svid.spiffe_id, "X509SVID")?;
    let what = format!("X.509-SVID {spiffe_id}");
    let chain = split_der_certs(&svid.x509_svid, &format!("{what} x509_svid"))?;
    if svid.x509_svid_key.is_empty() {
        return Err(ClientError::malformed(format!("{what}: x509_svid_key is missing")));
    }
    let key = PrivatePkcs8KeyDer::from(svid.x509_svid_key);
    let bundle = split_der_certs(&svid.bundle, &format!("{what} bundle"))?;
    x509_bundle(&spiffe_id.trust_domain(), &bundle)?;
    let parsed = X509Svid { chain, key: Some(key) };
    parsed
        .check()
        .map_err(|e| ClientError::malformed(format!("{what}: {e}")))?;
    let leaf_id = parsed
        .spiffe_id()
        .map_err(|e| ClientError::malformed(format!("{what}: {e}")))?;
    if leaf_id != spiffe_id {
        return Err(ClientError::malformed(format!(
            "{what}: the leaf certificate's URI SAN is {leaf_id}"
        )));
    }
    let X509Svid { chain, key } = parsed;
    let key = key.ok_or_else(|| ClientError::malformed(format!("{what}: x509_svid_key is missing")))?;
    Ok(X509SvidEntry {
        spiffe_id,
        chain,
        key,
        bundle,
        hint: svid.hint,
    })
}

impl TryFrom<pb::X509svidResponse> for X509Context {
    type Error = ClientError;

    fn try_from(response: pb::X509svidResponse) -> Result<Self, Self::Error> {
        if response.svids.is_empty() {
            return Err(ClientError::malformed("X509SVIDResponse has no svids"));
        }
        let svids = response
            .svids
            .into_iter()
            .map(x509_svid)
            .collect::<Result<Vec<_>, _>>()?;
        let federated_bundles = x509_der_map(response.federated_bundles, "federated bundle")?;
        Ok(X509Context {
            svids,
            federated_bundles,
            crl: response.crl,
        })
    }
}

impl TryFrom<pb::X509BundlesResponse> for X509Bundles {
    type Error = ClientError;

    fn try_from(response: pb::X509BundlesResponse) -> Result<Self, Self::Error> {
        if response.bundles.is_empty() {
            return Err(ClientError::malformed("X509BundlesResponse has no bundles"));
        }
        Ok(X509Bundles {
            bundles: x509_der_map(response.bundles, "X.509 bundle")?,
            crl: response.crl,
        })
    }
}

impl TryFrom<pb::JwtBundlesResponse> for JwtBundles {
    type Error = ClientError;

    fn try_from(response: pb::JwtBundlesResponse) -> Result<Self, Self::Error> {
        if response.bundles.is_empty() {
            return Err(ClientError::malformed("JWTBundlesResponse has no bundles"));
        }
        let mut bundles = BTreeMap::new();
        for (key, json) in response.bundles {
            let td = trust_domain_key(&key, "JWT bundle")?;
            check_jwks(&json, &format!("JWT bundle of {td}"))?;
            bundles.insert(td, json);
        }
        Ok(JwtBundles { bundles })
    }
}

impl TryFrom<pb::WitBundlesResponse> for WitBundles {
    type Error = ClientError;

    fn try_from(response: pb::WitBundlesResponse) -> Result<Self, Self::Error> {
        if response.bundles.is_empty() {
            return Err(ClientError::malformed("WITBundlesResponse has no bundles"));
        }
        let mut bundles = BTreeMap::new();
        for (key, json) in response.bundles {
            let td = trust_domain_key(&key, "WIT bundle")?;
            check_jwks(json.as_bytes(), &format!("WIT bundle of {td}"))?;
            bundles.insert(td, json);
        }
        Ok(WitBundles { bundles })
    }
}

pub(crate) fn jwt_svids(response: pb::JwtsvidResponse) -> Result<Vec<JwtSvidEntry>, ClientError> {
    if response.svids.is_empty() {
        return Err(ClientError::malformed("JWTSVIDResponse has no svids"));
    }
    response
        .svids
        .into_iter()
        .map(|svid| {
            let spiffe_id = parse_spiffe_id(&svid.spiffe_id, "JWTSVID")?;
            if svid.svid.is_empty() {
                return Err(ClientError::malformed(format!("JWT-SVID {spiffe_id}: svid is missing")));
            }
            Ok(JwtSvidEntry {
                spiffe_id,
                token: svid.svid,
                hint: svid.hint,
            })
        })
        .collect()
}

pub(crate) fn wit_svids(response: pb::WitsvidResponse) -> Result<Vec<WitSvidEntry>, ClientError> {
    if response.svids.is_empty() {
        return Err(ClientError::malformed("WITSVIDResponse has no svids"));
    }
    response
        .svids
        .into_iter()
        .map(|svid| {
            let spiffe_id = parse_spiffe_id(&svid.spiffe_id, "WITSVID")?;
            if svid.wit_svid.is_empty() {
                return Err(ClientError::malformed(format!(
                    "WIT-SVID {spiffe_id}: wit_svid is missing"
                )));
            }
            let entry = WitSvidEntry {
                spiffe_id,
                token: svid.wit_svid,
                key_jwk: svid.wit_svid_key,
                hint: svid.hint,
            };
            let key = entry.key()?;
            if !key.is_private() {
                return Err(ClientError::malformed(format!(
                    "WIT-SVID {}: wit_svid_key is not a private key",
                    entry.spiffe_id
                )));
            }
            Ok(entry)
        })
        .collect()
}

/// Converts a protobuf `Struct` (the claims of `ValidateJWTSVID`) to JSON. Integral numbers
/// (such as `exp`) become JSON integers.
pub(crate) fn struct_to_json(s: prost_types::Struct) -> serde_json::Value {
    serde_json::Value::Object(s.fields.into_iter().map(|(k, v)| (k, value_to_json(v))).collect())
}

fn value_to_json(value: prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    use serde_json::Value;
    match value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::NumberValue(n)) => number_to_json(n),
        Some(Kind::StructValue(s)) => struct_to_json(s),
        Some(Kind::ListValue(list)) => Value::Array(list.values.into_iter().map(value_to_json).collect()),
    }
}

fn number_to_json(n: f64) -> serde_json::Value {
    // 2^53: beyond it f64 cannot tell integers apart, so keep the float.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if n.fract() == 0.0 && n.abs() <= EXACT {
        #[allow(clippy::cast_possible_truncation)]
        let i = n as i64;
        return serde_json::Value::from(i);
    }
    serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn splits_concatenated_der() {
        // Two minimal SEQUENCEs, one with a long-form length.
        let mut bytes = vec![0x30, 0x03, 1, 2, 3];
        bytes.extend([0x30, 0x81, 0x80]);
        bytes.extend(std::iter::repeat_n(7u8, 0x80));
        let certs = split_der_certs(&bytes, "test").unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].as_ref(), &[0x30, 0x03, 1, 2, 3]);
        assert_eq!(certs[1].len(), 3 + 0x80);

        assert!(split_der_certs(&[], "test").is_err());
        assert!(split_der_certs(&[0x31, 0x00], "test").is_err());
        assert!(split_der_certs(&[0x30, 0x05, 1], "test").is_err());
        assert!(split_der_certs(&[0x30, 0x80, 0, 0], "test").is_err());
        assert!(split_der_certs(&[0x30, 0x82, 0x01], "test").is_err());
        assert!(split_der_certs(&[0x30, 0x00, 0x30], "test").is_err());
    }

    #[test]
    fn struct_converts_to_json() {
        use prost_types::value::Kind;
        use prost_types::{ListValue, Struct, Value};
        let v = |k| Value { kind: Some(k) };
        let s = Struct {
            fields: [
                (
                    "sub".to_owned(),
                    v(Kind::StringValue("spiffe://example.org/web".into())),
                ),
                ("exp".to_owned(), v(Kind::NumberValue(1_800_000_000.0))),
                ("ratio".to_owned(), v(Kind::NumberValue(0.5))),
                ("ok".to_owned(), v(Kind::BoolValue(true))),
                ("none".to_owned(), v(Kind::NullValue(0))),
                (
                    "aud".to_owned(),
                    v(Kind::ListValue(ListValue {
                        values: vec![v(Kind::StringValue("db".into()))],
                    })),
                ),
                (
                    "nested".to_owned(),
                    v(Kind::StructValue(Struct {
                        fields: [("n".to_owned(), v(Kind::NumberValue(-3.0)))].into(),
                    })),
                ),
            ]
            .into(),
        };
        assert_eq!(
            struct_to_json(s),
            serde_json::json!({
                "sub": "spiffe://example.org/web",
                "exp": 1_800_000_000_i64,
                "ratio": 0.5,
                "ok": true,
                "none": null,
                "aud": ["db"],
                "nested": {"n": -3},
            })
        );
    }
}
