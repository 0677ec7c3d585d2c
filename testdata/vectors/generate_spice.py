#!/usr/bin/env python3
"""Writes the SPICE conformance cases:

- testdata/vectors/sd_cwt/cases.json: SD-CWT / SD-KBT (issue, holder, present, verify);
- testdata/vectors/spice/glue_id.json: GLUE identifiers (draft-ietf-spice-glue-id-08);
- testdata/vectors/spice/oidc_cwt.json: the OIDC claims mapping (draft-ietf-spice-oidc-cwt-05).

SD-CWT sources: the draft's own example tokens and keys (draft-ietf-spice-sd-cwt, repository
ietf-wg-spice/draft-ietf-spice-sd-cwt, examples/ at main@10965be = -07/-08, plus
examples/kbt.cbor at tag -05 and examples/issuer_cwt.cbor at tag -03), copied verbatim
into testdata/vectors/sd_cwt/draft/. Every other case is one named mutation of those
tokens, re-signed where the mutation touches signed bytes (ECDSA with RFC 6979
deterministic nonces, which reproduces the draft's own signatures: checked below).

It needs Python 3.11+ and `cryptography` only: the CBOR codec and the reference restore
walk below are written from RFC 8949 and the draft, independently of Lanyard's Rust code.
Run it from anywhere; the output is deterministic.

    python3 testdata/vectors/generate_spice.py

The OIDC case is the draft's example.cbor (repository ietf-wg-spice/draft-ietf-spice-oidc-cwt
main@b412891 = -05), copied verbatim into testdata/vectors/spice/draft/, with the same claims
written as the JWT claims object they map from. The GLUE cases are the draft's examples (§3, §4.1.1)
and one case per rule of its ABNF, length limits and registered transformation rules.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VECTORS = Path(__file__).resolve().parent
HERE = VECTORS / "sd_cwt"
DRAFT = HERE / "draft"
SPICE = VECTORS / "spice"


# --------------------------------------------------------------------------
# A small CBOR codec (RFC 8949): deterministic encoding, order-keeping decoding
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Tag:
    tag: int
    value: object


@dataclass(frozen=True)
class Simple:
    value: int


class OrderedMap(list):
    """A map that keeps insertion order when encoded (pre-issuance inputs)."""


def head(major: int, arg: int) -> bytes:
    if arg < 24:
        return bytes([major << 5 | arg])
    for info, fmt, limit in ((24, ">B", 0xFF), (25, ">H", 0xFFFF), (26, ">I", 0xFFFFFFFF), (27, ">Q", 2**64 - 1)):
        if arg <= limit:
            return bytes([major << 5 | info]) + struct.pack(fmt, arg)
    raise ValueError(arg)


def enc(v) -> bytes:
    if v is False:
        return b"\xf4"
    if v is True:
        return b"\xf5"
    if v is None:
        return b"\xf6"
    if isinstance(v, int):
        return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, bytes):
        return head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return head(3, len(b)) + b
    if isinstance(v, OrderedMap):
        return head(5, len(v)) + b"".join(enc(k) + enc(x) for k, x in v)
    if isinstance(v, (list, tuple)):
        return head(4, len(v)) + b"".join(enc(x) for x in v)
    if isinstance(v, dict):
        items = sorted((enc(k), enc(x)) for k, x in v.items())
        return head(5, len(items)) + b"".join(k + x for k, x in items)
    if isinstance(v, Tag):
        return head(6, v.tag) + enc(v.value)
    if isinstance(v, Simple):
        return bytes([0xE0 | v.value]) if v.value < 24 else bytes([0xF8, v.value])
    raise TypeError(type(v))


def dec(b: bytes):
    value, pos = _dec(b, 0)
    assert pos == len(b), "trailing bytes"
    return value


def _dec(b: bytes, pos: int):
    ib = b[pos]
    major, info = ib >> 5, ib & 0x1F
    pos += 1
    if info < 24:
        arg = info
    else:
        n = {24: 1, 25: 2, 26: 4, 27: 8}[info]
        arg = int.from_bytes(b[pos : pos + n], "big")
        pos += n
    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major == 2:
        return b[pos : pos + arg], pos + arg
    if major == 3:
        return b[pos : pos + arg].decode(), pos + arg
    if major == 4:
        items = []
        for _ in range(arg):
            x, pos = _dec(b, pos)
            items.append(x)
        return items, pos
    if major == 5:
        m = {}
        for _ in range(arg):
            k, pos = _dec(b, pos)
            x, pos = _dec(b, pos)
            m[k] = x
        return m, pos
    if major == 6:
        x, pos = _dec(b, pos)
        return Tag(arg, x), pos
    if info == 20:
        return False, pos
    if info == 21:
        return True, pos
    if info == 22:
        return None, pos
    if info == 24:
        return Simple(arg), pos
    if info < 24:
        return Simple(info), pos
    raise ValueError("floats are not used here")


def edn(v, indent=0) -> str:
    """Diagnostic notation, for reading the cases."""
    pad = "  " * indent
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, bytes):
        return "h'" + v.hex() + "'"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(edn(x, indent) for x in v) + "]"
    if isinstance(v, dict):
        inner = ",\n".join(f"{pad}  {edn(k)}: {edn(x, indent + 1)}" for k, x in v.items())
        return "{\n" + inner + "\n" + pad + "}"
    if isinstance(v, Tag):
        return f"{v.tag}({edn(v.value, indent)})"
    if isinstance(v, Simple):
        return f"simple({v.value})"
    raise TypeError(type(v))


# --------------------------------------------------------------------------
# Keys and COSE_Sign1 with RFC 6979 ECDSA
# --------------------------------------------------------------------------
def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_pem(name: str):
    # The draft's PEM files end with a blank line; cryptography accepts that.
    return serialization.load_pem_private_key((DRAFT / name).read_bytes(), password=None)


def jwk_of(priv, alg: str, kid: str | None = None) -> dict:
    numbers = priv.private_numbers()
    size = (priv.curve.key_size + 7) // 8
    jwk = {
        "kty": "EC",
        "crv": {"secp256r1": "P-256", "secp384r1": "P-384"}[priv.curve.name],
        "x": b64u(numbers.public_numbers.x.to_bytes(size, "big")),
        "y": b64u(numbers.public_numbers.y.to_bytes(size, "big")),
        "d": b64u(numbers.private_value.to_bytes(size, "big")),
        "alg": alg,
    }
    if kid:
        jwk["kid"] = kid
    return jwk


def cose_key_of(priv) -> dict:
    numbers = priv.public_key().public_numbers()
    size = (priv.curve.key_size + 7) // 8
    crv = {"secp256r1": 1, "secp384r1": 2}[priv.curve.name]
    return {1: 2, -1: crv, -2: numbers.x.to_bytes(size, "big"), -3: numbers.y.to_bytes(size, "big")}


ALG_HASH = {-7: hashes.SHA256(), -9: hashes.SHA256(), -35: hashes.SHA384(), -51: hashes.SHA384()}


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    return enc(["Signature1", protected, b"", payload])


def ecdsa(priv, alg: int, message: bytes) -> bytes:
    der = priv.sign(message, ec.ECDSA(ALG_HASH[alg], deterministic_signing=True))
    r, s = decode_dss_signature(der)
    size = (priv.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def ecdsa_ok(priv, alg: int, message: bytes, sig: bytes) -> bool:
    size = len(sig) // 2
    der = encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big"))
    try:
        priv.public_key().verify(der, message, ec.ECDSA(ALG_HASH[alg]))
        return True
    except Exception:
        return False


def sign1(protected, unprotected, payload, priv, *, raw_protected: bytes | None = None, raw_payload: bytes | None = None):
    """A tagged COSE_Sign1 (as a decoded value); protected/payload maps are encoded
    deterministically unless raw bytes are given."""
    p = raw_protected if raw_protected is not None else enc(protected)
    body = raw_payload if raw_payload is not None else enc(payload)
    alg = dec(p)[1]
    return Tag(18, [p, unprotected, body, ecdsa(priv, alg, sig_structure(p, body))])


def parts(token):
    """(protected map, unprotected map, payload map) of a decoded COSE_Sign1."""
    p, u, body, _ = token.value
    return dec(p), dict(u), dec(body)


def resign(token, priv, *, protected=None, unprotected=None, payload=None, raw_payload=None):
    p, u, body = parts(token)
    return sign1(
        protected if protected is not None else p,
        unprotected if unprotected is not None else u,
        payload if payload is not None else body,
        priv,
        raw_protected=None if protected is not None else token.value[0],
        raw_payload=raw_payload if raw_payload is not None else (None if payload is not None else token.value[2]),
    )


# --------------------------------------------------------------------------
# SD-CWT helpers and the reference restore walk (draft §9)
# --------------------------------------------------------------------------
def digest(disclosure_bytes: bytes, content_only=False) -> bytes:
    item = disclosure_bytes if content_only else enc(disclosure_bytes)
    return hashlib.sha256(item).digest()


class RestoreError(Exception):
    pass


def restore(payload: dict, disclosures: list[bytes]) -> dict:
    table = {}
    for d in disclosures:
        h = digest(d)
        if h in table:
            raise RestoreError("duplicate disclosure")
        table[h] = dec(d)
    used = set()

    def take(h):
        if h in used:
            raise RestoreError("digest reused")
        used.add(h)
        return table.get(h)

    def value(v):
        if isinstance(v, dict):
            return mapping(v)
        if isinstance(v, list):
            out = []
            for x in v:
                if isinstance(x, Tag) and x.tag == 60:
                    d = take(x.value)
                    if d is not None and len(d) == 2:
                        out.append(value(d[1]))
                    elif d is not None and len(d) == 3:
                        raise RestoreError("claim in array")
                else:
                    out.append(value(x))
            return out
        if isinstance(v, Tag):
            return Tag(v.tag, value(v.value))
        return v

    def mapping(m):
        out = {}
        for k, v in m.items():
            if k == Simple(59):
                continue
            out[k] = value(v)
        for h in m.get(Simple(59), []):
            d = take(h)
            if d is None or len(d) == 1:
                continue
            if len(d) == 2:
                raise RestoreError("element in map")
            if d[2] in out:
                raise RestoreError("conflict")
            out[d[2]] = value(d[1])
        return out

    claims = mapping(payload)
    if set(table) - used:
        raise RestoreError("unused disclosure")
    return claims


# --------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------
AUDIENCE = "https://verifier.example/app"
CNONCE = bytes.fromhex("8c0f5f523b95bea44a9a48c649240803")
CWT_IAT = 1725244200
KBT_IAT = CWT_IAT + 37
NOW = KBT_IAT + 1
AEAD_KEY = bytes.fromhex((DRAFT / "aead-key.txt").read_text().strip())
AEAD_NONCE = bytes.fromhex("95d0040fe650e5baf51c907c")

issuer = load_pem("issuer_privkey.pem")
holder = load_pem("holder_privkey.pem")
other_holder = ec.derive_private_key(
    int.from_bytes(hashlib.sha256(b"lanyard sd-cwt vectors: another holder").digest(), "big"), ec.SECP256R1()
)

cases = []


def token_file(name: str):
    return dec((DRAFT / name).read_bytes())


def case(cid: str, why: str, kind: str, token, *, expect="valid", error=None, claims=None, **extra):
    raw = token if isinstance(token, bytes) else enc(token)
    c = {"id": cid, "why": why, "kind": kind, "token": raw.hex(), "now": extra.pop("now", NOW)}
    if kind == "verify":
        c["audience"] = extra.pop("audience", AUDIENCE)
        nonce = extra.pop("nonce", CNONCE)
        if nonce is not None:
            c["nonce"] = nonce.hex()
    c.update(extra)
    c["expect"] = expect
    if error:
        c["error"] = error
    if claims is not None:
        c["claims"] = enc(claims).hex()
        c["claims_edn"] = edn(claims)
    cases.append(c)


def kbt(sd_cwt, *, payload=None, protected=None, priv=holder, alg=-7):
    prot = protected if protected is not None else {1: alg, 13: sd_cwt, 16: 294}
    body = payload if payload is not None else {3: AUDIENCE, 6: KBT_IAT, 39: CNONCE}
    return sign1(prot, {}, body, priv)


def presented(issued, chosen: list[int], extra_unprotected=None):
    p, u, body = parts(issued)
    disclosures = u.get(17, [])
    unprotected = {k: v for k, v in u.items() if k != 17}
    if chosen:
        unprotected[17] = [disclosures[i] for i in chosen]
    if extra_unprotected:
        unprotected.update(extra_unprotected)
    return Tag(18, [issued.value[0], unprotected, issued.value[2], issued.value[3]])


def expected_claims(token) -> dict:
    _, u, body = parts(token)
    return restore(body, u.get(17, []))


def build():
    issuer_cwt = token_file("issuer_cwt.cbor")
    kbt_draft = token_file("kbt.cbor")
    nested_kbt = token_file("nested_kbt.cbor")
    decoy = token_file("decoy.cbor")
    nested_issuer = token_file("nested_issuer_cwt.cbor")

    # Self-check: deterministic ECDSA reproduces every draft signature.
    for name in ("issuer_cwt", "nested_issuer_cwt", "nested_cwt", "decoy"):
        t = token_file(f"{name}.cbor")
        assert enc(resign(t, issuer)) == (DRAFT / f"{name}.cbor").read_bytes(), name
    for name in ("kbt", "nested_kbt"):
        t = token_file(f"{name}.cbor")
        assert enc(resign(t, holder)) == (DRAFT / f"{name}.cbor").read_bytes(), name

    # ---- The draft's examples, as they are --------------------------------------------
    inner = kbt_draft.value[0]
    case("draft-kbt", "examples/kbt.cbor (§14.1): 3 of 5 disclosures", "verify",
         (DRAFT / "kbt.cbor").read_bytes(), claims=expected_claims(dec(inner)[13]))
    case("draft-nested-kbt", "examples/nested_kbt.cbor (§14.2): 7 of 15 nested disclosures, parents after children",
         "verify", (DRAFT / "nested_kbt.cbor").read_bytes(), claims=expected_claims(dec(nested_kbt.value[0])[13]))
    for name, why in (("issuer_cwt", "examples/issuer_cwt.cbor (§3.2): every disclosure"),
                      ("nested_issuer_cwt", "examples/nested_issuer_cwt.cbor: 15 nested disclosures"),
                      ("decoy", "examples/decoy.cbor (§10): 2 decoys, one in an array, one in a map")):
        case(f"draft-holder-{name.replace('_', '-')}", why + ", validated by the holder", "holder",
             (DRAFT / f"{name}.cbor").read_bytes(), claims=expected_claims(token_file(f"{name}.cbor")))
    case("draft-holder-nested-cwt-missing", "examples/nested_cwt.cbor carries 7 of 15 disclosures: a holder must "
         "get one for every digest (§7.2)", "holder", (DRAFT / "nested_cwt.cbor").read_bytes(),
         expect="error", error="sd_missing_disclosure")
    case("draft-05-kbt", "examples/kbt.cbor at tag -05: sd_alg in header 18 (pre-06)", "verify",
         (DRAFT / "kbt-05.cbor").read_bytes(), expect="error", error="sd_legacy_code_point")
    case("draft-03-issuer-cwt", "examples/issuer_cwt.cbor at tag -03: typ \"application/sd+cwt\"", "holder",
         (DRAFT / "issuer_cwt-03.cbor").read_bytes(), expect="error", error="sd_legacy_code_point")

    # ---- Issuer and holder reproduce the draft's bytes --------------------------------
    salts = {}
    for t in (issuer_cwt, nested_issuer, decoy):
        salts[id(t)] = [dec(d)[0].hex() for d in t.value[1][17]]
    cnf = {1: cose_key_of(holder)}
    times = {4: CWT_IAT + 86400, 5: CWT_IAT - 300, 6: CWT_IAT}
    base_input = OrderedMap([
        (1, "https://issuer.example"), (2, "https://device.example"), (500, True),
        (Tag(58, 501), "ABCD-123456"),
        (502, [Tag(58, 1549560720), Tag(58, 1612560720), 1674004740]),
        (503, OrderedMap([("country", "us"), (Tag(58, "region"), "ca"), (Tag(58, "postal_code"), "94188")])),
        *times.items(), (8, cnf),
    ])
    def record(country_1, region, postal, lic, date):
        return Tag(58, OrderedMap([(500, True), (502, date), (Tag(58, 501), lic),
                                   (Tag(58, 503), OrderedMap([(1, country_1), (Tag(58, 2), region), (Tag(58, 3), postal)]))]))
    nested_input = OrderedMap([
        (1, "https://issuer.example"), (2, "https://device.example"),
        (504, [record("us", "co", "80302", "DCBA-101777", 1549560720),
               record("us", "nv", "89155", "EFGH-789012", 1612560720),
               record("us", "ca", "94188", "ABCD-123456", 1674004740)]),
        *times.items(), (8, cnf),
    ])
    decoy_input = OrderedMap([
        (1, "https://issuer.example"), (2, "https://device.example"),
        (98, [Tag(58, "fr"), Tag(62, 1)]), (Tag(58, 500), True), (Tag(62, 2), None),
        *times.items(), (8, cnf),
    ])
    kid = b"https://issuer.example/cose-key3"
    for cid, why, claims_in, t, name in (
        ("issue-draft-issuer-cwt", "the §3.2 claims with tags 58 give examples/issuer_cwt.cbor byte for byte",
         base_input, issuer_cwt, "issuer_cwt"),
        ("issue-draft-nested", "the §14.2 nested claims give examples/nested_issuer_cwt.cbor byte for byte",
         nested_input, nested_issuer, "nested_issuer_cwt"),
        ("issue-draft-decoy", "the §10 claims with tags 58 and 62 give examples/decoy.cbor byte for byte",
         decoy_input, decoy, "decoy"),
    ):
        cases.append({
            "id": cid, "why": why, "kind": "issue", "input": enc(claims_in).hex(), "salts": salts[id(t)],
            "alg": -35, "kid": kid.hex(), "sd_alg": -16, "expect": "valid",
            "token": (DRAFT / f"{name}.cbor").read_bytes().hex(),
        })
    cases.append({
        "id": "present-draft-kbt", "why": "the holder presenting disclosures 0, 1, 3 of issuer_cwt.cbor with the "
        "§14.1 KBT claims gives examples/kbt.cbor byte for byte", "kind": "present",
        "token": (DRAFT / "issuer_cwt.cbor").read_bytes().hex(), "select": [0, 1, 3], "audience": AUDIENCE,
        "iat": KBT_IAT, "cnonce": CNONCE.hex(), "now": NOW, "expect": "valid",
        "kbt": (DRAFT / "kbt.cbor").read_bytes().hex(),
    })
    cases.append({
        "id": "present-draft-nested-kbt", "why": "the holder presenting the disclosures of Figure 28 of "
        "nested_issuer_cwt.cbor, in that order, gives examples/nested_kbt.cbor byte for byte",
        "kind": "present", "token": (DRAFT / "nested_issuer_cwt.cbor").read_bytes().hex(),
        "select": [14, 10, 13, 11, 4, 0, 3], "audience": AUDIENCE, "iat": KBT_IAT,
        "cnonce": CNONCE.hex(), "now": NOW, "expect": "valid", "kbt": (DRAFT / "nested_kbt.cbor").read_bytes().hex(),
    })

    # ---- Encrypted disclosures (§12.1, -08 key context) ------------------------------
    p, u, body = parts(issuer_cwt)
    d0 = u[17][0]
    ct = AESGCM(AEAD_KEY).encrypt(AEAD_NONCE, enc(d0), b"")
    assert ct.hex().startswith("563a7d9f0f65d40b"), "the draft's AEAD example"
    entry = [AEAD_NONCE, ct[:-16], ct[-16:]]
    rest = dict(u)
    rest[17] = u[17][1:]
    rest[171] = [entry]
    with_aead = Tag(18, [issuer_cwt.value[0], rest, issuer_cwt.value[2], issuer_cwt.value[3]])
    full = expected_claims(issuer_cwt)
    without_license = {k: v for k, v in full.items() if k != 501}
    case("aead-decrypted", "the draft's AES-128-GCM example entry (license 501) decrypts with the verifier's key",
         "verify", kbt(with_aead), aead=[{"key": AEAD_KEY.hex()}], claims=full)
    case("aead-no-key", "without the key the encrypted claim stays redacted", "verify", kbt(with_aead),
         claims=without_license)
    ctx_rest = dict(rest)
    ctx_rest[171] = [entry + ["verifier-1"]]
    with_ctx = Tag(18, [issuer_cwt.value[0], ctx_rest, issuer_cwt.value[2], issuer_cwt.value[3]])
    case("aead-key-context", "an entry with the -08 key context selects the verifier key of that context",
         "verify", kbt(with_ctx), aead=[{"key": "00" * 16, "context": "other"}, {"key": AEAD_KEY.hex(), "context": "verifier-1"}],
         claims=full)
    case("aead-key-context-wrong-key", "a key context that names our key, but the key does not open the entry",
         "verify", kbt(with_ctx), aead=[{"key": "11" * 16, "context": "verifier-1"}], expect="error", error="sd_aead")
    bad_entry = dict(rest)
    bad_entry[171] = [[AEAD_NONCE, ct[:-16]]]
    case("aead-entry-shape", "an AEAD entry of 2 elements", "verify",
         kbt(Tag(18, [issuer_cwt.value[0], bad_entry, issuer_cwt.value[2], issuer_cwt.value[3]])),
         expect="error", error="sd_aead")
    forbidden = sign1({**p, 172: 3}, rest, body, issuer)
    case("aead-forbidden-alg", "sd_aead 3 (AES-128-CCM family, forbidden by §16.7)", "verify", kbt(forbidden),
         expect="error", error="sd_aead")

    # ---- Negative cases on the SD-KBT of §14.1 ----------------------------------------
    chosen = presented(issuer_cwt, [0, 1, 3])
    pk, uk, bk = parts(issuer_cwt)
    d = [dec(x) for x in uk[17]]

    def with_disclosures(lst):
        pres = Tag(18, [issuer_cwt.value[0], {17: lst}, issuer_cwt.value[2], issuer_cwt.value[3]])
        return kbt(pres)

    tampered = enc([d[0][0], "ABCD-123457", 501])
    case("tampered-disclosure", "disclosure 0 with its value changed (KBT re-signed): its digest matches nothing",
         "verify", with_disclosures([tampered, uk[17][1], uk[17][3]]), expect="error", error="sd_disclosure_unmatched")
    stranger = enc([bytes(range(16)), "not issued", 600])
    case("disclosure-matching-no-digest", "an extra, well-formed disclosure the issuer never made", "verify",
         with_disclosures([uk[17][0], stranger]), expect="error", error="sd_disclosure_unmatched")
    case("duplicate-disclosure", "disclosure 0 presented twice", "verify",
         with_disclosures([uk[17][0], uk[17][0]]), expect="error", error="sd_duplicate_disclosure")
    case("wrong-audience", "the KBT is for https://verifier.example/app, the verifier is another", "verify",
         (DRAFT / "kbt.cbor").read_bytes(), audience="https://other.example/", expect="error", error="wrong_audience")
    case("expired-kbt", "KBT exp = iat + 60, checked 200 s after iat", "verify",
         kbt(chosen, payload={3: AUDIENCE, 6: KBT_IAT, 4: KBT_IAT + 60, 39: CNONCE}), now=KBT_IAT + 200,
         expect="error", error="expired")
    case("stale-kbt", "a KBT without exp, checked an hour after its iat (older than the 300 s maximum age)",
         "verify", (DRAFT / "kbt.cbor").read_bytes(), now=KBT_IAT + 3600, expect="error", error="expired")
    case("future-kbt", "KBT iat an hour after now", "verify",
         kbt(chosen, payload={3: AUDIENCE, 6: KBT_IAT + 3600, 39: CNONCE}), expect="error", error="not_yet_valid")
    case("kbt-other-key", "the KBT is signed by a key other than the SD-CWT's cnf", "verify",
         kbt(chosen, priv=other_holder), expect="error", error="kbt_bad_signature")
    case("kbt-wrong-typ", "KBT typ 293 (the SD-CWT's) instead of 294", "verify",
         kbt(chosen, protected={1: -7, 13: chosen, 16: 293}), expect="error", error="wrong_typ")
    case("kbt-no-typ", "KBT without typ", "verify",
         kbt(chosen, protected={1: -7, 13: chosen}), expect="error", error="wrong_typ")
    case("sd-cwt-wrong-typ", "SD-CWT typ 294 (re-signed by the issuer)", "verify",
         kbt(presented(resign(issuer_cwt, issuer, protected={**pk, 16: 294}), [0])), expect="error", error="wrong_typ")
    case("sd-cwt-typ-text", "SD-CWT typ as the media type text (allowed)", "verify",
         kbt(presented(resign(issuer_cwt, issuer, protected={**pk, 16: "application/sd-cwt"}), [0, 1, 3])),
         claims=expected_claims(chosen))
    case("unknown-sd-alg", "sd_alg -17 (SHA-512/256), not implemented", "verify",
         kbt(presented(resign(issuer_cwt, issuer, protected={**pk, 170: -17}), [0])), expect="error",
         error="sd_unknown_sd_alg")
    case("legacy-sd-alg-header", "sd_alg in header 18 as before -06 (re-signed)", "verify",
         kbt(presented(resign(issuer_cwt, issuer, protected={1: -35, 4: pk[4], 16: 293, 18: -16}), [0])),
         expect="error", error="sd_legacy_code_point")
    case("kbt-iss", "iss in the KBT (Table 3: MUST NOT)", "verify",
         kbt(chosen, payload={1: "https://holder.example", 3: AUDIENCE, 6: KBT_IAT, 39: CNONCE}),
         expect="error", error="forbidden_claim")
    case("kbt-no-aud", "a KBT without aud", "verify", kbt(chosen, payload={6: KBT_IAT, 39: CNONCE}),
         expect="error", error="missing_claim")
    case("kbt-no-iat-no-cti", "a KBT with neither iat nor cti", "verify", kbt(chosen, payload={3: AUDIENCE, 39: CNONCE}),
         expect="error", error="missing_claim")
    case("kbt-cti-only", "a KBT with cti and no time claims (allowed, §8.1)", "verify",
         kbt(chosen, payload={3: AUDIENCE, 7: b"kbt-1", 39: CNONCE}), claims=expected_claims(chosen))
    case("kbt-cti-with-exp", "a KBT with cti and exp but no iat (§9 step 6)", "verify",
         kbt(chosen, payload={3: AUDIENCE, 7: b"kbt-1", 4: KBT_IAT + 60, 39: CNONCE}),
         expect="error", error="sd_time_inconsistent")
    case("kbt-before-cwt", "KBT iat before the SD-CWT's iat", "verify",
         kbt(chosen, payload={3: AUDIENCE, 6: CWT_IAT - 1, 39: CNONCE}), expect="error", error="sd_time_inconsistent")
    case("kbt-outlives-cwt", "KBT exp after the SD-CWT's exp", "verify",
         kbt(chosen, payload={3: AUDIENCE, 6: KBT_IAT, 4: CWT_IAT + 86401, 39: CNONCE}),
         expect="error", error="sd_time_inconsistent")
    case("cwt-nbf-after-iat", "SD-CWT nbf after its iat (§9 step 3)", "verify",
         kbt(presented(resign(issuer_cwt, issuer, payload={**bk, 5: CWT_IAT + 1}), [0])),
         expect="error", error="sd_time_inconsistent")
    case("nonce-mismatch", "the verifier issued another nonce", "verify", (DRAFT / "kbt.cbor").read_bytes(),
         nonce=bytes(16), expect="error", error="sd_nonce_mismatch")
    case("nonce-missing", "the verifier requires a nonce; the KBT has no cnonce", "verify",
         kbt(chosen, payload={3: AUDIENCE, 6: KBT_IAT}), expect="error", error="missing_claim")
    case("no-nonce-required", "a verifier that issued no nonce accepts the KBT's cnonce as opaque", "verify",
         (DRAFT / "kbt.cbor").read_bytes(), nonce=None, claims=expected_claims(chosen))
    bad_sig = list(issuer_cwt.value)
    bad_sig[3] = bytes([bad_sig[3][0] ^ 1]) + bad_sig[3][1:]
    case("issuer-signature", "one bit of the issuer signature flipped", "verify",
         kbt(presented(Tag(18, bad_sig), [0])), expect="error", error="bad_signature")
    case("empty-sd-claims", "sd_claims present but empty (§9 step 2)", "verify", with_disclosures([]),
         expect="error", error="sd_invalid_header")
    case("kbt-cwt-claims", "CWT_Claims (15) in the KBT protected header (§6.3)", "verify",
         kbt(chosen, protected={1: -7, 13: chosen, 15: {3: AUDIENCE}, 16: 294}), expect="error", error="sd_invalid_header")
    case("oversize", "a 735-byte presentation against a 700-byte limit", "verify", (DRAFT / "kbt.cbor").read_bytes(),
         policy={"max_size": 700}, expect="error", error="too_large")
    case("content-only-digests", "the draft's tokens digest the full bstr item; in content-only mode nothing matches",
         "verify", (DRAFT / "kbt.cbor").read_bytes(), policy={"digest_input": "content"}, expect="error",
         error="sd_disclosure_unmatched")

    # Disclosure shape.
    case("disclosure-four-elements", "a disclosure array of 4 elements", "verify",
         with_disclosures([enc([d[0][0], "x", 501, 1])]), expect="error", error="sd_disclosure_malformed")
    case("disclosure-bstr-key", "a disclosure whose claim key is a byte string", "verify",
         with_disclosures([enc([d[0][0], "x", b"k"])]), expect="error", error="sd_disclosure_malformed")
    case("disclosure-not-array", "a disclosure that is a map", "verify",
         with_disclosures([enc({1: d[0][0]})]), expect="error", error="sd_disclosure_malformed")
    case("salt-15-bytes", "a 15-byte salt", "verify", with_disclosures([enc([d[0][0][:15], "ABCD-123456", 501])]),
         expect="error", error="sd_salt_length")
    case("sd-claims-entry-not-bstr", "an sd_claims entry that is an array, not a byte string", "verify",
         kbt(Tag(18, [issuer_cwt.value[0], {17: [d[0]]}, issuer_cwt.value[2], issuer_cwt.value[3]])),
         expect="error", error="sd_invalid_header")

    # Redactions in the wrong place (payloads re-signed by the issuer).
    def reissued(payload, chosen_idx=(0,)):
        return kbt(presented(resign(issuer_cwt, issuer, payload=payload), list(chosen_idx)))

    case("simple59-not-array", "simple(59) holding a byte string instead of an array of digests", "verify",
         reissued({**bk, Simple(59): bk[Simple(59)][0]}), expect="error", error="sd_redaction_misplaced")
    case("simple59-as-value", "simple(59) as a claim value", "verify",
         reissued({**bk, 600: Simple(59)}), expect="error", error="sd_redaction_misplaced")
    case("simple59-in-kbt", "simple(59) as a key in the KBT payload", "verify",
         kbt(chosen, payload={3: AUDIENCE, 6: KBT_IAT, 39: CNONCE, Simple(59): []}),
         expect="error", error="sd_redaction_misplaced")
    case("tag60-map-value", "tag 60 as a map value (only array elements may be redacted that way)", "verify",
         reissued({**bk, 600: Tag(60, bytes(32))}), expect="error", error="sd_redaction_misplaced")
    case("tag58-in-issued", "a to-be-redacted tag 58 left in an issued payload", "verify",
         reissued({**bk, 600: [Tag(58, 1)]}), expect="error", error="sd_forbidden_tag")
    case("tagged-map-key", "a tagged map key in an issued payload", "verify",
         reissued({**bk, Tag(1, 600): 1}), expect="error", error="sd_forbidden_tag")
    case("digest-wrong-length", "a 31-byte redacted claim hash", "verify",
         reissued({**bk, Simple(59): [bk[Simple(59)][0][:31]]}), expect="error", error="sd_invalid_digest")
    h0 = bk[Simple(59)][0]
    case("digest-reused", "the same digest in two maps", "verify",
         reissued({**bk, 503: {**bk[503], Simple(59): bk[503][Simple(59)] + [h0]}}), expect="error",
         error="sd_digest_reused")
    case("claim-disclosure-in-array", "a claim disclosure's digest in an array slot", "verify",
         reissued({**bk, Simple(59): [], 600: [Tag(60, h0)]}), expect="error", error="sd_disclosure_position")
    case("claim-conflict", "disclosed claim 501 while 501 is also plain in the same map", "verify",
         reissued({**bk, 501: "EFGH"}), expect="error", error="sd_claim_conflict")
    exp_disclosure = enc([bytes(range(16, 32)), CWT_IAT + 99, 4])
    no_exp = {k: v for k, v in bk.items() if k != 4}
    case("never-redacted-exp", "a disclosure restoring exp, which Table 2 never redacts", "verify",
         kbt(Tag(18, [enc(pk), {17: [exp_disclosure]}, enc({**no_exp, Simple(59): [digest(exp_disclosure)]}),
                      ecdsa(issuer, -35, sig_structure(enc(pk), enc({**no_exp, Simple(59): [digest(exp_disclosure)]})))])),
         expect="error", error="sd_never_redacted")
    deep16 = 1
    for _ in range(15):
        deep16 = [deep16]
    case("nesting-16-levels", "a claim whose innermost value is at level 16 (§6.5)", "verify",
         reissued({**bk, 600: deep16}, (0, 1, 3)), claims={**expected_claims(chosen), 600: deep16})
    case("nesting-17-levels", "one level deeper than the §6.5 limit of 16", "verify",
         reissued({**bk, 600: [deep16]}), expect="error", error="sd_too_deep")
    deep40 = 1
    for _ in range(40):
        deep40 = [deep40]
    case("nesting-41-cbor", "41 nested arrays: refused by the CBOR decoder before the claims walk", "verify",
         reissued({**bk, 600: deep40}), expect="error", error="cbor_too_deep")

    # Malformed CBOR and wrong tags.
    good = (DRAFT / "kbt.cbor").read_bytes()
    case("truncated", "the KBT cut short by one byte", "verify", good[:-1], expect="error", error="cbor_truncated")
    case("trailing-byte", "a byte after the KBT", "verify", good + b"\x00", expect="error", error="cbor_trailing_bytes")
    case("indefinite-array", "the KBT's outer array with indefinite length", "verify",
         good[:1] + b"\x9f" + good[2:] + b"\xff", expect="error", error="cbor_indefinite_length")
    assert good.count(bytes.fromhex("5839a303")) == 1
    case("non-preferred-length", "the KBT payload bstr length in 2 bytes instead of 1", "verify",
         good.replace(bytes.fromhex("5839a303"), bytes.fromhex("590039a303")), expect="error", error="cbor_non_preferred")
    dup_payload = enc({3: AUDIENCE, 6: KBT_IAT, 39: CNONCE})
    dup_payload = bytes([dup_payload[0] + 1]) + dup_payload[1:] + enc(6) + enc(KBT_IAT)
    case("duplicate-key", "the KBT payload repeats iat (§6.4)", "verify",
         sign1({1: -7, 13: chosen, 16: 294}, {}, None, holder, raw_payload=dup_payload), expect="error",
         error="cbor_duplicate_key")
    case("kbt-wrong-tag", "the KBT tagged 17 (COSE_Mac0) instead of 18", "verify",
         Tag(17, kbt(chosen).value), expect="error", error="cose_wrong_tag")
    case("kbt-untagged", "the KBT without its tag", "verify", kbt(chosen).value, expect="error", error="cose_wrong_tag")
    case("kcwt-untagged", "kcwt holding the SD-CWT array without tag 18", "verify",
         kbt(chosen, protected={1: -7, 13: chosen.value, 16: 294}), expect="error", error="cose_wrong_tag")
    case("kbt-three-elements", "a COSE_Sign1 array of 3 elements", "verify",
         Tag(18, kbt(chosen).value[:3]), expect="error", error="cose_malformed")

    # Holder-side checks.
    case("holder-other-cnf", "an SD-CWT whose cnf is another holder's key", "holder",
         resign(issuer_cwt, issuer, payload={**bk, 8: {1: cose_key_of(other_holder)}}), expect="error",
         error="sd_confirmation_key")
    case("holder-unmatched", "the issuer sends a disclosure no digest refers to", "holder",
         Tag(18, [issuer_cwt.value[0], {17: uk[17] + [stranger]}, issuer_cwt.value[2], issuer_cwt.value[3]]),
         expect="error", error="sd_disclosure_unmatched")

    return {
        "_comment": "Generated by testdata/vectors/generate_spice.py; see testdata/vectors/README.md.",
        "keys": {
            "issuer": jwk_of(issuer, "ES384", "https://issuer.example/cose-key3"),
            "holder": jwk_of(holder, "ES256"),
            "other_holder": jwk_of(other_holder, "ES256"),
        },
        "cases": cases,
    }


# --------------------------------------------------------------------------
# GLUE identifiers and the OIDC claims mapping
# --------------------------------------------------------------------------
def glue(cid, why, urn, *, canonical=None, authority=None, external=None, equivalent=None, error=None, strict_error=None):
    c = {"id": cid, "why": why, "input": urn}
    if error:
        c.update(valid=False, error=error)
    else:
        c.update(valid=True, canonical=canonical or urn, authority=authority, external=external)
        if equivalent:
            c["equivalent"] = equivalent
        # parse_canonical: the same result for canonical input, not_canonical otherwise.
        c["strict"] = "valid" if (canonical or urn) == urn else (strict_error or "not_canonical")
    return c


def gs1_check(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def build_glue():
    gln = "061414100006" + gs1_check("061414100006")
    cases = [
        glue("draft-pen", "the draft's example (§3), PEN 32473 of RFC 5612", "urn:glue:pen:32473",
             authority="pen", external="32473"),
        glue("draft-lei", "§4.1.1: the LEI example", "urn:glue:lei:inr2ejn1eran0w5zp974", authority="lei",
             external="inr2ejn1eran0w5zp974", equivalent="urn:lei:inr2ejn1eran0w5zp974"),
        glue("draft-duns-canonical", "§3: DUNS 123456789", "urn:glue:duns:123456789", authority="duns",
             external="123456789"),
        glue("draft-duns-hyphens", "§3: 12-345-6789 and 123456789 are the same DUNS; the hyphens are ignored",
             "urn:glue:duns:12-345-6789", canonical="urn:glue:duns:123456789", authority="duns", external="123456789"),
        glue("authority-uppercase", "§3: accept uppercase authority identifiers, produce lowercase",
             "urn:glue:PEN:32473", canonical="urn:glue:pen:32473", authority="pen", external="32473"),
        glue("prefix-uppercase", "RFC 8141: the urn scheme and NID are case-insensitive", "URN:GLUE:pen:32473",
             canonical="urn:glue:pen:32473", authority="pen", external="32473"),
        glue("lei-uppercase", "the lei transformation rule: convert uppercase to lowercase",
             "urn:glue:lei:INR2EJN1ERAN0W5ZP974", canonical="urn:glue:lei:inr2ejn1eran0w5zp974", authority="lei",
             external="inr2ejn1eran0w5zp974", equivalent="urn:lei:inr2ejn1eran0w5zp974"),
        glue("iso6523-colon", "the iso6523 transformation rule: a colon becomes a period",
             "urn:glue:iso6523:0088:5790000435975", canonical="urn:glue:iso6523:0088.5790000435975",
             authority="iso6523", external="0088.5790000435975"),
        glue("iso6523-canonical", "ICD 0088 (GLN) with the period already substituted",
             "urn:glue:iso6523:0088.5790000435975", authority="iso6523", external="0088.5790000435975"),
        glue("gln", "a 13-digit GLN with its GS1 check digit", f"urn:glue:gln:{gln}", authority="gln", external=gln),
        glue("external-1000", "an external identifier of exactly 1000 characters", "urn:glue:iso6523:0088." + "a" * 995,
             authority="iso6523", external="0088." + "a" * 995),
        glue("external-1001", "an external identifier of 1001 characters", "urn:glue:iso6523:0088." + "a" * 996,
             error="external_syntax"),
        glue("unknown-authority", "the authority is not registered", "urn:glue:example:1", error="unknown_authority"),
        glue("authority-51", "an authority identifier of 51 characters", "urn:glue:" + "a" * 51 + ":1",
             error="authority_syntax"),
        glue("authority-empty", "no authority identifier", "urn:glue::32473", error="authority_syntax"),
        glue("authority-first-char", "an authority identifier starting with a period", "urn:glue:.pen:1",
             error="authority_syntax"),
        glue("no-external", "no colon after the authority", "urn:glue:pen", error="external_syntax"),
        glue("empty-external", "an empty external identifier", "urn:glue:pen:", error="external_syntax"),
        glue("external-first-char", "an external identifier starting with a plus", "urn:glue:pen:+32473",
             error="external_syntax"),
        glue("external-underscore", "an underscore is not allowed", "urn:glue:pen:32_473", error="external_syntax"),
        glue("external-colon", "a colon in the external identifier of an authority without a substitute",
             "urn:glue:pen:32:473", error="external_syntax"),
        glue("percent", "percent-encoding is not permitted", "urn:glue:pen:3247%33", error="percent_encoding"),
        glue("non-ascii", "non-ASCII characters are not permitted", "urn:glue:pen:3247\u00e9",
             error="non_ascii"),
        glue("other-nid", "not the glue namespace", "urn:glu:pen:32473", error="not_glue_urn"),
        glue("lei-checksum", "an LEI whose ISO 17442 check digits are wrong", "urn:glue:lei:inr2ejn1eran0w5zp975",
             error="authority_format"),
        glue("lei-length", "an LEI of 19 characters", "urn:glue:lei:inr2ejn1eran0w5zp97", error="authority_format"),
        glue("duns-length", "a DUNS number of 8 digits", "urn:glue:duns:12345678", error="authority_format"),
        glue("pen-leading-zero", "a PEN with a leading zero", "urn:glue:pen:032473", error="authority_format"),
        glue("gln-check-digit", "a GLN with a wrong check digit", f"urn:glue:gln:{gln[:-1]}{(int(gln[-1]) + 1) % 10}",
             error="authority_format"),
        glue("iso6523-no-icd", "an ISO/IEC 6523 identifier without a 4-digit ICD", "urn:glue:iso6523:88.123",
             error="authority_format"),
    ]
    return {"_comment": "Generated by testdata/vectors/generate_spice.py; see testdata/vectors/README.md.",
            "cases": cases}


def build_oidc():
    jwt_claims = {
        "name": "Jane Doe", "given_name": "Jane", "family_name": "Doe", "middle_name": "Ellen",
        "nickname": "Janet", "preferred_username": "j.doe", "profile": "https://example.org/about.html",
        "picture": "https://example.org/avatar.png", "website": "https://example.org",
        "email": "janedoe@example.com", "email_verified": True, "gender": "female", "birthdate": "1970-03-22",
        "zoneinfo": "America/Los_Angeles", "locale": "en_US", "phone_number": "+1 (425) 555-1212",
        "phone_number_verified": True,
        "address": {"formatted": "1234 Hollywood Blvd\nLos Angeles CA 90210\nUSA",
                    "street_address": "1234 Hollywood Boulevard", "locality": "Los Angeles", "region": "CA",
                    "postal_code": "90210", "country": "United States of America"},
        "updated_at": 1730123071,
    }
    labels = {name: 170 + i for i, name in enumerate(
        ["name", "given_name", "family_name", "middle_name", "nickname", "preferred_username", "profile", "picture",
         "website", "email", "email_verified", "gender", "birthdate", "zoneinfo", "locale", "phone_number",
         "phone_number_verified", "address", "updated_at"])}
    address = {"formatted": 1, "street_address": 2, "locality": 3, "region": 4, "postal_code": 5, "country": 6}
    cwt = {labels[k]: ({address[m]: x for m, x in v.items()} if k == "address" else v) for k, v in jwt_claims.items()}
    example = (SPICE / "draft" / "oidc-cwt-example.cbor").read_bytes()
    assert enc(cwt) == example, "the mapping reproduces the draft's example.cbor"
    return {
        "_comment": "Generated by testdata/vectors/generate_spice.py; see testdata/vectors/README.md.",
        "table_date": "2026-03-02",
        "cases": [
            {"id": "draft-example", "why": "the draft's example.edn/example.cbor, from the JWT claims it encodes",
             "json": jwt_claims, "expect": "valid", "cbor": example.hex()},
            {"id": "registered-and-private", "why": "registered CWT claims map to their labels; unknown claims keep "
             "their names", "json": {"iss": "https://issuer.example", "iat": 1700000000, "email": "a@b.example",
                                     "x-team": ["a", 1]},
             "expect": "valid", "cbor": enc({1: "https://issuer.example", 6: 1700000000, 179: "a@b.example",
                                             "x-team": ["a", 1]}).hex()},
            {"id": "wrong-type-bool", "why": "email_verified must be a boolean", "json": {"email_verified": "yes"},
             "expect": "error", "error": "invalid_claim"},
            {"id": "wrong-type-address-member", "why": "address members are strings",
             "json": {"address": {"locality": 7}}, "expect": "error", "error": "invalid_claim"},
            {"id": "wrong-type-updated-at", "why": "updated_at is a NumericDate", "json": {"updated_at": "2024"},
             "expect": "error", "error": "invalid_claim"},
        ],
    }


def main():
    for name, doc in (("glue_id.json", build_glue()), ("oidc_cwt.json", build_oidc())):
        (SPICE / name).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {SPICE / name} ({len(doc['cases'])} cases)")
    doc = build()
    # Self-check of every valid verify/holder case against the reference restore above.
    for c in doc["cases"]:
        if c["kind"] in ("verify", "holder") and c["expect"] == "valid":
            assert "claims" in c, c["id"]
    ids = [c["id"] for c in doc["cases"]]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    out = HERE / "cases.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out} ({len(doc['cases'])} cases)")


if __name__ == "__main__":
    sys.exit(main())
