//! The holder: validating a received SD-CWT (draft §7.2) and presenting it in a Key
//! Binding Token (SD-KBT, §8, §8.1).
//!
//! ```text
//! kbt-cwt = #6.18([ << {1: alg, 13: <SD-CWT with the chosen disclosures>, 16: 294} >>, {},
//!                   << {3: aud, 6: iat / 7: cti, ? 39: cnonce, ? 4: exp, ? 5: nbf} >>, signature ])
//! ```

use super::verify::{
    DigestTable, Restorer, SdCwtPolicy, check_sd_cwt_headers, check_sd_cwt_times, confirmation_key, decode_claims,
    presented_disclosures,
};
use super::{Disclosure, DisclosureKind, KBT_TYP, PathSegment, SdCwtErrorKind, header, sd_error};
use crate::cbor::Value;
use crate::cose::{CoseKey, CoseSign1, header as cose_header};
use crate::crypto::{CryptoProvider, SigningKey, VerifyingKey};
use crate::cwt::{NumericDate, StandardClaims, label};
use crate::error::Error;
use crate::time::UnixTime;

/// The claims of an SD-KBT the holder makes.
#[derive(Clone, Copy, Debug, Default)]
pub struct KbtParams<'a> {
    /// The verifier (`aud`, required).
    pub audience: &'a str,
    /// `iat`: when the SD-KBT is made (required unless `cti` is given).
    pub issued_at: Option<UnixTime>,
    /// `cti`: a unique SD-KBT identifier.
    pub cti: Option<&'a [u8]>,
    /// `cnonce`: the verifier's nonce, opaque.
    pub cnonce: Option<&'a [u8]>,
    /// `exp`, if the SD-KBT should expire before its SD-CWT does.
    pub expires_at: Option<UnixTime>,
}

/// An SD-CWT the holder received and validated, with all of its disclosures.
#[derive(Clone, Debug)]
pub struct HolderSdCwt {
    token: CoseSign1,
    disclosures: Vec<Disclosure>,
    parents: Vec<Option<usize>>,
    paths: Vec<Vec<PathSegment>>,
    claims: Value,
    standard: StandardClaims,
    holder_key: CoseKey,
}

impl HolderSdCwt {
    /// Validates an issued SD-CWT as its holder (§7.2): the issuer signature under
    /// `issuer_key`, headers, claims, the time claims at `now`, that `cnf` is
    /// `holder_key`, and that every Redacted Claim Hash has exactly one disclosure and
    /// every disclosure a hash (so the issuer hides nothing from the holder).
    pub fn receive(
        bytes: &[u8],
        issuer_key: &dyn VerifyingKey,
        holder_key: &CoseKey,
        provider: &dyn CryptoProvider,
        policy: &SdCwtPolicy,
        now: UnixTime,
    ) -> Result<HolderSdCwt, Error> {
        HolderSdCwt::validate(bytes, Some(issuer_key), holder_key, provider, policy, now)
    }

    /// [`HolderSdCwt::receive`] without checking the issuer's signature: every other check
    /// runs. Only for a holder that has no way to know the issuer key and leaves the issuer
    /// check to the verifier (the working group's interop harness asks for this as
    /// `--issuer-key ignore`); a verifier never skips it.
    pub fn danger_receive_without_issuer_check(
        bytes: &[u8],
        holder_key: &CoseKey,
        provider: &dyn CryptoProvider,
        policy: &SdCwtPolicy,
        now: UnixTime,
    ) -> Result<HolderSdCwt, Error> {
        HolderSdCwt::validate(bytes, None, holder_key, provider, policy, now)
    }

    fn validate(
        bytes: &[u8],
        issuer_key: Option<&dyn VerifyingKey>,
        holder_key: &CoseKey,
        provider: &dyn CryptoProvider,
        policy: &SdCwtPolicy,
        now: UnixTime,
    ) -> Result<HolderSdCwt, Error> {
        if bytes.len() > policy.max_size {
            return Err(Error::TooLarge {
                limit: policy.max_size,
                actual: bytes.len(),
            });
        }
        let limits = policy.limits();
        let token = CoseSign1::decode(bytes, &limits)?;
        let (sd_alg, _) = check_sd_cwt_headers(&token, policy)?;
        policy.issuer_algorithm(&token)?;
        if let Some(issuer_key) = issuer_key {
            token.verify(issuer_key)?;
        }
        let (payload, header_claims) = decode_claims(&token, &limits)?;
        let standard = StandardClaims::from_map(&payload)?;
        check_sd_cwt_times(&standard)?;
        standard.check_validity(now, policy.leeway)?;
        let cnf = confirmation_key(&payload)?;
        if cnf.material != holder_key.material {
            return Err(sd_error(SdCwtErrorKind::ConfirmationKey, "cnf is not the holder's key"));
        }
        let disclosures = presented_disclosures(&token, &limits)?;
        let table = DigestTable::new(provider, sd_alg, policy.digest_input, disclosures.clone())?;
        let mut restorer = Restorer::new(table, sd_alg.output_len(), policy.max_depth).recording_paths();
        let claims = restorer.restore_claims(payload, header_claims)?;
        if let Some(unused) = restorer.table.first_unused() {
            return Err(sd_error(
                SdCwtErrorKind::DisclosureUnmatched,
                format!("disclosure {unused} matches no digest"),
            ));
        }
        if restorer.undisclosed > 0 {
            return Err(sd_error(
                SdCwtErrorKind::MissingDisclosure,
                format!("{} redacted claim hashes have no disclosure", restorer.undisclosed),
            ));
        }
        let parents = restorer.table.entries().iter().map(|e| e.parent).collect();
        let paths = restorer.paths.take().unwrap_or_default();
        Ok(HolderSdCwt {
            token,
            disclosures,
            parents,
            paths,
            claims,
            standard,
            holder_key: cnf,
        })
    }

    /// The issued token.
    pub fn token(&self) -> &CoseSign1 {
        &self.token
    }

    /// Every disclosure, in `sd_claims` order (selections index into this).
    pub fn disclosures(&self) -> &[Disclosure] {
        &self.disclosures
    }

    /// The disclosure whose value contains disclosure `index` (it must be presented too).
    pub fn parent(&self, index: usize) -> Option<usize> {
        self.parents.get(index).copied().flatten()
    }

    /// Where disclosure `index` sits in [`HolderSdCwt::claims`] (empty for decoys).
    pub fn path(&self, index: usize) -> &[PathSegment] {
        self.paths.get(index).map(Vec::as_slice).unwrap_or_default()
    }

    /// All claims, every redaction disclosed (what the holder knows).
    pub fn claims(&self) -> &Value {
        &self.claims
    }

    /// The registered claims of the token.
    pub fn standard_claims(&self) -> &StandardClaims {
        &self.standard
    }

    /// The holder key named by `cnf`.
    pub fn holder_key(&self) -> &CoseKey {
        &self.holder_key
    }

    /// The indices of the disclosures for which `predicate` holds (decoys are never
    /// passed to it).
    pub fn select(&self, predicate: impl Fn(&Disclosure) -> bool) -> Vec<usize> {
        (0..self.disclosures.len())
            .filter(|&i| {
                let d = &self.disclosures[i];
                *d.kind() != DisclosureKind::Decoy && predicate(d)
            })
            .collect()
    }

    /// `selection` (in its order, repeats dropped) followed by every ancestor of a nested
    /// disclosure that it lacks.
    pub fn with_ancestors(&self, selection: &[usize]) -> Result<Vec<usize>, Error> {
        let mut chosen = vec![false; self.disclosures.len()];
        let mut order = Vec::with_capacity(selection.len());
        for &i in selection {
            if i >= chosen.len() {
                return Err(Error::invalid_claim(
                    "sd_claims",
                    format!("there is no disclosure {i} (the SD-CWT has {})", chosen.len()),
                ));
            }
            if !chosen[i] {
                chosen[i] = true;
                order.push(i);
            }
        }
        let mut k = 0;
        while k < order.len() {
            if let Some(parent) = self.parent(order[k])
                && !chosen[parent]
            {
                chosen[parent] = true;
                order.push(parent);
            }
            k += 1;
        }
        Ok(order)
    }

    /// The SD-CWT as presented with the disclosures `selection` (and their ancestors):
    /// the issued token with only `sd_claims` changed (omitted when nothing is disclosed).
    pub fn presented(&self, selection: &[usize]) -> Result<CoseSign1, Error> {
        let chosen = self.with_ancestors(selection)?;
        let mut unprotected: Vec<(Value, Value)> = self
            .token
            .unprotected()
            .iter()
            .filter(|(k, _)| k.as_i64() != Some(header::SD_CLAIMS))
            .cloned()
            .collect();
        if !chosen.is_empty() {
            unprotected.push((
                Value::int(header::SD_CLAIMS),
                Value::Array(chosen.iter().map(|&i| self.disclosures[i].to_value()).collect()),
            ));
        }
        let mut presented = self.token.clone();
        presented.set_unprotected(unprotected)?;
        Ok(presented)
    }

    /// Makes the SD-KBT presenting `selection` to `params.audience`, signed by `holder`
    /// (which must be the `cnf` key). The SD-KBT is never valid when the SD-CWT is not.
    pub fn present(
        &self,
        selection: &[usize],
        params: &KbtParams<'_>,
        holder: &dyn SigningKey,
    ) -> Result<Vec<u8>, Error> {
        let signer_key = CoseKey::from_jwk(&holder.public_jwk().to_public())?;
        if signer_key.material != self.holder_key.material {
            return Err(sd_error(
                SdCwtErrorKind::ConfirmationKey,
                "the SD-KBT must be signed with the cnf key",
            ));
        }
        if params.issued_at.is_none() && params.cti.is_none() {
            return Err(Error::MissingClaim("iat"));
        }
        if params.issued_at.is_none() && params.expires_at.is_some() {
            return Err(sd_error(
                SdCwtErrorKind::TimeInconsistent,
                "an SD-KBT without iat must not have exp",
            ));
        }
        let kbt_times = StandardClaims {
            iat: params.issued_at.map(NumericDate::from),
            exp: params.expires_at.map(NumericDate::from),
            ..StandardClaims::default()
        };
        check_kbt_window(&kbt_times, &self.standard)?;

        let presented = self.presented(selection)?;
        let protected = vec![
            (Value::int(cose_header::ALG), Value::int(holder.algorithm().cose_id())),
            (Value::int(cose_header::KCWT), presented.to_value()),
            (Value::int(cose_header::TYP), Value::int(KBT_TYP)),
        ];
        let mut payload = vec![(Value::int(label::AUD), Value::text(params.audience))];
        if let Some(iat) = params.issued_at {
            payload.push((Value::int(label::IAT), NumericDate::from(iat).to_value()));
        }
        if let Some(exp) = params.expires_at {
            payload.push((Value::int(label::EXP), NumericDate::from(exp).to_value()));
        }
        if let Some(cti) = params.cti {
            payload.push((Value::int(label::CTI), Value::bytes(cti.to_vec())));
        }
        if let Some(cnonce) = params.cnonce {
            payload.push((Value::int(label::CNONCE), Value::bytes(cnonce.to_vec())));
        }
        let kbt = CoseSign1::sign(protected, Vec::new(), Value::Map(payload).to_vec(), holder)?;
        Ok(kbt.to_vec())
    }
}

/// The holder's side of §8.1: an SD-KBT is never valid for a period its SD-CWT is not.
fn check_kbt_window(kbt: &StandardClaims, cwt: &StandardClaims) -> Result<(), Error> {
    let ordered = |a: Option<NumericDate>, b: Option<NumericDate>, ok: fn(i64, i64) -> bool| match (a, b) {
        (Some(a), Some(b)) => ok(a.0, b.0),
        _ => true,
    };
    let fits = ordered(kbt.iat, cwt.iat, |k, c| k >= c)
        && ordered(kbt.iat, cwt.nbf, |k, c| k >= c)
        && ordered(kbt.iat, cwt.exp, |k, c| k < c)
        && ordered(kbt.exp, cwt.exp, |k, c| k <= c)
        && ordered(kbt.iat, kbt.exp, |i, e| i < e);
    if fits {
        Ok(())
    } else {
        Err(sd_error(
            SdCwtErrorKind::TimeInconsistent,
            "the SD-KBT would be valid outside the SD-CWT's validity",
        ))
    }
}
