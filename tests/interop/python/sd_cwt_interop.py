#!/usr/bin/env python3
"""SD-CWT interop driver: python-cwt (PyPI `cwt`) for the COSE_Sign1 layer, and a small
disclosure checker written from draft-ietf-spice-sd-cwt (editor's copy 10965be / -08,
§5.1, §7, §8.1, §9) for what a presentation discloses. Nothing here comes from Lanyard.

    sd_cwt_interop.py check MANIFEST   # verify Lanyard's SD-KBTs, print what they disclose
    sd_cwt_interop.py issue MANIFEST   # issue SD-CWTs + SD-KBTs with python-cwt for Lanyard

MANIFEST is JSON written by crates/lanyard-core/tests/interop_sd_cwt.rs. Both commands
print one JSON object per line.

check: for each case {id, kbt (hex), issuer_jwk, holder_jwk, digest: "full"|"content"}:
  1. python-cwt verifies the SD-KBT with the holder key, and the SD-CWT in its kcwt
     header (13) with the issuer key; typ must be 294 and 293;
  2. the checker decodes the presented disclosures, digests them with sd_alg (170,
     default SHA-256) over the whole byte-string item ("full", the draft's examples) or
     the array only ("content"), and restores the claims: each digest found in a
     simple(59) array or a tag-60 element is replaced by its disclosure; undisclosed
     digests and decoys are dropped; a disclosure that matches nothing, a repeated
     disclosure, a claim disclosure in an array slot (or the reverse) or a key that is
     already present invalidates the presentation.
  Output: {id, ok: true, claims: hex of cbor2.dumps(restored)} or {id, ok: false, error}.

issue: for each case {id, issuer_jwk (private), holder_jwk (private), issuer_alg,
holder_alg, audience, now}: builds an SD-CWT with python-cwt (claims redacted by the
checker's own issuer logic, random salts, full-item digests), presents every other
disclosure in an SD-KBT, and prints {id, kbt: hex, claims: hex of the claims the verifier
should restore}.
"""

import hashlib
import json
import secrets
import sys

import cbor2
from cwt import COSE, COSEKey

SD_CLAIMS, SD_ALG, KCWT, TYP = 17, 170, 13, 16
REDACTED_KEYS = cbor2.CBORSimpleValue(59)
HASHES = {-16: hashlib.sha256, -43: hashlib.sha384, -44: hashlib.sha512}


class Invalid(Exception):
    pass


def unhex(text):
    return bytes.fromhex(text)


def digest_of(disclosure, alg, mode):
    data = disclosure if mode == "content" else cbor2.dumps(disclosure)
    return HASHES[alg](data).digest()


def restore(payload, disclosures, alg, mode):
    """The restore walk of §9 steps 7 and 9."""
    table = {}
    for encoded in disclosures:
        d = cbor2.loads(encoded)
        if not isinstance(d, list) or not 1 <= len(d) <= 3 or not isinstance(d[0], bytes) or len(d[0]) != 16:
            raise Invalid("malformed disclosure")
        h = digest_of(encoded, alg, mode)
        if h in table:
            raise Invalid("duplicate disclosure")
        table[h] = d
    used = set()

    def lookup(h):
        if h in used:
            raise Invalid("digest used twice")
        d = table.get(h)
        if d is not None:
            used.add(h)
        return d

    def value(v):
        if isinstance(v, dict):
            return mapping(v)
        if isinstance(v, list):
            out = []
            for item in v:
                if isinstance(item, cbor2.CBORTag) and item.tag == 60:
                    d = lookup(item.value)
                    if d is None or len(d) == 1:
                        continue
                    if len(d) == 3:
                        raise Invalid("claim disclosure in an array")
                    out.append(value(d[1]))
                else:
                    out.append(value(item))
            return out
        if isinstance(v, cbor2.CBORTag):
            if v.tag in (58, 60, 62):
                raise Invalid(f"tag {v.tag} in an issued token")
            return cbor2.CBORTag(v.tag, value(v.value))
        return v

    def mapping(m):
        out = {}
        for k, v in m.items():
            if k == REDACTED_KEYS:
                continue
            out[k] = value(v)
        for h in m.get(REDACTED_KEYS, []):
            d = lookup(h)
            if d is None or len(d) == 1:
                continue
            if len(d) == 2:
                raise Invalid("element disclosure for a map key")
            if d[2] in out:
                raise Invalid("disclosed key already present")
            out[d[2]] = value(d[1])
        return out

    claims = mapping(payload)
    if len(used) != len(table):
        raise Invalid("a disclosure matches no digest")
    return claims


def cose_key(jwk):
    return COSEKey.from_jwk(jwk)


def check(case):
    kbt = unhex(case["kbt"])
    holder = cose_key(case["holder_jwk"])
    protected, _, kbt_payload = COSE.new().decode_with_headers(kbt, holder)
    if protected.get(TYP) not in (294, "application/kb+cwt"):
        raise Invalid("KBT typ")
    inner = protected[KCWT]
    if not isinstance(inner, cbor2.CBORTag) or inner.tag != 18:
        raise Invalid("kcwt is not a tagged COSE_Sign1")
    issuer = cose_key(case["issuer_jwk"])
    p2, u2, payload = COSE.new().decode_with_headers(cbor2.dumps(inner), issuer)
    if p2.get(TYP) not in (293, "application/sd-cwt"):
        raise Invalid("SD-CWT typ")
    kbt_claims = cbor2.loads(kbt_payload)
    if 3 not in kbt_claims or (6 not in kbt_claims and 7 not in kbt_claims):
        raise Invalid("KBT without aud, or without iat and cti")
    claims = restore(cbor2.loads(payload), u2.get(SD_CLAIMS, []), p2.get(SD_ALG, -16), case.get("digest", "full"))
    return {"claims": cbor2.dumps(claims).hex()}


def issue(case):
    """An issuer and a holder written with python-cwt, for Lanyard to verify."""
    issuer = COSEKey.from_jwk(case["issuer_jwk"])
    holder_jwk = dict(case["holder_jwk"])
    holder = COSEKey.from_jwk(holder_jwk)
    public = {k: v for k, v in holder_jwk.items() if k not in ("d", "alg", "kid")}
    holder_cose = COSEKey.from_jwk(public).to_dict()
    cnf_key = {k: holder_cose[k] for k in (1, -1, -2, -3) if k in holder_cose}
    now = case["now"]
    disclosures = []

    def disclose(item):
        encoded = cbor2.dumps([secrets.token_bytes(16)] + item)
        disclosures.append(encoded)
        return digest_of(encoded, -16, "full")

    region = disclose(["eu-west-1", "region"])
    commit = disclose(["4b825dc", "commit"])
    build = disclose([{"repo": "git.example.org/x", REDACTED_KEYS: [commit]}, "build"])
    element = disclose(["unix:sha256:ab12"])
    decoy = disclose([])
    payload = {
        1: "https://python.example", 2: "spiffe://example.org/py", 4: now + 3600, 5: now - 10, 6: now - 10,
        8: {1: cnf_key}, "env": "prod", "selectors": ["unix:uid:1", cbor2.CBORTag(60, element)],
        REDACTED_KEYS: [region, build, decoy],
    }
    sd_cwt = COSE.new().encode_and_sign(
        cbor2.dumps(payload), issuer, protected={1: issuer.alg, TYP: 293, SD_ALG: -16},
        unprotected={SD_CLAIMS: disclosures}, out="cbor2/CBORTag",
    )
    # Present region, commit (with its parent build) and the element; keep the decoy back.
    shown = [disclosures[i] for i in (0, 1, 2, 3)]
    presented = cbor2.CBORTag(18, [sd_cwt.value[0], {SD_CLAIMS: shown}, sd_cwt.value[2], sd_cwt.value[3]])
    kbt = COSE.new().encode_and_sign(
        cbor2.dumps({3: case["audience"], 6: now}), holder,
        protected={1: holder.alg, KCWT: presented, TYP: 294},
    )
    expected = restore(payload, shown, -16, "full")
    return {"kbt": kbt.hex(), "claims": cbor2.dumps(expected).hex()}


def main():
    command, manifest = sys.argv[1], json.load(open(sys.argv[2]))
    for case in manifest["cases"]:
        try:
            result = {"id": case["id"], "ok": True, **(check(case) if command == "check" else issue(case))}
        except Exception as e:  # every library error is a result to report, not a crash
            result = {"id": case["id"], "ok": False, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
