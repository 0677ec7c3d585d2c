//! A SPIFFE X.509 certificate authority: self-signed roots, intermediates under an
//! upstream authority, and X.509-SVID issuance (spiffe/spiffe `standards/X509-SVID.md`
//! §2–§4; the profile digest is `shared/specs/spiffe.md` §2).
//!
//! # Certificate profile
//!
//! **Signing certificates** (roots and intermediates): `cA=true` (no path-length limit, so
//! nested deployments can add levels), key usage critical `keyCertSign | cRLSign`, a single
//! URI SAN `spiffe://<trust-domain>` (no path, no trailing slash), no extended key usage,
//! SKI, AKI, a random 128-bit serial, and a Subject unique to the CA:
//! `O=Lanyard, CN=<td> CA, serialNumber=<serial in hex>` (X509-SVID.md §3.2 and SPIRE's fix
//! for Go's signature-check limit with many same-subject CAs). **No URI name constraints**:
//! X509-SVID.md §4.2 allows them, but rustls-webpki rejects every chain through a CA that
//! carries them.
//!
//! **Leaves** (X509-SVID.md §2, §3.1, §4): exactly one URI SAN, the SPIFFE ID (which must
//! have a path), DNS SANs only when the caller gives them, `cA=false` (basicConstraints
//! present, critical), key usage critical `digitalSignature`, plus `keyEncipherment` for RSA
//! keys only, extended key usage `serverAuth + clientAuth`, SKI, AKI, a random 128-bit
//! serial, Subject `O=Lanyard` (plus `CN=<first DNS name>` when there is one, as SPIRE does),
//! notBefore = now − 10 s (never before the CA's notBefore), notAfter = min(now + ttl, the
//! CA's notAfter).
//!
//! Key usage differs from SPIRE on purpose: SPIRE sets `digitalSignature | keyEncipherment |
//! keyAgreement` on every leaf. `keyEncipherment` only means something for RSA (TLS 1.2 RSA
//! key transport) and `keyAgreement` only for static (EC)DH, which TLS no longer uses; both
//! are MAY in §4.3, so an EC or Ed25519 leaf gets `digitalSignature` alone.

use std::net::IpAddr;
use std::sync::Arc;

use lanyard_core::{CryptoProvider, SpiffeId, TrustDomain, UnixTime};
use lanyard_crypto::KeyPair;
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::cert::{self, KeyKind, NOT_BEFORE_CUSHION};
use crate::error::Error;
use crate::svid::X509Svid;

/// The OID of the X.520 `serialNumber` attribute (2.5.4.5).
const DN_SERIAL_NUMBER: [u64; 4] = [2, 5, 4, 5];
/// The longest CommonName X.520 allows (ub-common-name).
const MAX_CN: usize = 64;

/// Whose public key goes into an issued certificate.
#[derive(Debug, Clone, Copy)]
pub enum SubjectKey<'a> {
    /// Generate a fresh P-256 key; the returned SVID carries it.
    Generate,
    /// Certify this key pair; the returned SVID carries its private key.
    KeyPair(&'a KeyPair),
    /// Certify this public key (SubjectPublicKeyInfo DER); the SVID has no private key.
    PublicKey(&'a [u8]),
}

/// A CA key and its certificate: signs X.509-SVIDs for one trust domain, and
/// intermediate CAs.
pub struct X509Authority {
    trust_domain: Option<TrustDomain>,
    issuer: Issuer<'static, rcgen::KeyPair>,
    cert: CertificateDer<'static>,
    /// Certificates above `cert` that issued SVIDs carry (upstream intermediates; never a
    /// self-signed root).
    upstream: Vec<CertificateDer<'static>>,
    self_signed: bool,
    not_before: UnixTime,
    not_after: UnixTime,
    /// Draws the serial numbers of what this CA signs.
    crypto: Arc<dyn CryptoProvider>,
}

impl std::fmt::Debug for X509Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X509Authority")
            .field("trust_domain", &self.trust_domain)
            .field("self_signed", &self.self_signed)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("upstream_len", &self.upstream.len())
            .finish_non_exhaustive()
    }
}

/// The rcgen signing key for `key`, or a fresh P-256 key.
fn rcgen_key(key: Option<&KeyPair>) -> Result<rcgen::KeyPair, Error> {
    match key {
        None => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(Error::generation),
        Some(k) => {
            let der = PrivatePkcs8KeyDer::from(k.to_pkcs8_der()?);
            rcgen::KeyPair::try_from(&der).map_err(|e| Error::InvalidKey(format!("cannot sign certificates: {e}")))
        }
    }
}

/// Parameters shared by roots and intermediates.
fn ca_params(
    crypto: &dyn CryptoProvider,
    td: &TrustDomain,
    not_before: UnixTime,
    not_after: UnixTime,
) -> Result<CertificateParams, Error> {
    let serial = cert::random_serial(crypto)?;
    let serial_hex = lanyard_core::hex::encode(&serial);
    let mut params = CertificateParams::default();
    params.not_before = cert::to_datetime(not_before)?;
    params.not_after = cert::to_datetime(not_after)?;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Lanyard");
    let cn = format!("{} CA", td.name());
    dn.push(
        DnType::CommonName,
        if cn.len() <= MAX_CN {
            cn
        } else {
            "Lanyard CA".to_owned()
        },
    );
    let printable =
        rcgen::string::PrintableString::try_from(serial_hex).map_err(|e| Error::Generation(e.to_string()))?;
    dn.push(
        DnType::CustomDnType(DN_SERIAL_NUMBER.to_vec()),
        DnValue::PrintableString(printable),
    );
    params.distinguished_name = dn;
    params.subject_alt_names = vec![SanType::URI(ia5(&td.id_string())?)];
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn ia5(s: &str) -> Result<Ia5String, Error> {
    Ia5String::try_from(s).map_err(|e| Error::Generation(format!("{s:?} is not IA5: {e}")))
}

/// Checks a DNS name for a SAN: a valid DNS name, optionally with a leading `*.` label.
fn check_dns_name(name: &str) -> Result<(), Error> {
    let base = name.strip_prefix("*.").unwrap_or(name);
    let ok = rustls::pki_types::DnsName::try_from(base).is_ok()
        && !base.ends_with('.')
        && base.parse::<std::net::IpAddr>().is_err();
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidDnsName(name.to_owned()))
    }
}

/// `now + ttl`, checking that `ttl` is positive.
fn end_of(now: UnixTime, ttl: u64) -> Result<UnixTime, Error> {
    if ttl == 0 {
        return Err(Error::InvalidValidity("the TTL must be positive".into()));
    }
    Ok(now.plus(ttl))
}

impl X509Authority {
    /// Creates a self-signed root CA for `trust_domain`, valid from `now − 10 s` for `ttl`
    /// seconds. `key` is the CA key (any algorithm lanyard-crypto supports); `None`
    /// generates a P-256 key. `crypto` draws the serial numbers of every certificate the
    /// CA signs (so do the other constructors' `crypto`).
    pub fn new_root(
        crypto: Arc<dyn CryptoProvider>,
        trust_domain: &TrustDomain,
        key: Option<&KeyPair>,
        ttl: u64,
        now: UnixTime,
    ) -> Result<X509Authority, Error> {
        let key = rcgen_key(key)?;
        let not_before = now.minus(NOT_BEFORE_CUSHION);
        let not_after = end_of(now, ttl)?;
        let params = ca_params(crypto.as_ref(), trust_domain, not_before, not_after)?;
        let cert = params.self_signed(&key).map_err(Error::generation)?;
        Ok(X509Authority {
            trust_domain: Some(trust_domain.clone()),
            issuer: Issuer::new(params, key),
            cert: cert.der().clone(),
            upstream: Vec::new(),
            self_signed: true,
            not_before,
            not_after,
            crypto,
        })
    }

    /// Creates an intermediate CA for `trust_domain`, signed by `upstream`. Its notAfter
    /// is capped at the upstream's. If the upstream carries a SPIFFE ID, it must be of the
    /// same trust domain.
    pub fn new_intermediate(
        crypto: Arc<dyn CryptoProvider>,
        trust_domain: &TrustDomain,
        upstream: &X509Authority,
        key: Option<&KeyPair>,
        ttl: u64,
        now: UnixTime,
    ) -> Result<X509Authority, Error> {
        if let Some(up) = &upstream.trust_domain
            && up != trust_domain
        {
            return Err(Error::TrustDomainMismatch {
                ca: up.name().to_owned(),
                requested: trust_domain.name().to_owned(),
            });
        }
        upstream.check_valid(now)?;
        let key = rcgen_key(key)?;
        let not_before = now.minus(NOT_BEFORE_CUSHION).max(upstream.not_before);
        let not_after = end_of(now, ttl)?.min(upstream.not_after);
        let params = ca_params(crypto.as_ref(), trust_domain, not_before, not_after)?;
        let cert = params.signed_by(&key, &upstream.issuer).map_err(Error::generation)?;
        Ok(X509Authority {
            trust_domain: Some(trust_domain.clone()),
            issuer: Issuer::new(params, key),
            cert: cert.der().clone(),
            upstream: upstream.issued_chain_tail(),
            self_signed: false,
            not_before,
            not_after,
            crypto,
        })
    }

    /// Loads a CA from its PEM certificate (optionally followed by the upstream
    /// intermediates above it) and its `PRIVATE KEY` (PKCS#8) PEM.
    pub fn from_pem(
        crypto: Arc<dyn CryptoProvider>,
        cert_chain_pem: &str,
        key_pem: &str,
    ) -> Result<X509Authority, Error> {
        let chain = cert::pem_blocks(cert_chain_pem, "CERTIFICATE", "CA certificate file")?
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        let mut keys = cert::pem_blocks(key_pem, "PRIVATE KEY", "CA key file")?;
        let key = match (keys.pop(), keys.is_empty()) {
            (Some(k), true) => k,
            _ => {
                return Err(Error::malformed(
                    "PEM",
                    "the CA key file must hold exactly one PRIVATE KEY",
                ));
            }
        };
        X509Authority::from_der(crypto, chain, &key)
    }

    /// Loads a CA from DER: its certificate first, then any upstream intermediates above
    /// it (a self-signed root among them is dropped), and its PKCS#8 private key.
    ///
    /// The certificate must have `cA=true`, allow `keyCertSign` and match the key. Its
    /// trust domain is its URI SAN `spiffe://<td>` when it has one; a CA without a SPIFFE
    /// ID (e.g. a corporate upstream root) can sign intermediates but not SVIDs.
    pub fn from_der(
        crypto: Arc<dyn CryptoProvider>,
        chain: Vec<CertificateDer<'static>>,
        key_pkcs8: &[u8],
    ) -> Result<X509Authority, Error> {
        let mut chain = chain.into_iter();
        let ca = chain.next().ok_or(Error::EmptyChain)?;
        let key = rcgen::KeyPair::try_from(&PrivatePkcs8KeyDer::from(key_pkcs8.to_vec()))
            .map_err(|e| Error::InvalidKey(format!("the CA key is not a usable PKCS#8 key: {e}")))?;
        let (trust_domain, self_signed, not_before, not_after) = {
            let parsed = cert::parse(&ca)?;
            let bc = parsed
                .basic_constraints()
                .map_err(|e| Error::malformed("certificate", e))?;
            if !bc.is_some_and(|b| b.value.ca) {
                return Err(Error::NotACa("basicConstraints cA is not true".into()));
            }
            let ku = parsed.key_usage().map_err(|e| Error::malformed("certificate", e))?;
            if ku.is_some_and(|k| !k.value.key_cert_sign()) {
                return Err(Error::NotACa("key usage does not allow keyCertSign".into()));
            }
            if rcgen::PublicKeyData::subject_public_key_info(&key) != parsed.public_key().raw {
                return Err(Error::InvalidKey(
                    "the CA key does not belong to the CA certificate".into(),
                ));
            }
            let mut tds = Vec::new();
            for uri in cert::uri_sans(&parsed)? {
                if uri.starts_with("spiffe://") {
                    let id = cert::parse_spiffe_uri(uri)?;
                    if !id.is_trust_domain_id() {
                        return Err(Error::NotACa(format!(
                            "a CA's SPIFFE ID must not have a path, found {id}"
                        )));
                    }
                    tds.push(id.trust_domain());
                }
            }
            if tds.len() > 1 {
                return Err(Error::NotACa("the CA certificate has more than one SPIFFE ID".into()));
            }
            let (nb, na) = cert::validity(&parsed);
            (tds.pop(), parsed.subject().as_raw() == parsed.issuer().as_raw(), nb, na)
        };
        let issuer = Issuer::from_ca_cert_der(&ca, key).map_err(Error::generation)?;
        let mut upstream = Vec::new();
        for c in chain {
            let parsed = cert::parse(&c)?;
            if parsed.subject().as_raw() != parsed.issuer().as_raw() {
                upstream.push(c);
            }
        }
        Ok(X509Authority {
            trust_domain,
            issuer,
            cert: ca,
            upstream,
            self_signed,
            not_before,
            not_after,
            crypto,
        })
    }

    /// The trust domain this CA issues for (`None` for a CA without a SPIFFE ID).
    pub fn trust_domain(&self) -> Option<&TrustDomain> {
        self.trust_domain.as_ref()
    }

    /// The CA certificate (DER).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The CA certificate as a `CERTIFICATE` PEM block.
    pub fn cert_pem(&self) -> String {
        cert::certs_to_pem(std::slice::from_ref(&self.cert))
    }

    /// The CA certificate followed by the upstream intermediates above it, as PEM: the
    /// file [`X509Authority::from_pem`] reads back.
    pub fn chain_pem(&self) -> String {
        let mut chain = vec![self.cert.clone()];
        chain.extend(self.upstream.iter().cloned());
        cert::certs_to_pem(&chain)
    }

    /// The CA private key as a `PRIVATE KEY` (PKCS#8) PEM block. Secret.
    pub fn key_pem(&self) -> String {
        cert::to_pem("PRIVATE KEY", self.issuer.key().serialized_der())
    }

    /// True for a self-signed (root) CA.
    pub fn is_self_signed(&self) -> bool {
        self.self_signed
    }

    /// The CA certificate's notBefore.
    pub fn not_before(&self) -> UnixTime {
        self.not_before
    }

    /// The CA certificate's notAfter; no certificate it issues outlives it.
    pub fn not_after(&self) -> UnixTime {
        self.not_after
    }

    /// The `x509-svid` bundle entry for this CA's certificate (meaningful for roots: a
    /// bundle holds the authorities that chains end at).
    pub fn bundle_jwk(&self) -> Result<lanyard_core::Jwk, Error> {
        crate::bundle::x509_authority_jwk(&self.cert)
    }

    /// The certificates an SVID issued by this CA carries after its leaf.
    fn issued_chain_tail(&self) -> Vec<CertificateDer<'static>> {
        let mut tail = Vec::with_capacity(1 + self.upstream.len());
        if !self.self_signed {
            tail.push(self.cert.clone());
        }
        tail.extend(self.upstream.iter().cloned());
        tail
    }

    fn check_valid(&self, now: UnixTime) -> Result<(), Error> {
        if now < self.not_before || now >= self.not_after {
            return Err(Error::CaNotValid {
                not_before: self.not_before,
                not_after: self.not_after,
                now,
            });
        }
        Ok(())
    }

    /// Issues an X.509-SVID for `spiffe_id`, valid from `now − 10 s` until
    /// `min(now + ttl, CA notAfter)`, with `dns_names` as extra DNS SANs.
    ///
    /// The ID must be in this CA's trust domain and have a path.
    pub fn issue_svid(
        &self,
        spiffe_id: &SpiffeId,
        subject_key: SubjectKey<'_>,
        ttl: u64,
        dns_names: &[String],
        now: UnixTime,
    ) -> Result<X509Svid, Error> {
        self.issue_server_svid(spiffe_id, subject_key, ttl, dns_names, &[], now)
    }

    /// [`X509Authority::issue_svid`] for a server that clients reach by address: also
    /// `ip_addresses` as IP SANs, so that clients checking the host they connected to
    /// (curl, browsers, any RFC 6125 client) accept it. X509-SVID.md §2 allows SANs of
    /// other types beside the one URI SAN.
    pub fn issue_server_svid(
        &self,
        spiffe_id: &SpiffeId,
        subject_key: SubjectKey<'_>,
        ttl: u64,
        dns_names: &[String],
        ip_addresses: &[IpAddr],
        now: UnixTime,
    ) -> Result<X509Svid, Error> {
        match subject_key {
            SubjectKey::Generate => {
                let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(Error::generation)?;
                let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
                let private = PrivatePkcs8KeyDer::from(key.serialize_der());
                self.issue(spiffe_id, &spki, Some(private), ttl, (dns_names, ip_addresses), now)
            }
            SubjectKey::KeyPair(key) => {
                let spki = key.public_spki_der()?;
                let private = PrivatePkcs8KeyDer::from(key.to_pkcs8_der()?);
                self.issue(spiffe_id, &spki, Some(private), ttl, (dns_names, ip_addresses), now)
            }
            SubjectKey::PublicKey(spki) => self.issue(spiffe_id, spki, None, ttl, (dns_names, ip_addresses), now),
        }
    }

    /// Issues an X.509-SVID for the key in a PKCS#10 CSR (DER), after checking the CSR's
    /// signature (proof of possession).
    ///
    /// The CSR must ask for exactly the identity the caller authorized: exactly one URI
    /// SAN, equal to `spiffe_id`; any DNS SAN it requests must be in `dns_names`; other SAN
    /// types are refused. The certificate is built from `spiffe_id` and `dns_names` alone:
    /// the CSR's subject and its other requested extensions (key usage, basic
    /// constraints, ...) are ignored, so a CSR cannot obtain a CA certificate.
    pub fn issue_svid_from_csr(
        &self,
        csr_der: &[u8],
        spiffe_id: &SpiffeId,
        ttl: u64,
        dns_names: &[String],
        now: UnixTime,
    ) -> Result<X509Svid, Error> {
        let (rest, csr) = X509CertificationRequest::from_der(csr_der).map_err(|e| Error::malformed("CSR", e))?;
        if !rest.is_empty() {
            return Err(Error::malformed("CSR", "trailing bytes after the CSR"));
        }
        csr.verify_signature().map_err(|e| Error::CsrSignature(e.to_string()))?;
        let mut uris = Vec::new();
        for ext in csr.requested_extensions().into_iter().flatten() {
            let ParsedExtension::SubjectAlternativeName(san) = ext else {
                continue;
            };
            for name in &san.general_names {
                match name {
                    GeneralName::URI(u) => uris.push(*u),
                    GeneralName::DNSName(d) => {
                        if !dns_names.iter().any(|a| a == d) {
                            return Err(Error::CsrIdentity(format!("DNS name {d:?} is not authorized")));
                        }
                    }
                    other => {
                        return Err(Error::CsrIdentity(format!(
                            "SAN {other:?} is not allowed in an X.509-SVID request"
                        )));
                    }
                }
            }
        }
        match uris.as_slice() {
            [one] if *one == spiffe_id.as_str() => {}
            [] => {
                return Err(Error::CsrIdentity(format!(
                    "the CSR has no URI SAN; it must request {spiffe_id}"
                )));
            }
            [one] => {
                return Err(Error::CsrIdentity(format!(
                    "the CSR requests {one:?}, but only {spiffe_id} is authorized"
                )));
            }
            many => {
                return Err(Error::CsrIdentity(format!(
                    "the CSR requests {} URI SANs; it must request exactly {spiffe_id}",
                    many.len()
                )));
            }
        }
        let spki = csr.certification_request_info.subject_pki.raw;
        self.issue(spiffe_id, spki, None, ttl, (dns_names, &[]), now)
    }

    fn issue(
        &self,
        spiffe_id: &SpiffeId,
        spki_der: &[u8],
        key: Option<PrivatePkcs8KeyDer<'static>>,
        ttl: u64,
        (dns_names, ip_addresses): (&[String], &[IpAddr]),
        now: UnixTime,
    ) -> Result<X509Svid, Error> {
        match &self.trust_domain {
            Some(td) if td.name() == spiffe_id.trust_domain_name() => {}
            other => {
                return Err(Error::TrustDomainMismatch {
                    ca: other
                        .as_ref()
                        .map_or_else(|| "none".to_owned(), |t| t.name().to_owned()),
                    requested: spiffe_id.trust_domain_name().to_owned(),
                });
            }
        }
        if spiffe_id.is_trust_domain_id() {
            return Err(Error::LeafWithoutPath { id: spiffe_id.clone() });
        }
        self.check_valid(now)?;
        let (_, kind) = cert::inspect_spki(spki_der)?;
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| Error::InvalidKey(format!("unsupported subject public key: {e}")))?;

        let mut params = CertificateParams::default();
        params.not_before = cert::to_datetime(now.minus(NOT_BEFORE_CUSHION).max(self.not_before))?;
        params.not_after = cert::to_datetime(end_of(now, ttl)?.min(self.not_after))?;
        params.serial_number = Some(SerialNumber::from_slice(&cert::random_serial(self.crypto.as_ref())?));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Lanyard");
        if let Some(first) = dns_names.first()
            && first.len() <= MAX_CN
        {
            dn.push(DnType::CommonName, first.as_str());
        }
        params.distinguished_name = dn;
        let mut sans = vec![SanType::URI(ia5(spiffe_id.as_str())?)];
        for name in dns_names {
            check_dns_name(name)?;
            sans.push(SanType::DnsName(ia5(name)?));
        }
        sans.extend(ip_addresses.iter().map(|ip| SanType::IpAddress(*ip)));
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if kind == KeyKind::Rsa {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;

        let leaf = params.signed_by(&public_key, &self.issuer).map_err(Error::generation)?;
        let mut chain = vec![leaf.der().clone()];
        chain.extend(self.issued_chain_tail());
        Ok(X509Svid { chain, key })
    }
}
