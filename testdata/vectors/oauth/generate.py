#!/usr/bin/env python3
"""Generate the OAuth conformance vectors (testdata/vectors/oauth/).

Run from anywhere:  python3 testdata/vectors/oauth/generate.py

Writes, next to this file:

  client_assertion.json   private_key_jwt (RFC 7523 §3 + draft-ietf-oauth-rfc7523bis-11) and
                          jwt-spiffe (draft-ietf-oauth-spiffe-client-auth §3.1) assertions
  dpop.json               RFC 9449 proofs (the RFC's §4.1 and §7.1 examples verbatim, plus generated ones)
  access_token.json       RFC 9068 access tokens (the RFC's Figure 2 header and claims, signed here)
  thumbprints.json        RFC 7638 §3.1 and RFC 9449 §6.1 JWK thumbprints
  form.json               application/x-www-form-urlencoded bodies and token requests (RFC 6749 §3.1-3.2,
                          RFC 8693 §2.1, RFC 8707 §2)

It reuses the signing helpers and the keys of ../generate.py (keys.json is read, never
written: run ../generate.py first if a key is missing), so the output is deterministic.

Before writing, every token case is checked by a reference verifier below that collects
every rule a token breaks: each valid case must break none (its signature verifying under
the named keys with `cryptography`), each negative case exactly its one `error` rule.
"""

import copy
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import generate as base  # noqa: E402  (the parent generator: b64u, cjson, jws, sign, keys)

NOW = base.SYN_NOW  # 1780000000
LEEWAY = 60
MAX_ASSERTION_LIFETIME = 300
DPOP_MAX_AGE = 300
ISSUER = "https://as.example.com"
CLIENT_ID = "billing-client"
TOKEN_ENDPOINT = "https://as.example.com/token"
RS = "https://ledger.example.com"
TD = "example.org"

# RFC 9449 §4.1 (Figure 2/3) and §7.1 (Figure 13), verbatim, line breaks removed.
RFC9449_PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19"
    ".eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ"
    ".2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
)
RFC9449_RESOURCE_PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19"
    ".eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9"
    ".2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
)
RFC9449_IAT = 1562262616
RFC9449_RESOURCE_IAT = 1562262618
RFC9449_ACCESS_TOKEN = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"  # RFC 9449 §7.1
RFC9449_JWK = {
    "kty": "EC",
    "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
    "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
    "crv": "P-256",
}
RFC9449_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"  # RFC 9449 §6.1

# RFC 7638 §3.1 example key and thumbprint.
RFC7638_JWK = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

# RFC 9068 §2.2 Figure 2 (the RFC publishes header and claims, not a signed token).
RFC9068_HEADER = {"typ": "at+JWT", "alg": "RS256", "kid": "RjEwOwOA"}
RFC9068_CLAIMS = {
    "iss": "https://authorization-server.example.com/",
    "sub": "5ba552d67",
    "aud": "https://rs.example.com/",
    "exp": 1639528912,
    "iat": 1618354090,
    "jti": "dbe39bf3a3ba4238a513f51d6e1691c4",
    "client_id": "s6BhdRkqt3",
    "scope": "openid profile reademail",
}

# draft-ietf-oauth-spiffe-client-auth §3.1.1 JWT-SVID example (header and claims; its
# signing key is unpublished, so the claims are re-signed with lanyard-es256).
SPIFFE_EXAMPLE_CLAIMS = {
    "aud": ["https://as.example.com/"],
    "exp": 1747124543,
    "iat": 1747124243,
    "sub": "spiffe://example.org/my-oauth-client",
}

KNOWN_TYPS = {
    "at+jwt", "dpop+jwt", "txntoken+jwt", "wit+jwt", "wpt+jwt", "client-authentication+jwt",
    "authorization-grant+jwt", "oauth-client-attestation+jwt", "oauth-client-attestation-pop+jwt",
    "secevent+jwt", "logout+jwt", "token-introspection+jwt", "oauth-authz-req+jwt", "oauth-id-jag+jwt",
    "kb+jwt", "jwk-set+jwt", "entity-statement+jwt",
}
ASYM_ALGS = {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
SVID_ALGS = ASYM_ALGS - {"EdDSA"}


def known_typ(typ):
    t = typ.lower()
    if t.startswith("application/"):
        t = t[len("application/"):]
    return t if t in KNOWN_TYPS else None


def typ_error(typ, accepted, generic):
    """The TypRule of lanyard_core::jose: None when accepted, else the error kind."""
    if typ is None:
        return None if generic else "wrong_typ"
    found = known_typ(typ)
    if found is not None:
        return None if found == accepted else "typ_confusion"
    if generic and typ in ("JWT", "JOSE"):
        return None
    return "wrong_typ"


# --------------------------------------------------------------------------
# Case builders
# --------------------------------------------------------------------------
def pub(keys, name, **override):
    jwk = base.public_jwk(keys[name])
    jwk.update(override)
    return jwk


def assertion_claims(**change):
    claims = {
        "iss": CLIENT_ID, "sub": CLIENT_ID, "aud": ISSUER,
        "iat": NOW - 10, "exp": NOW + 50, "jti": base.fake_jti("assertion"),
    }
    for k, v in change.items():
        if v is None:
            claims.pop(k, None)
        else:
            claims[k] = v
    return claims


def build_assertion_cases(keys):
    es = keys["lanyard-es256"]
    cases = []

    def pkj(cid, why, *, header=None, claims=None, key=es, client_keys=("lanyard-es256",), error=None,
            client_id=CLIENT_ID, issuer=ISSUER, now=NOW, token=None):
        header = header if header is not None else {"alg": "ES256", "kid": "lanyard-es256", "typ": "client-authentication+jwt"}
        claims = claims if claims is not None else assertion_claims(jti=base.fake_jti(cid))
        if token is None:
            token = base.jws(header, claims, key=key)
        case = {"id": cid, "why": why, "kind": "private_key_jwt", "token": token, "client_id": client_id,
                "issuer": issuer, "client_keys": list(client_keys), "now": now,
                "expect": "error" if error else "valid"}
        if error:
            case["error"] = error
        else:
            case["claims"] = claims
        cases.append(case)

    h = lambda **kw: {k: v for k, v in {"alg": "ES256", "kid": "lanyard-es256", **kw}.items() if v is not None}
    c = lambda cid, **kw: assertion_claims(**{"jti": base.fake_jti(cid), **kw})

    pkj("pkj-typed", "rfc7523bis explicit type client-authentication+jwt, aud the issuer as a string")
    pkj("pkj-no-typ", "no typ: RFC 7523 assertions predate explicit typing", header=h())
    pkj("pkj-typ-jwt", "typ JWT is the generic form", header=h(typ="JWT"))
    pkj("pkj-typ-media-type", "typ compared as a media type: application/ prefix and case ignored",
        header=h(typ="application/Client-Authentication+JWT"))
    pkj("pkj-aud-array", "aud may be a one-element array holding the issuer", header=h(),
        claims=c("pkj-aud-array", aud=[ISSUER]))
    pkj("pkj-rs256", "RS256 with the client's RSA key", header={"alg": "RS256", "kid": "lanyard-rs256"},
        key=keys["lanyard-rs256"], client_keys=("lanyard-es256", "lanyard-rs256"))
    pkj("pkj-ps256", "PS256", header={"alg": "PS256", "kid": "lanyard-ps256"}, key=keys["lanyard-ps256"],
        client_keys=("lanyard-ps256",))
    pkj("pkj-eddsa", "EdDSA", header={"alg": "EdDSA", "kid": "lanyard-ed25519"}, key=keys["lanyard-ed25519"],
        client_keys=("lanyard-ed25519",))
    pkj("pkj-no-kid-one-key", "without kid, the single registered key that fits the algorithm", header={"alg": "ES256"})
    pkj("pkj-nbf-and-no-iat", "nbf instead of iat: the lifetime is measured from now",
        claims=c("pkj-nbf-and-no-iat", iat=None, nbf=NOW - 5))
    pkj("pkj-lifetime-300", "exactly the 300 s maximum (exp - iat)",
        claims=c("pkj-lifetime-300", iat=NOW, exp=NOW + 300))
    pkj("pkj-within-leeway", "expired 30 s ago, within the 60 s leeway",
        claims=c("pkj-within-leeway", iat=NOW - 200, exp=NOW - 30))

    pkj("pkj-aud-issuer-plus-other", "aud holds the issuer and another value: rfc7523bis wants the issuer as sole value",
        claims=c("pkj-aud-issuer-plus-other", aud=[ISSUER, "https://other.example.com"]), error="aud_not_sole")
    pkj("pkj-aud-trailing-slash", "aud is the issuer with a trailing slash: compared exactly",
        claims=c("pkj-aud-trailing-slash", aud=ISSUER + "/"), error="aud_trailing_slash")
    pkj("pkj-aud-token-endpoint", "aud is the token endpoint URL, which rfc7523bis forbids for client authentication",
        claims=c("pkj-aud-token-endpoint", aud=TOKEN_ENDPOINT), error="wrong_audience")
    pkj("pkj-typ-at-jwt", "an access token's typ: token-type confusion", header=h(typ="at+jwt"), error="typ_confusion")
    pkj("pkj-typ-wit-jwt", "a WIT's typ: token-type confusion", header=h(typ="wit+jwt"), error="typ_confusion")
    pkj("pkj-typ-dpop", "a DPoP proof's typ: token-type confusion", header=h(typ="dpop+jwt"), error="typ_confusion")
    pkj("pkj-typ-grant", "the authorization-grant type of rfc7523bis is not a client assertion",
        header=h(typ="authorization-grant+jwt"), error="typ_confusion")
    pkj("pkj-typ-unknown", "an unknown explicit typ", header=h(typ="foo+jwt"), error="wrong_typ")
    pkj("pkj-expired", "expired beyond the leeway", claims=c("pkj-expired", iat=NOW - 200, exp=NOW - 61), error="expired")
    pkj("pkj-nbf-future", "not valid before 2 minutes from now",
        claims=c("pkj-nbf-future", iat=None, nbf=NOW + 120, exp=NOW + 200), error="not_yet_valid")
    pkj("pkj-iat-future", "issued 2 minutes in the future",
        claims=c("pkj-iat-future", iat=NOW + 120, exp=NOW + 200), error="not_yet_valid")
    pkj("pkj-lifetime-301", "301 s from iat and from now: over the 5-minute maximum",
        claims=c("pkj-lifetime-301", iat=NOW, exp=NOW + 301), error="lifetime_too_long")
    pkj("pkj-lifetime-from-iat", "still 100 s to live, but exp - iat is 350 s (the Authlib-style long assertion)",
        claims=c("pkj-lifetime-from-iat", iat=NOW - 250, exp=NOW + 100), error="lifetime_too_long")
    pkj("pkj-missing-exp", "exp is required", claims=c("pkj-missing-exp", exp=None), error="missing_claim")
    pkj("pkj-missing-jti", "jti is required so a reuse can be refused", claims=c("pkj-missing-jti", jti=None),
        error="missing_claim")
    pkj("pkj-iss-not-client", "iss is not the client_id the request names",
        claims=c("pkj-iss-not-client", iss="other-client"), error="client_id_mismatch")
    pkj("pkj-sub-not-client", "sub is not the client_id the request names",
        claims=c("pkj-sub-not-client", sub="other-client"), error="client_id_mismatch")
    pkj("pkj-other-client-id", "a valid assertion of billing-client presented as another client",
        client_id="ledger-client", error="client_id_mismatch")
    pkj("pkj-attacker-signature", "signed by a key that is not the client's, under the client's kid",
        key=keys["attacker-es256"], error="bad_signature")
    pkj("pkj-unknown-kid", "kid names no registered key", header=h(kid="rotated-away"), error="unknown_key")
    pkj("pkj-no-kid-two-keys", "without kid and with two fitting ES256 keys the key is ambiguous",
        header={"alg": "ES256"}, client_keys=("lanyard-es256", "attacker-es256"), error="unknown_key")
    pkj("pkj-alg-mismatch", "RS256 under the kid of the client's ES256 key",
        header={"alg": "RS256", "kid": "lanyard-es256"}, key=keys["lanyard-rs256"], error="alg_mismatch")
    none_claims = c("pkj-alg-none")
    pkj("pkj-alg-none", "an unsecured JWS", token=base.jws({"alg": "none"}, none_claims, signature=b""),
        error="alg_not_allowed")
    pkj("pkj-hs256", "HMAC keyed with the client's public key PEM",
        token=base.jws({"alg": "HS256", "kid": "lanyard-es256"}, c("pkj-hs256"), key=base.pem_of(es), alg="HS256"),
        error="alg_not_allowed")

    # jwt-spiffe
    def spiffe(cid, why, *, header=None, claims=None, key=es, anchors=("lanyard-es256",), error=None,
               issuer=ISSUER, now=NOW):
        header = header if header is not None else {"alg": "ES256", "kid": "lanyard-es256", "typ": "JWT"}
        claims = claims if claims is not None else {
            "sub": "spiffe://example.org/billing", "aud": ISSUER, "iat": NOW - 10, "exp": NOW + 290}
        case = {"id": cid, "why": why, "kind": "jwt_spiffe", "token": base.jws(header, claims, key=key),
                "issuer": issuer, "trust_domain": TD, "anchors": list(anchors), "now": now,
                "expect": "error" if error else "valid"}
        if error:
            case["error"] = error
        else:
            case["spiffe_id"] = claims["sub"]
        cases.append(case)

    sc = lambda **kw: {k: v for k, v in {"sub": "spiffe://example.org/billing", "aud": ISSUER, "iat": NOW - 10,
                                         "exp": NOW + 290, **kw}.items() if v is not None}
    ex_now = SPIFFE_EXAMPLE_CLAIMS["iat"] + 60
    spiffe("spiffe-draft-example", "the draft's §3.1.1 JWT-SVID claims (aud [\"https://as.example.com/\"], no jti), "
           "for an issuer published with the trailing slash", claims=SPIFFE_EXAMPLE_CLAIMS,
           issuer="https://as.example.com/", now=ex_now)
    spiffe("spiffe-draft-example-issuer-without-slash", "the same SVID at an issuer published without the slash",
           claims=SPIFFE_EXAMPLE_CLAIMS, issuer=ISSUER, now=ex_now, error="aud_trailing_slash")
    spiffe("spiffe-no-typ", "a JWT-SVID without typ", header={"alg": "ES256", "kid": "lanyard-es256"})
    spiffe("spiffe-with-jti", "a jti is allowed (not required)", claims=sc(jti="svid-jti-1"))
    spiffe("spiffe-two-audiences", "the issuer plus another audience", claims=sc(aud=[ISSUER, "spiffe://example.org/db"]),
           error="aud_not_sole")
    spiffe("spiffe-typ-client-auth", "jwt-spiffe takes JWT-SVIDs: only the generic typ forms",
           header={"alg": "ES256", "kid": "lanyard-es256", "typ": "client-authentication+jwt"}, error="typ_confusion")
    spiffe("spiffe-typ-wit", "a WIT offered as a JWT-SVID", header={"alg": "ES256", "kid": "lanyard-es256", "typ": "wit+jwt"},
           error="typ_confusion")
    spiffe("spiffe-no-kid", "JWT-SVIDs carry kid", header={"alg": "ES256", "typ": "JWT"}, error="missing_kid")
    spiffe("spiffe-foreign-trust-domain", "sub in a trust domain with no trusted keys",
           claims=sc(sub="spiffe://evil.example/billing"), error="unknown_key")
    spiffe("spiffe-trust-domain-id", "a trust domain is not a workload", claims=sc(sub="spiffe://example.org"),
           error="invalid_identifier")
    spiffe("spiffe-expired", "expired beyond the leeway", claims=sc(iat=NOW - 300, exp=NOW - 61), error="expired")
    spiffe("spiffe-lifetime-from-iat", "exp - iat over 300 s", claims=sc(iat=NOW - 100, exp=NOW + 250),
           error="lifetime_too_long")
    spiffe("spiffe-eddsa", "JWT-SVID.md allows no EdDSA", header={"alg": "EdDSA", "kid": "lanyard-ed25519", "typ": "JWT"},
           key=keys["lanyard-ed25519"], anchors=("lanyard-ed25519",), error="alg_not_allowed")
    spiffe("spiffe-missing-aud", "aud is required", claims=sc(aud=None), error="missing_claim")
    return cases


def build_dpop_cases(keys):
    cases = []

    def case(cid, why, proof, *, method="POST", uri=TOKEN_ENDPOINT, now=NOW, access_token=None, nonces=None,
             error=None, jkt=None, jti=None):
        c = {"id": cid, "why": why, "proof": proof, "request": {"method": method, "uri": uri}, "now": now,
             "expect": "error" if error else "valid"}
        if access_token is not None:
            c["request"]["access_token"] = access_token
        if nonces is not None:
            c["request"]["nonces"] = nonces
        if error:
            c["error"] = error
        else:
            c["jkt"] = jkt
            c["jti"] = jti
        cases.append(c)

    rfc_uri = "https://server.example.com/token"
    rs_uri = "https://resource.example.org/protectedresource"
    case("rfc9449-4.1-proof", "RFC 9449 §4.1 example proof; its key's thumbprint is the jkt of §6.1",
         RFC9449_PROOF, uri=rfc_uri, now=RFC9449_IAT + 5, jkt=RFC9449_JKT, jti="-BwC3ESc6acc2lTc")
    case("rfc9449-4.1-normalised-uri", "the request URI differs only by case, default port and query (RFC 9449 §4.3)",
         RFC9449_PROOF, uri="HTTPS://SERVER.example.com:443/token?x=1", now=RFC9449_IAT + 5, jkt=RFC9449_JKT,
         jti="-BwC3ESc6acc2lTc")
    case("rfc9449-7.1-resource-proof", "RFC 9449 §7.1 example proof with the §7.1 access token bound by ath",
         RFC9449_RESOURCE_PROOF, method="GET", uri=rs_uri, now=RFC9449_RESOURCE_IAT + 5,
         access_token=RFC9449_ACCESS_TOKEN, jkt=RFC9449_JKT, jti="e1j3V_bKic8-LAEB")
    case("rfc9449-4.1-wrong-htm", "the §4.1 proof on a GET request", RFC9449_PROOF, method="GET", uri=rfc_uri,
         now=RFC9449_IAT + 5, error="htm_mismatch")
    case("rfc9449-4.1-wrong-htu", "the §4.1 proof sent to another URI", RFC9449_PROOF,
         uri="https://server.example.com/introspect", now=RFC9449_IAT + 5, error="htu_mismatch")
    case("rfc9449-4.1-http-scheme", "the scheme is part of htu", RFC9449_PROOF, uri="http://server.example.com/token",
         now=RFC9449_IAT + 5, error="htu_mismatch")
    case("rfc9449-4.1-stale", "iat older than the 300 s window", RFC9449_PROOF, uri=rfc_uri,
         now=RFC9449_IAT + DPOP_MAX_AGE + 1, error="stale_proof")
    case("rfc9449-4.1-future", "iat more than the 60 s leeway ahead", RFC9449_PROOF, uri=rfc_uri,
         now=RFC9449_IAT - 61, error="not_yet_valid")
    case("rfc9449-4.1-nonce-required", "the server requires a nonce and the proof has none", RFC9449_PROOF, uri=rfc_uri,
         now=RFC9449_IAT + 5, nonces=["eyJ7S_zG.eyJH0-Z.HX4w-7v"], error="dpop_nonce_missing")
    case("rfc9449-4.1-with-access-token", "a proof without ath presented with an access token", RFC9449_PROOF,
         uri=rfc_uri, now=RFC9449_IAT + 5, access_token=RFC9449_ACCESS_TOKEN, error="missing_claim")
    case("rfc9449-7.1-wrong-ath", "ath binds another access token", RFC9449_RESOURCE_PROOF, method="GET", uri=rs_uri,
         now=RFC9449_RESOURCE_IAT + 5, access_token="another-access-token", error="ath_mismatch")
    case("rfc9449-7.1-at-token-endpoint", "a proof binding an access token presented without one (Lanyard refuses ath there)",
         RFC9449_RESOURCE_PROOF, method="GET", uri=rs_uri, now=RFC9449_RESOURCE_IAT + 5, error="forbidden_claim")

    es = keys["lanyard-es256"]
    es_pub = {k: v for k, v in base.public_jwk(es).items() if k != "kid"}

    def proof(cid, *, header=None, claims=None, key=es, alg="ES256", signature=None):
        header = header if header is not None else {"typ": "dpop+jwt", "alg": alg, "jwk": es_pub}
        claims = claims if claims is not None else {"jti": base.fake_jti(cid), "htm": "POST", "htu": TOKEN_ENDPOINT,
                                                     "iat": NOW - 5}
        return base.jws(header, claims, key=key, alg=alg if signature is None else None, signature=signature), claims

    def dp(cid, why, error=None, *, jkt_of=es, **kw):
        p, claims = proof(cid, **{k: v for k, v in kw.items() if k in ("header", "claims", "key", "alg", "signature")})
        rest = {k: v for k, v in kw.items() if k not in ("header", "claims", "key", "alg", "signature")}
        jkt = thumbprint(base.public_jwk(jkt_of)) if not error else None
        case(cid, why, p, error=error, jkt=jkt, jti=None if error else claims.get("jti"), **rest)

    def claims_with(cid, **change):
        claims = {"jti": base.fake_jti(cid), "htm": "POST", "htu": TOKEN_ENDPOINT, "iat": NOW - 5}
        for k, v in change.items():
            if v is None:
                claims.pop(k, None)
            else:
                claims[k] = v
        return claims

    dp("dpop-es256", "a Lanyard-style proof at the token endpoint")
    dp("dpop-nonce", "the server's current nonce (two accepted during rotation)",
       claims=claims_with("dpop-nonce", nonce="nonce-2"), nonces=["nonce-1", "nonce-2"])
    dp("dpop-htu-query", "htu with a query: ignored on both sides (RFC 9449 §4.3)",
       claims=claims_with("dpop-htu-query", htu=TOKEN_ENDPOINT + "?tenant=a"))
    rsa_pub = base.public_jwk(keys["lanyard-rs256"])
    dp("dpop-rs256", "an RS256 proof", header={"typ": "dpop+jwt", "alg": "RS256", "jwk": rsa_pub},
       key=keys["lanyard-rs256"], alg="RS256", jkt_of=keys["lanyard-rs256"])
    ed_pub = base.public_jwk(keys["lanyard-ed25519"])
    dp("dpop-eddsa", "an EdDSA proof", header={"typ": "dpop+jwt", "alg": "EdDSA", "jwk": ed_pub},
       key=keys["lanyard-ed25519"], alg="EdDSA", jkt_of=keys["lanyard-ed25519"])
    dp("dpop-resource", "a proof at a resource, binding the access token",
       claims=claims_with("dpop-resource", htm="GET", htu=RS + "/entries", ath=base.sha256_b64u("at-123")),
       method="GET", uri=RS + "/entries", access_token="at-123")

    dp("dpop-nonce-stale", "a nonce the server no longer accepts", "dpop_nonce_mismatch",
       claims=claims_with("dpop-nonce-stale", nonce="nonce-0"), nonces=["nonce-1", "nonce-2"])
    private = dict(es_pub, d=es["d"])
    dp("dpop-private-jwk", "the header jwk carries the private key", "dpop_private_key",
       header={"typ": "dpop+jwt", "alg": "ES256", "jwk": private})
    dp("dpop-typ-jwt", "typ JWT: a DPoP proof must say dpop+jwt", "wrong_typ",
       header={"typ": "JWT", "alg": "ES256", "jwk": es_pub})
    dp("dpop-typ-missing", "no typ", "wrong_typ", header={"alg": "ES256", "jwk": es_pub})
    dp("dpop-typ-wpt", "a WPT's typ", "typ_confusion", header={"typ": "wpt+jwt", "alg": "ES256", "jwk": es_pub})
    dp("dpop-no-jwk", "no jwk header", "malformed", header={"typ": "dpop+jwt", "alg": "ES256"})
    dp("dpop-attacker-signature", "signed by another key than the header jwk", "bad_signature",
       key=keys["attacker-es256"])
    dp("dpop-jwk-alg-mismatch", "the jwk says RS256, the header PS256", "alg_mismatch",
       header={"typ": "dpop+jwt", "alg": "PS256", "jwk": rsa_pub}, key=keys["lanyard-rs256"], alg="PS256")
    dp("dpop-hs256", "HMAC is never a DPoP algorithm", "alg_not_allowed",
       header={"typ": "dpop+jwt", "alg": "HS256", "jwk": es_pub}, key=b"secret-key-material", alg="HS256")
    dp("dpop-missing-jti", "jti is required", "missing_claim", claims=claims_with("dpop-missing-jti", jti=None))
    dp("dpop-missing-iat", "iat is required", "missing_claim", claims=claims_with("dpop-missing-iat", iat=None))
    dp("dpop-stale", "iat 301 s old", "stale_proof", claims=claims_with("dpop-stale", iat=NOW - DPOP_MAX_AGE - 1))
    dp("dpop-htm-lowercase", "htm is case-sensitive", "htm_mismatch", claims=claims_with("dpop-htm-lowercase", htm="post"))
    dp("dpop-htu-other-port", "a non-default port is part of htu", "htu_mismatch",
       claims=claims_with("dpop-htu-other-port", htu="https://as.example.com:8443/token"))
    dp("dpop-wrong-ath", "ath of another token", "ath_mismatch",
       claims=claims_with("dpop-wrong-ath", htm="GET", htu=RS + "/entries", ath=base.sha256_b64u("at-other")),
       method="GET", uri=RS + "/entries", access_token="at-123")
    return cases


def thumbprint(jwk):
    members = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    text = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return base.sha256_b64u(text)


def build_access_token_cases(keys):
    rsa = keys["lanyard-rs256"]
    es = keys["lanyard-es256"]
    cases = []

    def at(cid, why, *, header=None, claims=None, key=es, error=None, as_keys=None, issuer=ISSUER, audience=RS,
           now=NOW, token=None):
        header = header if header is not None else {"alg": "ES256", "kid": "lanyard-es256", "typ": "at+jwt"}
        claims = claims if claims is not None else at_claims(cid)
        token = token or base.jws(header, claims, key=key)
        c = {"id": cid, "why": why, "token": token, "issuer": issuer, "audience": audience,
             "as_keys": as_keys or [{"key": "lanyard-es256"}], "now": now, "expect": "error" if error else "valid"}
        if error:
            c["error"] = error
        else:
            c["claims"] = claims
        cases.append(c)

    def at_claims(cid, **change):
        claims = {"iss": ISSUER, "sub": CLIENT_ID, "aud": RS, "client_id": CLIENT_ID, "scope": "entries:read",
                  "iat": NOW - 10, "exp": NOW + 290, "jti": base.fake_jti(cid)}
        for k, v in change.items():
            if v is None:
                claims.pop(k, None)
            else:
                claims[k] = v
        return claims

    rfc_now = RFC9068_CLAIMS["iat"] + 10
    rfc_keys = [{"key": "lanyard-rs256", "kid": "RjEwOwOA"}]
    at("rfc9068-figure2", "RFC 9068 Figure 2 header (typ at+JWT) and claims, signed with lanyard-rs256 under kid RjEwOwOA",
       header=RFC9068_HEADER, claims=RFC9068_CLAIMS, key=rsa, as_keys=rfc_keys,
       issuer=RFC9068_CLAIMS["iss"], audience=RFC9068_CLAIMS["aud"], now=rfc_now)
    at("rfc9068-figure2-typ-jwt", "the Figure 2 claims with typ JWT: RFC 9068 §4 requires at+jwt",
       header=dict(RFC9068_HEADER, typ="JWT"), claims=RFC9068_CLAIMS, key=rsa, as_keys=rfc_keys,
       issuer=RFC9068_CLAIMS["iss"], audience=RFC9068_CLAIMS["aud"], now=rfc_now, error="wrong_typ")
    at("rfc9068-figure2-other-rs", "the Figure 2 token at another resource server", header=RFC9068_HEADER,
       claims=RFC9068_CLAIMS, key=rsa, as_keys=rfc_keys, issuer=RFC9068_CLAIMS["iss"],
       audience="https://rs2.example.com/", now=rfc_now, error="wrong_audience")

    at("at-lanyard", "a Lanyard access token: client_credentials, DPoP-bound, delegated through two actors",
       claims=at_claims("at-lanyard", cnf={"jkt": RFC9449_JKT},
                        act={"sub": "spiffe://example.org/agent", "act": {"sub": "spiffe://example.org/gateway"}}))
    at("at-media-type", "typ application/at+jwt", header={"alg": "ES256", "kid": "lanyard-es256", "typ": "application/at+jwt"})
    at("at-multi-aud", "aud lists this resource among others", claims=at_claims("at-multi-aud", aud=["https://other.example", RS]))
    at("at-cert-bound", "certificate-bound (cnf.x5t#S256)",
       claims=at_claims("at-cert-bound", cnf={"x5t#S256": base.sha256_b64u("not a real certificate")}))
    at("at-key-rotation", "signed by the second of two published keys, found by kid",
       header={"alg": "RS256", "kid": "lanyard-rs256", "typ": "at+jwt"}, key=rsa,
       as_keys=[{"key": "lanyard-es256"}, {"key": "lanyard-rs256"}])

    h = lambda typ: {k: v for k, v in {"alg": "ES256", "kid": "lanyard-es256", "typ": typ}.items() if v is not None}
    at("at-typ-jwt", "typ JWT", header=h("JWT"), error="wrong_typ")
    at("at-typ-missing", "no typ", header=h(None), error="wrong_typ")
    at("at-typ-wpt", "a WPT's typ: token-type confusion", header=h("wpt+jwt"), error="typ_confusion")
    at("at-typ-txn-token", "a Txn-Token's typ", header=h("txntoken+jwt"), error="typ_confusion")
    at("at-wrong-aud", "for another resource server", claims=at_claims("at-wrong-aud", aud="https://other.example"),
       error="wrong_audience")
    at("at-wrong-iss", "from another issuer", claims=at_claims("at-wrong-iss", iss=ISSUER + "/"), error="issuer_mismatch")
    at("at-expired", "expired beyond the leeway", claims=at_claims("at-expired", iat=NOW - 400, exp=NOW - 61),
       error="expired")
    at("at-nbf-future", "not yet valid", claims=at_claims("at-nbf-future", nbf=NOW + 120), error="not_yet_valid")
    at("at-missing-client-id", "client_id is required (RFC 9068 §2.2)", claims=at_claims("at-missing-client-id", client_id=None),
       error="missing_claim")
    at("at-missing-jti", "jti is required", claims=at_claims("at-missing-jti", jti=None), error="missing_claim")
    at("at-missing-sub", "sub is required", claims=at_claims("at-missing-sub", sub=None), error="missing_claim")
    at("at-scope-syntax", "a scope with two spaces", claims=at_claims("at-scope-syntax", scope="a  b"), error="scope_syntax")
    at("at-attacker-signature", "signed by a key the AS does not publish", key=keys["attacker-es256"], error="bad_signature")
    at("at-unknown-kid", "kid of a key the AS does not publish", header={"alg": "ES256", "kid": "gone", "typ": "at+jwt"},
       error="unknown_key")
    deep = {"sub": "a0"}
    for i in range(1, 17):
        deep = {"sub": f"a{i}", "act": deep}
    at("at-act-too-deep", "an actor chain of 17", claims=at_claims("at-act-too-deep", act=deep), error="invalid_claim")
    at("at-hs256", "HMAC keyed with the AS's public key PEM",
       token=base.jws({"alg": "HS256", "kid": "lanyard-es256", "typ": "at+jwt"}, at_claims("at-hs256"),
                      key=base.pem_of(es), alg="HS256"), error="alg_not_allowed")
    return cases


def build_thumbprint_cases():
    return [
        {"id": "rfc7638-3.1", "why": "RFC 7638 §3.1 example RSA key", "jwk": RFC7638_JWK,
         "thumbprint": RFC7638_THUMBPRINT},
        {"id": "rfc9449-6.1", "why": "the RFC 9449 §4.1 proof key, whose thumbprint §6.1 shows as cnf.jkt",
         "jwk": RFC9449_JWK, "thumbprint": RFC9449_JKT},
    ]


def build_form_cases():
    cases = []

    def form(cid, why, body, *, params=None, error=None, grant_type=None, request_error=None):
        c = {"id": cid, "why": why, "body": body, "expect": "error" if error else "valid"}
        if error:
            c["error"] = error
        else:
            c["params"] = params
            if grant_type is not None:
                c["grant_type"] = grant_type
            if request_error is not None:
                c["request_error"] = request_error
        cases.append(c)

    te = "urn:ietf:params:oauth:grant-type:token-exchange"
    at_type = "urn:ietf:params:oauth:token-type:access_token"
    enc = lambda s: s.replace(":", "%3A").replace("/", "%2F")
    form("form-client-credentials", "client_credentials with scope and two resources",
         "grant_type=client_credentials&scope=read+write&resource=https%3A%2F%2Fa.example%2F&resource=https%3A%2F%2Fb.example%2F",
         params={"grant_type": ["client_credentials"], "scope": ["read write"],
                 "resource": ["https://a.example/", "https://b.example/"]}, grant_type="client_credentials")
    form("form-empty-values", "parameters without a value are omitted (RFC 6749 §3.1), also for the duplicate rule",
         "grant_type=client_credentials&scope=&scope=read&client_id",
         params={"grant_type": ["client_credentials"], "scope": ["read"]}, grant_type="client_credentials")
    form("form-token-exchange", "a token exchange with two audiences",
         f"grant_type={enc(te)}&subject_token=abc&subject_token_type={enc(at_type)}&audience=a&audience=b",
         params={"grant_type": [te], "subject_token": ["abc"], "subject_token_type": [at_type], "audience": ["a", "b"]},
         grant_type=te)
    form("form-actor-without-type", "actor_token without actor_token_type (RFC 8693 §2.1)",
         f"grant_type={enc(te)}&subject_token=abc&subject_token_type={enc(at_type)}&actor_token=def",
         params={"grant_type": [te], "subject_token": ["abc"], "subject_token_type": [at_type], "actor_token": ["def"]},
         grant_type=te, request_error="missing_parameter")
    form("form-resource-fragment", "a resource with a fragment (RFC 8707 §2)",
         "grant_type=client_credentials&resource=https%3A%2F%2Fa.example%2F%23frag",
         params={"grant_type": ["client_credentials"], "resource": ["https://a.example/#frag"]},
         grant_type="client_credentials", request_error="invalid_resource")
    form("form-duplicate-scope", "scope twice (RFC 6749 §3.2)", "grant_type=client_credentials&scope=a&scope=b",
         error="duplicate_parameter")
    form("form-duplicate-grant-type", "grant_type twice, even with the same value",
         "grant_type=client_credentials&grant_type=client_credentials", error="duplicate_parameter")
    form("form-duplicate-assertion", "client_assertion twice",
         "client_assertion=a&client_assertion_type=t&client_assertion=b", error="duplicate_parameter")
    form("form-bad-escape", "a truncated percent-escape", "grant_type=client%2", error="form_encoding")
    form("form-bad-hex", "a percent-escape with non-hex digits", "grant_type=client%G2credentials", error="form_encoding")
    form("form-not-utf8", "escapes that decode to invalid UTF-8", "client_id=%C3%28", error="form_encoding")
    form("form-no-name", "a parameter without a name", "=client_credentials", error="form_encoding")
    form("form-too-many", "33 parameters, over the default 32",
         "&".join(f"p{i}=v" for i in range(33)), error="form_too_many_parameters")
    return cases


# --------------------------------------------------------------------------
# Reference verifier: collects every rule a case breaks
# --------------------------------------------------------------------------
def parse(token, errs):
    parts = token.split(".")
    if len(parts) != 3:
        errs.append("malformed")
        return None, None, None
    try:
        header = json.loads(base.b64u_decode(parts[0]))
        claims = json.loads(base.b64u_decode(parts[1]))
        sig = base.b64u_decode(parts[2])
    except ValueError:
        errs.append("malformed")
        return None, None, None
    return header, claims, ((parts[0] + "." + parts[1]).encode(), sig)


def check_times(claims, now, max_lifetime, errs, iat_lifetime):
    if "exp" not in claims:
        errs.append("missing_claim")
    elif now > claims["exp"] + LEEWAY:
        errs.append("expired")
    for name in ("nbf", "iat"):
        if name in claims and claims[name] > now + LEEWAY:
            errs.append("not_yet_valid")
    if "exp" in claims and max_lifetime is not None:
        long = claims["exp"] - now > max_lifetime
        if iat_lifetime and "iat" in claims and claims["exp"] - claims["iat"] > max_lifetime:
            long = True
        if long:
            errs.append("lifetime_too_long")


def select_key(jwks, kid, alg, errs):
    """jwks: list of public JWKs. Mirrors select_anchor."""
    if kid is not None:
        found = [k for k in jwks if k.get("kid") == kid]
        if not found:
            errs.append("unknown_key")
            return None
        key = found[0]
        if key.get("alg") not in (None, alg) or not fits(key, alg):
            errs.append("alg_mismatch")
            return None
        return key
    fitting = [k for k in jwks if k.get("alg") in (None, alg) and fits(k, alg)]
    if len(fitting) != 1:
        errs.append("unknown_key")
        return None
    return fitting[0]


def fits(jwk, alg):
    if alg.startswith("ES"):
        return jwk["kty"] == "EC"
    if alg == "EdDSA":
        return jwk["kty"] == "OKP"
    return jwk["kty"] == "RSA"


def sole_audience(aud, issuer, errs):
    auds = aud if isinstance(aud, list) else [aud]
    if auds == [issuer]:
        return
    if issuer in auds:
        errs.append("aud_not_sole")
    elif len(auds) == 1 and auds[0].rstrip("/") == issuer.rstrip("/"):
        errs.append("aud_trailing_slash")
    else:
        errs.append("wrong_audience")


def ref_assertion(case, keys):
    errs = []
    header, claims, signed = parse(case["token"], errs)
    if header is None:
        return errs
    now = case["now"]
    if case["kind"] == "private_key_jwt":
        e = typ_error(header.get("typ"), "client-authentication+jwt", True)
        if e:
            errs.append(e)
        if header["alg"] not in ASYM_ALGS:
            errs.append("alg_not_allowed")
        else:
            jwks = [base.public_jwk(keys[n]) for n in case["client_keys"]]
            key = select_key(jwks, header.get("kid"), header["alg"], errs)
            if key is not None and not base.verify_sig(header["alg"], key, *signed):
                errs.append("bad_signature")
        for claim in ("iss", "sub"):
            if claim not in claims:
                errs.append("missing_claim")
            elif claims[claim] != case["client_id"]:
                errs.append("client_id_mismatch")
        if "aud" not in claims:
            errs.append("missing_claim")
        else:
            sole_audience(claims["aud"], case["issuer"], errs)
        check_times(claims, now, MAX_ASSERTION_LIFETIME, errs, True)
        if not claims.get("jti"):
            errs.append("missing_claim")
    else:
        e = typ_error(header.get("typ"), None, True)
        if e:
            errs.append(e)
        if header["alg"] not in SVID_ALGS:
            errs.append("alg_not_allowed")
            return errs
        sub = claims.get("sub", "")
        if not sub.startswith("spiffe://") or "/" not in sub[len("spiffe://"):]:
            errs.append("invalid_identifier")
            return errs
        if "kid" not in header:
            errs.append("missing_kid")
            return errs
        td = sub[len("spiffe://"):].split("/")[0]
        if td != case["trust_domain"]:
            errs.append("unknown_key")
        else:
            jwks = [base.public_jwk(keys[n]) for n in case["anchors"]]
            key = select_key(jwks, header.get("kid"), header["alg"], errs)
            if key is not None and not base.verify_sig(header["alg"], key, *signed):
                errs.append("bad_signature")
        check_times(claims, now, MAX_ASSERTION_LIFETIME, errs, True)
        if "aud" not in claims:
            errs.append("missing_claim")
        else:
            sole_audience(claims["aud"], case["issuer"], errs)
    return errs


def ref_htu(uri):
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port in (None, {"http": 80, "https": 443}[scheme]) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def ref_dpop(case, keys):
    errs = []
    header, claims, signed = parse(case["proof"], errs)
    if header is None:
        return errs
    req = case["request"]
    e = typ_error(header.get("typ"), "dpop+jwt", False)
    if e:
        errs.append(e)
    if header["alg"] not in ASYM_ALGS:
        errs.append("alg_not_allowed")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        errs.append("malformed")
    elif any(m in jwk for m in base.PRIVATE_MEMBERS):
        errs.append("dpop_private_key")
    elif header["alg"] in ASYM_ALGS:
        if jwk.get("alg") not in (None, header["alg"]):
            errs.append("alg_mismatch")
        elif not base.verify_sig(header["alg"], jwk, *signed):
            errs.append("bad_signature")
    for claim in ("jti", "htm", "htu", "iat"):
        if claim not in claims:
            errs.append("missing_claim")
    if "htm" in claims and claims["htm"] != req["method"]:
        errs.append("htm_mismatch")
    if "htu" in claims and ref_htu(claims["htu"]) != ref_htu(req["uri"]):
        errs.append("htu_mismatch")
    if "nonces" in req:
        if "nonce" not in claims:
            errs.append("dpop_nonce_missing")
        elif claims["nonce"] not in req["nonces"]:
            errs.append("dpop_nonce_mismatch")
    if "iat" in claims:
        if claims["iat"] > case["now"] + LEEWAY:
            errs.append("not_yet_valid")
        if case["now"] - claims["iat"] > DPOP_MAX_AGE:
            errs.append("stale_proof")
    token = req.get("access_token")
    if token is not None and "ath" not in claims:
        errs.append("missing_claim")
    elif token is not None and claims["ath"] != base.sha256_b64u(token):
        errs.append("ath_mismatch")
    elif token is None and "ath" in claims:
        errs.append("forbidden_claim")
    return errs


def as_jwks(case, keys):
    out = []
    for entry in case["as_keys"]:
        jwk = base.public_jwk(keys[entry["key"]])
        if "kid" in entry:
            jwk["kid"] = entry["kid"]
        out.append(jwk)
    return out


def ref_access_token(case, keys):
    errs = []
    header, claims, signed = parse(case["token"], errs)
    if header is None:
        return errs
    e = typ_error(header.get("typ"), "at+jwt", False)
    if e:
        errs.append(e)
    if header["alg"] not in ASYM_ALGS:
        errs.append("alg_not_allowed")
    else:
        key = select_key(as_jwks(case, keys), header.get("kid"), header["alg"], errs)
        if key is not None and not base.verify_sig(header["alg"], key, *signed):
            errs.append("bad_signature")
    for claim in ("iss", "sub", "aud", "client_id", "iat", "exp", "jti"):
        if claim not in claims:
            errs.append("missing_claim")
    if "iss" in claims and claims["iss"] != case["issuer"]:
        errs.append("issuer_mismatch")
    if "aud" in claims:
        auds = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if case["audience"] not in auds:
            errs.append("wrong_audience")
    check_times(claims, case["now"], None, errs, False)
    scope = claims.get("scope")
    if scope is not None and (scope == "" or scope != scope.strip() or "  " in scope):
        errs.append("scope_syntax")
    depth, act = 0, claims.get("act")
    while act is not None:
        depth += 1
        act = act.get("act")
    if depth > 16:
        errs.append("invalid_claim")
    return errs


def self_check(files, keys):
    problems = []
    checks = {"client_assertion.json": ref_assertion, "dpop.json": ref_dpop, "access_token.json": ref_access_token}
    for name, check in checks.items():
        for case in files[name]["cases"]:
            errs = check(case, keys)
            want = [] if case["expect"] == "valid" else [case["error"]]
            if sorted(set(errs)) != want:
                problems.append(f"{name} {case['id']}: reference verifier found {errs}, expected {want}")
    for case in files["thumbprints.json"]["cases"]:
        if thumbprint(case["jwk"]) != case["thumbprint"]:
            problems.append(f"thumbprints.json {case['id']}: thumbprint differs")
    return problems


def main():
    keys_path = HERE.parent / "keys.json"
    keys = json.loads(keys_path.read_text())
    files = {
        "client_assertion.json": {
            "source": "RFC 7523 §3 with draft-ietf-oauth-rfc7523bis-11 (private_key_jwt); draft-ietf-oauth-spiffe-client-auth "
                      "§3.1 editor's copy after PR #44 (jwt-spiffe; the §3.1.1 example claims re-signed with lanyard-es256); "
                      "all tokens generated by oauth/generate.py with keys from ../keys.json",
            "cases": build_assertion_cases(keys),
        },
        "dpop.json": {
            "source": "RFC 9449 §4.1 and §7.1 example proofs verbatim (with the §7.1 access token and the §6.1 jkt); "
                      "other proofs generated by oauth/generate.py",
            "cases": build_dpop_cases(keys),
        },
        "access_token.json": {
            "source": "RFC 9068 §2.2 Figure 2 header and claims (unsigned in the RFC; signed here with lanyard-rs256 under "
                      "kid RjEwOwOA); Lanyard-shaped tokens generated by oauth/generate.py",
            "cases": build_access_token_cases(keys),
        },
        "thumbprints.json": {"source": "RFC 7638 §3.1; RFC 9449 §4.1 key and §6.1 jkt", "cases": build_thumbprint_cases()},
        "form.json": {
            "source": "RFC 6749 §3.1-3.2 and Appendix B, RFC 8707 §2, RFC 8693 §2.1; bodies written by oauth/generate.py",
            "cases": build_form_cases(),
        },
    }
    problems = self_check(files, keys)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    for rel, doc in files.items():
        (HERE / rel).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"oauth/{rel}: {len(doc['cases'])} cases")


if __name__ == "__main__":
    main()
