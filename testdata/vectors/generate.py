#!/usr/bin/env python3
"""Generate the Lanyard conformance test vectors.

Run from anywhere:  python3 testdata/vectors/generate.py  [--explain]

Writes, relative to this file's directory (all in one run):

  identifiers/spiffe.json   identifiers/wimse.json
  keys.json
  tokens/wit.json   tokens/wpt.json   tokens/jwt_svid.json
  httpsig/wimse_07.json     (httpsig/draft_examples.json is the drafts' own examples, not generated)

Only the Python standard library and `cryptography` are used.  The output is
deterministic, so re-running reproduces byte-identical files:

* spec tokens and spec keys are embedded below verbatim;
* the generated keys (lanyard-*, attacker-*, workload-es256) are read back
  from keys.json when it exists and only created when missing;
* ES256 uses RFC 6979 deterministic nonces, PS256 uses a salt derived from
  the signing input, RS256/EdDSA/HS256 are deterministic anyway.

After writing, every case is re-checked by an independent reference
verifier (`ref_*` below).  It does not stop at the first problem: it
collects every rule a token violates.  The script fails unless each valid
case violates nothing (its signatures verify under the named anchors with
`cryptography`) and each negative case violates exactly its one intended
rule (gated checks excepted: a signature is not checked when the algorithm
was already refused, or when no key could be selected).  `--explain`
additionally prints, for each synthetic negative case, how its decoded
header/payload differs from the valid token it was derived from.
"""

import base64
import copy
import hashlib
import hmac
import json
import re
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

HERE = Path(__file__).resolve().parent

# --------------------------------------------------------------------------
# Verification parameters shared with the Rust harness
# --------------------------------------------------------------------------
LEEWAY = 60  # s, clock skew
MAX_WPT_LIFETIME = 300  # s, exp - now must be <= this (no leeway added)
MAX_WIT_LIFETIME = 24 * 3600  # s, exp - now must be <= this (no leeway added)
MAX_TOKEN_BYTES = 16 * 1024  # a token longer than this is too_large
MAX_ID_BYTES = 2048
MAX_TD_BYTES = 255

A1_NOW = 1745509000  # inside the A.1 WIT validity window
A3_NOW = 1745509800  # inside the A.3 WPT validity window
SYN_NOW = 1780000000  # 2026-05-28T20:26:40Z, clock for Lanyard-made tokens
A3_AUDIENCE = "https://workload.example.com/path"
A3_ACCESS_TOKEN = "16_mAd0GiwaZokU26_0902100"
SVID_AUDIENCE = "https://api.example.org"
A1_WIT_EXP = 1745512510  # exp of the A.1 WIT

# --------------------------------------------------------------------------
# Spec material, verbatim (wimse.md Appendix A; see README.md for provenance)
# --------------------------------------------------------------------------
A1_WIT = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6Ikp1bmUgNSIsInR5cCI6IndpdCtqd3QifQ.eyJjbmYiOnsiandrIjp7ImFsZyI6IkVkRFNBIiwiY3J2IjoiRWQyNTUxOSIsImt0eSI6Ik9LUCIsIngiOiIxQ1hYdmZsTl9MVlZzSXNZWHNVdkIwM0ptbEdXZUNIcVFWdW91Q0Y5MmJnIn19LCJleHAiOjE3NDU1MTI1MTAsImlhdCI6MTc0NTUwODkxMCwianRpIjoieC1fMUNUTDJjY2EzQ1NFNGN3Yl9sIiwic3ViIjoid2ltc2U6Ly9leGFtcGxlLmNvbS9zcGVjaWZpYy13b3JrbG9hZCJ9.6KraSQUxWdl9dxFQ3Fj6dPY0Vi88OkwFwZpAIOhLeq6AbXAnLLQgOp8U9UDGcBuYF3KiNv6oKQD1ZWAzrMZOJw"
)
A3_WPT = (
    "eyJhbGciOiJFZERTQSIsInR5cCI6IndwdCtqd3QifQ.eyJhdGgiOiJDTDR3amZwUm1OZi1iZFlJYllMblY5ZDVyTUFSR3dLWUUxMHdVd3pDMGpJIiwiYXVkIjoiaHR0cHM6Ly93b3JrbG9hZC5leGFtcGxlLmNvbS9wYXRoIiwiZXhwIjoxNzQ1NTEwMDE2LCJqdGkiOiJfX2J3YzRFU0MzYWNjMkxUQzEtX3giLCJ3dGgiOiJBYVlVZkMzNEQxZGkyRnhRTHBpSUpKN1NnOFZaNm84T0Nkd1NmOUlUb0xnIn0.PI7d9AcYhLoEgPgbJvcM132lkBKnM1NXU-5hZUzVTIyj2dRJaTLFs6e5NYv5gg6AqcV7NvkYCwfgMgWasWQzCA"
)
A5_WIT = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6Ikp1bmUgNSIsInR5cCI6IndpbXNlLWlkK2p3dCJ9.eyJjbmYiOnsiandrIjp7ImFsZyI6IkVkRFNBIiwiY3J2IjoiRWQyNTUxOSIsImt0eSI6Ik9LUCIsIngiOiIxQ1hYdmZsTl9MVlZzSXNZWHNVdkIwM0ptbEdXZUNIcVFWdW91Q0Y5MmJnIn19LCJleHAiOjE3NDU1MTI1MTAsImlhdCI6MTc0NTUwODkxMCwianRpIjoiYmQyYTdiNWJmODU3M2E0MWFkYjRjYmYzY2ZhMDFlMTUiLCJzdWIiOiJ3aW1zZTovL2V4YW1wbGUuY29tL3NwZWNpZmljLXdvcmtsb2FkIn0.xpODXCUhZ2zk-1-W3VEqbqWhBX6_OJIl7vtjahgwJStMOCRn6J6is6f5mz-Pi5-Xk6FmV44k48NzulqMDVJbAw"
)
A5_WPT = (
    "eyJhbGciOiJFZERTQSIsInR5cCI6IndpbXNlLXByb29mK2p3dCJ9.eyJhdGgiOiJDTDR3amZwUm1OZi1iZFlJYllMblY5ZDVyTUFSR3dLWUUxMHdVd3pDMGpJIiwiYXVkIjoiaHR0cHM6Ly93b3JrbG9hZC5leGFtcGxlLmNvbS9wYXRoIiwiZXhwIjoxNzQ1NTA5MjEwLCJqdGkiOiJlMzI5YmI4Njk2YWE0YWVjYTA0ODg2ZGQ3NmU3OGIyNiIsInd0aCI6InJvN3hGT1NHX2pZeG1VV2Z3ZXFrNVgxc2M2TDBzQ2o3NVdLVDkxZ014eFUifQ.oSegRTrBxuQN55oyWRK5PnPEZLhgRy0Va7BpxBw-a64E3map15dbDo9ArRcJ8M4Z4QZ829CCppfnuaLIei1bBQ"
)
A6_WIT_SVID = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImxRU2kzaFpGbmRhMkQtWEprajF6bDdmb0pvdWl3STRuckF5aHk0alppSmciLCJ0eXAiOiJ3aXQrand0In0.eyJjbmYiOnsiandrIjp7ImFsZyI6IkVTMjU2IiwiY3J2IjoiUC0yNTYiLCJrdHkiOiJFQyIsIngiOiJyelA3bUxDS0FIV21zTTZYMEV3VklTQ19oSTN1amN1OTVmZlVreWVER0dvIiwieSI6InVPcmZEbGp0WDltM2pZLWhzeWhMSllheHRHa3pEdjVlNWttQ2U1OFo5N2cifX0sImV4cCI6MTc2NTQ1NjUwMywiaWF0IjoxNzY1NDUyOTAzLCJqdGkiOiIxeWoxOVY0TWNPQXpNY0ZpN3F2c2dfQWdDeGxyWTVFX3g1MDl3bEtLUXRjIiwic3ViIjoic3BpZmZlOi8vZXhhbXBsZS5jb20vbXktd29ya2xvYWQifQ.sfhEvZNdY_kWrICF08lX0u__rn39YnTavnW-VPBS20zgowDh6-X43v5eOUKZbjZf06yLBQM-Mry5w1g1QFsCkg"
)
A4_REQUEST_WIT = (
    "eyJhbGciOiJFZERTQSIsImtpZCI6Imlzc3Vlci1rZXkiLCJ0eXAiOiJ3aXQrand0In0.eyJjbmYiOnsiandrIjp7ImFsZyI6IkVkRFNBIiwiY3J2IjoiRWQyNTUxOSIsImtpZCI6InN2Yy1hLWtleSIsImt0eSI6Ik9LUCIsIngiOiJaamxWVDRDT3NDa1FPOUhJbzZ0RFdBWGF5UTBNeW1vRlVLSlJJUTdTOFI4In19LCJleHAiOjE3ODUxNTYwOTcsImlhdCI6MTc4NTE1NTc5NywiaXNzIjoiaHR0cHM6Ly9leGFtcGxlLmNvbS9pc3N1ZXIiLCJqdGkiOiJ3aXQtMTc4NTE1NTc5NzIxNjU0NTcxOSIsInN1YiI6IndpbXNlOi8vZXhhbXBsZS5jb20vc3ZjQSJ9.BqJfcsbrYlS9GSQ7NpFBBVz4CeszShqleIyr2sSnd0Ic6l2HXX27giZcdAOGnXjtv_7h-9vV16GZbVcrQt6hCg"
)
A4_RESPONSE_WIT = (
    "eyJhbGciOiJFZERTQSIsImtpZCI6Imlzc3Vlci1rZXkiLCJ0eXAiOiJ3aXQrand0In0.eyJjbmYiOnsiandrIjp7ImFsZyI6IkVkRFNBIiwiY3J2IjoiRWQyNTUxOSIsImtpZCI6InN2Yy1iLWtleSIsImt0eSI6Ik9LUCIsIngiOiJsQnRMUzhjTnRfN3BXc2RpMnhneDc2MGxXcHpFdnFZZTJEcFNrOUVMSDJ3In19LCJleHAiOjE3ODUxNTYwOTksImlhdCI6MTc4NTE1NTc5OSwiaXNzIjoiaHR0cHM6Ly9leGFtcGxlLmNvbS9pc3N1ZXIiLCJqdGkiOiJ3aXQtMTc4NTE1NTc5NzIxNjY3MDUxOCIsInN1YiI6IndpbXNlOi8vZXhhbXBsZS5jb20vc3ZjQiJ9.HIAU2288ryXoym1M9fnKZqd0p2Vl7spOh-FY2jCFY-05H74-WPUFWrg5lH5f2rHl47TfxEGri3fmMP4zhYzeAw"
)
A4B_REQUEST_WIT = (
    "eyJhbGciOiJFZERTQSIsImtpZCI6Imlzc3Vlci1rZXkiLCJ0eXAiOiJ3aXQrand0In0.eyJjbmYiOnsiandrIjp7ImFsZyI6IkVkRFNBIiwiY3J2IjoiRWQyNTUxOSIsImtpZCI6InN2Yy1hLWtleSIsImt0eSI6Ik9LUCIsIngiOiJPRHB4NUsyZVdzaGluRUpKZC1RcHEzel9GcDVpekExWWhpTmRlY1YwYWpRIn19LCJleHAiOjE3ODQzNzc3ODUsImlhdCI6MTc4NDM3NzQ4NSwiaXNzIjoiaHR0cHM6Ly9leGFtcGxlLmNvbS9pc3N1ZXIiLCJqdGkiOiJ3aXQtMTc4NDM3NzQ4NTc1MzQyMjEwNCIsInN1YiI6IndpbXNlOi8vZXhhbXBsZS5jb20vc3ZjQSJ9.OZj71_u_jpqF5tnwRdDSiHrSGcmmNMqss_AvgVIuasbaMQV8pgv3otLC8V6bNMGMXoCPCNK3XVBnfeNsICr5DQ"
)
A4B_RESPONSE_WIT = (
    "eyJhbGciOiJFZERTQSIsImtpZCI6Imlzc3Vlci1rZXkiLCJ0eXAiOiJ3aXQrand0In0.eyJjbmYiOnsiandrIjp7ImFsZyI6IkVkRFNBIiwiY3J2IjoiRWQyNTUxOSIsImtpZCI6InN2Yy1iLWtleSIsImt0eSI6Ik9LUCIsIngiOiJWNVljcDZtMUVqbVJVQXpkYXFUd09rbXl2NzFfeUk1UU1scEpadDVaZ29nIn19LCJleHAiOjE3ODQzNzc3ODcsImlhdCI6MTc4NDM3NzQ4NywiaXNzIjoiaHR0cHM6Ly9leGFtcGxlLmNvbS9pc3N1ZXIiLCJqdGkiOiJ3aXQtMTc4NDM3NzQ4NTc1MzU0NjEwNCIsInN1YiI6IndpbXNlOi8vZXhhbXBsZS5jb20vc3ZjQiJ9.OxWtp89SLrSM1mEP5p1WQ7sWFUh9zSbxNuMgt3QearHFq-uUE7pr6tAxXYpaSUjTPKUDBzHPqySUbTfmTI7SDw"
)

SPEC_KEYS = {
    # wimse.md A.1 "Example Identity Server Key" + private d from examples/main.go
    "issuer-june5": {
        "kty": "EC",
        "kid": "June 5",
        "crv": "P-256",
        "x": "kXqnA2Op7hgd4zRMbw0iFcc_hDxUxhojxOFVGjE2gks",
        "y": "n__VndPMR021-59UAs0b9qDTFT-EZtT6xSNs_xFskLo",
        "d": "NRHs9bfMUcF49AV_NIoeh3UGopW4AXZLfv5G2px1WcY",
    },
    # wimse.md A.5, issuer key of draft-ietf-wimse-s2s-protocol-05/-06 (public only)
    "issuer-june5-old": {
        "kty": "EC",
        "kid": "June 5",
        "crv": "P-256",
        "x": "Dy47KDeYao6kOhxSraJeJizjVxHjjo-9NsnrMqLyvOo",
        "y": "bj3s7bncoSYURzAzF0jBy0JOnnP5-5E11vx5QoYEFgk",
    },
    # wimse.md A.1 "Example Workload's Key" (the WIT cnf key, private d published)
    "workload-a1": {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": "1CXXvflN_LVVsIsYXsUvB03JmlGWeCHqQVuouCF92bg",
        "d": "sdLX8yCYKqo_XvGBLn-ZWeKT7llYeeQpgeCaXVxb5kY",
    },
    # wimse.md A.4, http-signature-06 includes/sigs-svca-jwk.txt (caller, private d published)
    "svc-a-key": {
        "alg": "EdDSA",
        "crv": "Ed25519",
        "d": "HQdG2ekHF4COyoHNYvCh2fMHhIaKvkrStjmyfndFyGI",
        "kid": "svc-a-key",
        "kty": "OKP",
        "x": "ZjlVT4COsCkQO9HIo6tDWAXayQ0MymoFUKJRIQ7S8R8",
    },
    # wimse.md A.4, http-signature-06 includes/sigs-svcb-jwk.txt (callee, private d published)
    "svc-b-key": {
        "alg": "EdDSA",
        "crv": "Ed25519",
        "d": "nn132WU82duEPtUbQtoQLqWoC1hKl8zeWavCDIR0VeI",
        "kid": "svc-b-key",
        "kty": "OKP",
        "x": "lBtLS8cNt_7pWsdi2xgx760lWpzEvqYe2DpSk9ELH2w",
    },
}

# name -> (key type, JWS alg).  Created once, then read back from keys.json.
GENERATED_KEYS = {
    "lanyard-es256": ("EC", "ES256"),
    "lanyard-rs256": ("RSA", "RS256"),
    "lanyard-ps256": ("RSA", "PS256"),
    "lanyard-ed25519": ("OKP", "EdDSA"),
    "attacker-es256": ("EC", "ES256"),
    "workload-es256": ("EC", "ES256"),
}
KEY_ORDER = ["issuer-june5", "issuer-june5-old", "workload-a1"] + list(GENERATED_KEYS) + ["svc-a-key", "svc-b-key"]
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")

# --------------------------------------------------------------------------
# base64url / JSON helpers
# --------------------------------------------------------------------------
B64U_RE = re.compile(r"^[A-Za-z0-9_-]*$")


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Strict base64url: no padding, no foreign characters, canonical."""
    if not B64U_RE.match(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64u(raw) != text:
        raise ValueError("non-canonical base64url")
    return raw


def cjson(obj) -> bytes:
    """Compact JSON with sorted member names (what go-jose emits)."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def sha256_b64u(text: str) -> str:
    return b64u(hashlib.sha256(text.encode("ascii")).digest())


def int_b64u(value: int, length: int | None = None) -> str:
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return b64u(value.to_bytes(length, "big"))


def b64u_int(text: str) -> int:
    return int.from_bytes(b64u_decode(text), "big")


def fake_jti(label: str) -> str:
    """Stable 128-bit jti derived from the case id."""
    return b64u(hashlib.sha256(("lanyard-jti:" + label).encode()).digest()[:16])


def decode_part(segment: str):
    return json.loads(b64u_decode(segment))


# --------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------
def jwk_from_private(kind: str, alg: str, name: str, key) -> dict:
    if kind == "EC":
        pub = key.public_key().public_numbers()
        return {
            "kty": "EC", "kid": name, "alg": alg, "crv": "P-256",
            "x": int_b64u(pub.x, 32), "y": int_b64u(pub.y, 32),
            "d": int_b64u(key.private_numbers().private_value, 32),
        }
    if kind == "RSA":
        priv = key.private_numbers()
        pub = priv.public_numbers
        return {
            "kty": "RSA", "kid": name, "alg": alg,
            "n": int_b64u(pub.n), "e": int_b64u(pub.e), "d": int_b64u(priv.d),
            "p": int_b64u(priv.p), "q": int_b64u(priv.q), "dp": int_b64u(priv.dmp1),
            "dq": int_b64u(priv.dmq1), "qi": int_b64u(priv.iqmp),
        }
    if kind == "OKP":
        raw_pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        raw_priv = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return {"kty": "OKP", "kid": name, "alg": alg, "crv": "Ed25519", "x": b64u(raw_pub), "d": b64u(raw_priv)}
    raise ValueError(kind)


def generate_key(name: str, kind: str, alg: str) -> dict:
    if kind == "EC":
        key = ec.generate_private_key(ec.SECP256R1())
    elif kind == "RSA":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    return jwk_from_private(kind, alg, name, key)


def load_keys() -> dict:
    existing = {}
    path = HERE / "keys.json"
    if path.exists():
        existing = json.loads(path.read_text())
    keys = {}
    for name in KEY_ORDER:
        if name in SPEC_KEYS:
            keys[name] = copy.deepcopy(SPEC_KEYS[name])
        elif name in existing:
            keys[name] = existing[name]
        else:
            kind, alg = GENERATED_KEYS[name]
            keys[name] = generate_key(name, kind, alg)
    return keys


def public_jwk(jwk: dict) -> dict:
    return {k: v for k, v in jwk.items() if k not in PRIVATE_MEMBERS}


def private_key(jwk: dict):
    kty = jwk["kty"]
    if kty == "EC":
        if jwk["crv"] != "P-256":
            raise ValueError("only P-256 is used here")
        return ec.derive_private_key(b64u_int(jwk["d"]), ec.SECP256R1())
    if kty == "RSA":
        n, e = b64u_int(jwk["n"]), b64u_int(jwk["e"])
        return rsa.RSAPrivateNumbers(
            p=b64u_int(jwk["p"]), q=b64u_int(jwk["q"]), d=b64u_int(jwk["d"]),
            dmp1=b64u_int(jwk["dp"]), dmq1=b64u_int(jwk["dq"]), iqmp=b64u_int(jwk["qi"]),
            public_numbers=rsa.RSAPublicNumbers(e, n),
        ).private_key()
    if kty == "OKP":
        return ed25519.Ed25519PrivateKey.from_private_bytes(b64u_decode(jwk["d"]))
    raise ValueError(kty)


def public_key(jwk: dict):
    kty = jwk.get("kty")
    if kty == "EC" and jwk.get("crv") == "P-256":
        return ec.EllipticCurvePublicNumbers(b64u_int(jwk["x"]), b64u_int(jwk["y"]), ec.SECP256R1()).public_key()
    if kty == "RSA":
        return rsa.RSAPublicNumbers(b64u_int(jwk["e"]), b64u_int(jwk["n"])).public_key()
    if kty == "OKP" and jwk.get("crv") == "Ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(b64u_decode(jwk["x"]))
    raise ValueError("unsupported key")


def pem_of(jwk: dict) -> bytes:
    return public_key(jwk).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# --------------------------------------------------------------------------
# JWS signing / verification
# --------------------------------------------------------------------------
def _mgf1_sha256(seed: bytes, length: int) -> bytes:
    out, counter = b"", 0
    while len(out) < length:
        out += hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:length]


def pss_sha256_sign_deterministic(key: "rsa.RSAPrivateKey", message: bytes) -> bytes:
    """RSASSA-PSS (RFC 8017 §8.1) with SHA-256, MGF1-SHA-256, 32-byte salt.

    The salt is derived from the message so the output is reproducible; the
    result is an ordinary PS256 signature (checked with cryptography below).
    """
    numbers = key.private_numbers()
    n, d = numbers.public_numbers.n, numbers.d
    mod_bits = n.bit_length()
    em_bits = mod_bits - 1
    em_len = (em_bits + 7) // 8
    h_len = s_len = 32
    m_hash = hashlib.sha256(message).digest()
    salt = hashlib.sha256(b"lanyard-vectors-pss-salt:" + message).digest()
    h = hashlib.sha256(b"\x00" * 8 + m_hash + salt).digest()
    db = b"\x00" * (em_len - s_len - h_len - 2) + b"\x01" + salt
    masked = bytes(a ^ b for a, b in zip(db, _mgf1_sha256(h, em_len - h_len - 1)))
    masked = bytes([masked[0] & (0xFF >> (8 * em_len - em_bits))]) + masked[1:]
    em = masked + h + b"\xbc"
    sig = pow(int.from_bytes(em, "big"), d, n).to_bytes((mod_bits + 7) // 8, "big")
    key.public_key().verify(
        sig, message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()
    )
    return sig


def sign(alg: str, key, message: bytes) -> bytes:
    """key is a JWK dict (asymmetric algs) or raw bytes (HS256)."""
    if alg == "HS256":
        return hmac.new(key, message, hashlib.sha256).digest()
    priv = private_key(key)
    if alg == "ES256":
        der = priv.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS: raw r||s
    if alg == "RS256":
        return priv.sign(message, padding.PKCS1v15(), hashes.SHA256())
    if alg == "PS256":
        return pss_sha256_sign_deterministic(priv, message)
    if alg == "EdDSA":
        return priv.sign(message)
    raise ValueError(alg)


def verify_sig(alg: str, jwk: dict, message: bytes, sig: bytes) -> bool:
    try:
        pub = public_key(jwk)
        if alg == "ES256":
            if not isinstance(pub, ec.EllipticCurvePublicKey) or len(sig) != 64:
                return False
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            pub.verify(der, message, ec.ECDSA(hashes.SHA256()))
        elif alg == "RS256":
            if not isinstance(pub, rsa.RSAPublicKey):
                return False
            pub.verify(sig, message, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256":
            if not isinstance(pub, rsa.RSAPublicKey):
                return False
            pub.verify(sig, message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
        elif alg == "EdDSA":
            if not isinstance(pub, ed25519.Ed25519PublicKey):
                return False
            pub.verify(sig, message)
        else:
            return False
        return True
    except (InvalidSignature, ValueError):
        return False


def jws(header=None, payload=None, *, key=None, alg=None, raw_header=None, raw_payload=None,
        header_segment=None, payload_segment=None, signature=None) -> str:
    """Build a compact JWS.  Header/payload are dicts (serialized with cjson),
    raw JSON text (raw_*), or ready-made base64url segments (*_segment)."""
    if header_segment is None:
        header_segment = b64u(raw_header.encode() if raw_header is not None else cjson(header))
    if payload_segment is None:
        payload_segment = b64u(raw_payload.encode() if raw_payload is not None else cjson(payload))
    signing_input = header_segment + "." + payload_segment
    if signature is None:
        if alg is None:
            if header is not None:
                alg = header["alg"]
            elif raw_header is not None:
                alg = json.loads(raw_header)["alg"]
            else:
                alg = decode_part(header_segment)["alg"]
        signature = sign(alg, key, signing_input.encode("ascii"))
    return signing_input + "." + b64u(signature)


# --------------------------------------------------------------------------
# Identifier reference parser (the classification order of WorkloadId::parse)
# --------------------------------------------------------------------------
TD_CHARS = set(b"abcdefghijklmnopqrstuvwxyz0123456789._-")
SPIFFE_PATH_CHARS = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
WIMSE_PATH_CHARS = SPIFFE_PATH_CHARS | {ord("~")}


def ref_parse_id(text: str):
    """Return ("ok", scheme, trust_domain, path) or ("err", kind)."""
    raw = text.encode("utf-8")
    if not raw:
        return ("err", "empty")
    if len(raw) > MAX_ID_BYTES:
        return ("err", "too_long")
    if text.startswith("spiffe://"):
        scheme, rest = "spiffe", text[len("spiffe://"):]
    elif text.startswith("wimse://"):
        scheme, rest = "wimse", text[len("wimse://"):]
    else:
        return ("err", "scheme")
    if "#" in rest:
        return ("err", "fragment")
    if "?" in rest:
        return ("err", "query")
    slash = rest.find("/")
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    if authority == "":
        return ("err", "trust_domain_missing")
    if "@" in authority:
        return ("err", "userinfo")
    if ":" in authority:
        return ("err", "port")
    if "%" in authority:
        return ("err", "percent_encoding")
    td_bytes = authority.encode("utf-8")
    if len(td_bytes) > MAX_TD_BYTES:
        return ("err", "trust_domain_too_long")
    if any(b not in TD_CHARS for b in td_bytes):
        return ("err", "trust_domain_char")
    if scheme == "wimse":
        if authority.endswith("."):
            return ("err", "trust_domain_trailing_dot")
        labels = authority.split(".")
        if len(labels) == 4 and all(lab and lab.isdigit() for lab in labels):
            return ("err", "ip_trust_domain")
    if path == "":
        if scheme == "wimse":
            return ("err", "empty_path")
        return ("ok", scheme, authority, "")
    allowed = WIMSE_PATH_CHARS if scheme == "wimse" else SPIFFE_PATH_CHARS
    segments = path[1:].split("/")
    for i, seg in enumerate(segments):
        if seg == "":
            return ("err", "trailing_slash" if i == len(segments) - 1 else "empty_segment")
        if seg in (".", ".."):
            return ("err", "dot_segment")
        if "%" in seg:
            return ("err", "percent_encoding")
        if any(b not in allowed for b in seg.encode("utf-8")):
            return ("err", "path_char")
    return ("ok", scheme, authority, path)


def fill_to(prefix: str, total: int, unit: str = "a" * 63 + "/") -> str:
    """prefix + path body of exactly `total` bytes made of valid segments."""
    need = total - len(prefix)
    body = (unit * (need // len(unit) + 1))[:need]
    if body.endswith("/"):
        body = body[:-2] + "bb"
    assert len(prefix + body) == total and "//" not in body
    return prefix + body


TD_255 = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 63])  # 255 bytes
TD_256 = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 62, "e"])  # 256 bytes
assert len(TD_255) == 255 and len(TD_256) == 256

# (id, input, expected error or None, why)
SPIFFE_ID_CASES = [
    # ---- verbatim: spiffe.md Appendix B (go-spiffe spiffeid/id_test.go) ----
    ("b-td-only", "spiffe://trustdomain", None,
     "A trust-domain SPIFFE ID has an empty path, which SPIFFE allows."),
    ("b-simple-path", "spiffe://trustdomain/path", None, "Minimal SPIFFE ID with one path segment."),
    ("b-dot-prefixed-segment", "spiffe://trustdomain/.path", None,
     "'.path' is an ordinary segment; only '.' and '..' are dot segments."),
    ("b-dotdot-prefixed-segment", "spiffe://trustdomain/..path", None,
     "'..path' is an ordinary segment; only '.' and '..' are dot segments."),
    ("b-triple-dot-segment", "spiffe://trustdomain/...", None,
     "'...' is an ordinary segment; only '.' and '..' are dot segments."),
    ("b-empty", "", "empty", "The empty string is not an identifier."),
    ("b-scheme-s", "s", "scheme", "Input does not start with 'spiffe://'."),
    ("b-scheme-one-slash", "spiffe:/", "scheme", "'spiffe:/' lacks the '//' of the required 'spiffe://' prefix."),
    ("b-scheme-capitalised", "Spiffe://", "scheme", "The scheme prefix is matched case-sensitively; 'Spiffe://' is not 'spiffe://'."),
    ("b-td-missing", "spiffe://", "trust_domain_missing", "Nothing follows the scheme, so the trust domain is empty."),
    ("b-td-missing-slash", "spiffe:///", "trust_domain_missing", "The authority before the first '/' is empty."),
    ("b-trailing-slash-root", "spiffe://trustdomain/", "trailing_slash",
     "A lone '/' is a trailing slash, not a trust-domain ID."),
    ("b-trailing-slash-path", "spiffe://trustdomain/path/", "trailing_slash", "Paths must not end with '/'."),
    ("b-empty-segment-root", "spiffe://trustdomain//", "empty_segment",
     "The first of the two empty segments is not the last one, so it is an empty segment."),
    ("b-empty-segment-path", "spiffe://trustdomain//path", "empty_segment", "'//' creates an empty segment."),
    ("b-dot-segment-only", "spiffe://trustdomain/.", "dot_segment", "'.' is a dot segment."),
    ("b-dot-segment-leading", "spiffe://trustdomain/./path", "dot_segment", "'.' is a dot segment."),
    ("b-dot-segment-middle", "spiffe://trustdomain/path/./other", "dot_segment", "'.' is a dot segment."),
    ("b-dotdot-segment-trailing", "spiffe://trustdomain/path/..", "dot_segment", "'..' is a dot segment."),
    ("b-dotdot-segment-only", "spiffe://trustdomain/..", "dot_segment", "'..' is a dot segment."),
    ("b-dotdot-segment-leading", "spiffe://trustdomain/../path", "dot_segment", "'..' is a dot segment."),
    ("b-dotdot-segment-middle", "spiffe://trustdomain/path/../other", "dot_segment", "'..' is a dot segment."),
    ("b-td-percent-emoji", "spiffe://%F0%9F%A4%AF/path", "percent_encoding",
     "Percent-encoded trust domain; go-spiffe calls it a bad trust-domain character, Lanyard's order tests '%' first."),
    ("b-td-percent-ascii", "spiffe://%62%61%64/path", "percent_encoding",
     "Percent-encoding of 'bad' in the trust domain is never decoded; '%' is checked before the character set."),
    ("b-path-percent", "spiffe://trustdomain/%62%61%64", "percent_encoding",
     "Percent-encoded path segment; go-spiffe calls it a bad path character, Lanyard reports percent_encoding."),
    ("b-td-dollar", "spiffe://trust$domain", "trust_domain_char", "'$' is outside [a-z0-9._-]."),
    ("b-path-dollar", "spiffe://trustdomain/path$", "path_char", "'$' is outside [A-Za-z0-9._-]."),
    # Appendix B row "TD byte not in [a-z0-9._-] (incl. A-Z, :, @, >=0x80)", one case per class
    ("b-td-uppercase", "spiffe://TrustDomain/path", "trust_domain_char",
     "Uppercase trust domains are non-canonical and rejected (go-spiffe strict mode), never lowercased."),
    ("b-td-colon-port", "spiffe://trustdomain:8080/path", "port", "':' in the authority is a port."),
    ("b-td-at-userinfo", "spiffe://user@trustdomain/path", "userinfo", "'@' in the authority is userinfo."),
    ("b-td-non-ascii", "spiffe://trustd\u00f6main/path", "trust_domain_char",
     "Non-ASCII bytes (UTF-8 of U+00F6) are outside [a-z0-9._-]."),
    # Appendix B row "path byte not in [A-Za-z0-9._-] (incl. ?, #, %, :, @)", one case per class
    ("b-path-question", "spiffe://trustdomain/pa?th", "query", "'?' starts a query, which is forbidden."),
    ("b-path-hash", "spiffe://trustdomain/pa#th", "fragment", "'#' starts a fragment, which is forbidden."),
    ("b-path-percent-lone", "spiffe://trustdomain/pa%th", "percent_encoding", "Any '%' in a segment is percent_encoding."),
    ("b-path-colon", "spiffe://trustdomain/pa:th", "path_char", "':' is outside [A-Za-z0-9._-]."),
    ("b-path-at", "spiffe://trustdomain/pa@th", "path_char", "'@' after the first '/' is a path byte, outside [A-Za-z0-9._-]."),
    ("b-path-non-ascii", "spiffe://trustdomain/p\u00e4th", "path_char", "Non-ASCII path bytes are outside [A-Za-z0-9._-]."),
    # ---- verbatim: wimse.md A.7 SPIFFE examples (draft-ietf-wimse-identifier §4) and the A.6 sub ----
    ("a7-incubation-analytics", "spiffe://incubation.example.org/ns/experimental/analytics/ingest", None,
     "Valid SPIFFE example from the identifier draft."),
    ("a7-prod-uuid", "spiffe://prod.trust.domain/89a6ec51-f877-44c0-9501-b213597f2d1d", None,
     "Valid SPIFFE example from the identifier draft."),
    ("a7-prod-k8s-sa", "spiffe://prod.trust.domain/ns/prod-01/sa/foo-service", None,
     "Valid SPIFFE example from the identifier draft."),
    ("a7-prod-k8s-sa-instance", "spiffe://prod.trust.domain/ns/prod-01/sa/foo-service/iid-1f814646-87b5-4e26-bb55-1d13caccdd8d",
     None, "Valid SPIFFE example from the identifier draft."),
    ("a7-prod-sha256", "spiffe://prod.trust.domain/foo-service/sha256/c4dbb1a06030e142cb0ed4be61421967618289a19c0c7760bdd745ac67779ca7",
     None, "Valid SPIFFE example from the identifier draft."),
    ("a7-origin-prod", "spiffe://prod.trust.domain", None,
     "The draft's Origin example is also a valid SPIFFE trust-domain ID (empty path)."),
    ("a6-my-workload", "spiffe://example.com/my-workload", None, "The sub of the A.6 WIT-SVID."),
    # ---- generated ----
    ("g-max-length-2048", fill_to("spiffe://example.org/", 2048), None,
     "Exactly 2048 bytes, the length every implementation must support."),
    ("g-too-long-2049", fill_to("spiffe://example.org/", 2049), "too_long", "2049 bytes exceeds the 2048-byte limit."),
    ("g-too-long-before-scheme", "x" * 2049, "too_long", "Length is checked before the scheme."),
    ("g-td-255", "spiffe://" + TD_255 + "/svc", None, "A 255-byte trust domain is the maximum allowed."),
    ("g-td-256", "spiffe://" + TD_256 + "/svc", "trust_domain_too_long", "A 256-byte trust domain exceeds the 255-byte limit."),
    ("g-ipv4-td", "spiffe://192.0.2.1/svc", None, "SPIFFE allows IPv4 dotted-quad trust domains and does not treat them specially."),
    ("g-uppercase-path", "spiffe://example.org/Path/UPPER_case-1.2", None, "Paths are case-sensitive and may contain uppercase letters."),
    ("g-tilde-path", "spiffe://example.org/~svc", "path_char", "'~' is allowed in wimse paths but not in the SPIFFE path set [A-Za-z0-9._-]."),
    ("g-td-underscore", "spiffe://my_trust-domain.example/svc", None, "'_' and '-' are legal trust-domain characters."),
    ("g-td-trailing-dot", "spiffe://example.org./svc", None,
     "The trailing-dot rule is wimse-only; '.' is a legal SPIFFE trust-domain character."),
    ("g-scheme-uppercase", "SPIFFE://example.org/svc", "scheme", "The scheme prefix must be lowercase."),
    ("g-scheme-https", "https://example.org/svc", "scheme", "Only spiffe:// and wimse:// are accepted."),
    ("g-fragment-before-query", "spiffe://example.org/svc?x=1#f", "fragment", "'#' is checked before '?'."),
    ("g-query-without-path", "spiffe://example.org?x=1", "query", "The query check runs before the authority is split off."),
    ("g-userinfo-before-port", "spiffe://user:pw@example.org/svc", "userinfo", "'@' is checked before ':'."),
    ("g-ipv6-td", "spiffe://[2001:db8::1]/svc", "port",
     "IPv6 literals contain ':' and the port check precedes the character check."),
    ("g-path-space", "spiffe://example.org/a b", "path_char", "A space is outside [A-Za-z0-9._-]."),
    ("g-dot-before-trailing-slash", "spiffe://example.org/a/./", "dot_segment",
     "Segments are scanned left to right, so the '.' segment is reported before the trailing slash."),
]

WIMSE_ID_CASES = [
    # ---- verbatim: wimse.md A.7 (draft-ietf-wimse-identifier §4) ----
    ("a7-corp-workload-uuid", "wimse://trust.corp.example.com/workload/af3e86cb-7013-4e33-b717-11c4edd25679", None,
     "Valid example from the identifier draft."),
    ("a7-service-payment", "wimse://trust.example.com/service/payment", None, "Valid example from the identifier draft."),
    ("a7-service-payment-instance", "wimse://trust.example.com/service/payment/instance/1234", None,
     "Valid example from the identifier draft."),
    ("a7-prod-corp-workload", "wimse://prod.corp.example/workload/89a6ec51-f877-44c0-9501-b213597f2d1d", None,
     "Valid example from the identifier draft."),
    ("a1-specific-workload", "wimse://example.com/specific-workload", None, "The sub of the A.1 WIT."),
    ("a4-svc-a", "wimse://example.com/svcA", None, "The sub of the A.4 request WIT; uppercase is fine in paths."),
    ("a4-svc-b", "wimse://example.com/svcB", None, "The sub of the A.4 response WIT."),
    ("a7-reject-percent-path", "wimse://trust.example/service/%70ayment", "percent_encoding",
     "The draft's own attack example: '%70ayment' must not be decoded to 'payment'."),
    ("a7-reject-origin-empty-path", "wimse://trust.example.com", "empty_path",
     "A wimse identifier needs a non-empty path; this is an Origin (WGLC #337)."),
    ("a7-origin-corp", "wimse://trust.corp.example.com", "empty_path",
     "The Workload Identifier Origin from the draft is not an identifier."),
    ("a7-reject-uppercase-td", "wimse://Trust.Example.com/svc", "trust_domain_char",
     "Uppercase trust domain is non-canonical and must be rejected, not lowercased."),
    ("a7-reject-uppercase-scheme", "WIMSE://trust.example.com/svc", "scheme", "The scheme prefix must be lowercase 'wimse://'."),
    ("a7-reject-td-trailing-dot", "wimse://trust.example.com./svc", "trust_domain_trailing_dot",
     "A wimse trust domain must not end with '.'."),
    ("a7-reject-port", "wimse://trust.example.com:8443/svc", "port", "Ports are forbidden."),
    ("a7-reject-userinfo", "wimse://user@trust.example.com/svc", "userinfo", "Userinfo is forbidden."),
    ("a7-reject-query", "wimse://trust.example.com/svc?x=1", "query", "Queries are forbidden."),
    ("a7-reject-fragment", "wimse://trust.example.com/svc#f", "fragment", "Fragments are forbidden."),
    ("a7-reject-trailing-slash", "wimse://trust.example.com/svc/", "trailing_slash", "Paths must not end with '/'."),
    ("a7-reject-empty-segment", "wimse://trust.example.com//svc", "empty_segment", "'//' creates an empty segment."),
    ("a7-reject-dot-segment", "wimse://trust.example.com/a/../b", "dot_segment", "'..' segments are forbidden, never resolved."),
    ("a7-reject-ip-td", "wimse://192.0.2.1/svc", "ip_trust_domain", "IP-address trust domains must not be used in wimse."),
    # ---- generated ----
    ("g-tilde-path", "wimse://example.com/~user/svc", None, "'~' is RFC 3986 unreserved and allowed in wimse paths."),
    ("g-tilde-only-segment", "wimse://example.com/~", None, "A segment consisting of '~' is valid in wimse."),
    ("g-uppercase-path", "wimse://example.com/Service/Payment", None, "Paths are case-sensitive and may contain uppercase."),
    ("g-dot-prefixed-segment", "wimse://example.com/.well-known", None, "'.well-known' is not a dot segment."),
    ("g-td-underscore", "wimse://trust_domain.example/svc", None, "'_' is a legal wimse trust-domain character."),
    ("g-digit-labels-not-ip", "wimse://192.0.2.example/svc", None,
     "Only four all-digit labels make an IPv4 trust domain; this one has a letter label."),
    ("g-max-length-2048", fill_to("wimse://example.com/", 2048), None, "Exactly 2048 bytes is allowed."),
    ("g-too-long-2049", fill_to("wimse://example.com/", 2049), "too_long", "2049 bytes exceeds the 2048-byte limit."),
    ("g-td-255", "wimse://" + TD_255 + "/svc", None, "A 255-byte trust domain is the maximum allowed."),
    ("g-td-256", "wimse://" + TD_256 + "/svc", "trust_domain_too_long", "A 256-byte trust domain exceeds 255 bytes."),
    ("g-empty", "", "empty", "The empty string is not an identifier."),
    ("g-scheme-mixed-case", "Wimse://example.com/svc", "scheme", "The scheme prefix is case-sensitive."),
    ("g-scheme-one-slash", "wimse:/example.com/svc", "scheme", "'wimse:/' is not the 'wimse://' prefix."),
    ("g-td-missing", "wimse://", "trust_domain_missing", "Nothing follows the scheme."),
    ("g-td-missing-with-path", "wimse:///svc", "trust_domain_missing", "The authority before the first '/' is empty."),
    ("g-root-slash", "wimse://trust.example.com/", "trailing_slash",
     "The path '/' is not empty, so empty_path does not apply; its only segment is an empty last segment."),
    ("g-td-percent", "wimse://tr%75st.example.com/svc", "percent_encoding", "Percent-encoding is forbidden in the trust domain."),
    ("g-td-non-ascii", "wimse://tr\u00fcst.example/svc", "trust_domain_char", "Non-ASCII bytes are outside [a-z0-9._-]."),
    ("g-td-dollar", "wimse://trust$.example/svc", "trust_domain_char", "'$' is outside [a-z0-9._-]."),
    ("g-dot-segment-single", "wimse://trust.example.com/./svc", "dot_segment", "'.' segments are forbidden."),
    ("g-dotdot-segment-last", "wimse://trust.example.com/svc/..", "dot_segment", "'..' segments are forbidden."),
    ("g-path-space", "wimse://trust.example.com/a b", "path_char", "A space is not an unreserved character."),
    ("g-path-colon", "wimse://trust.example.com/a:b", "path_char", "':' is not an unreserved character."),
    ("g-path-non-ascii", "wimse://trust.example.com/caf\u00e9", "path_char", "Non-ASCII bytes are not unreserved characters."),
    ("g-ip-private", "wimse://10.0.0.1/svc", "ip_trust_domain", "Any IPv4 dotted quad is rejected as a wimse trust domain."),
    ("g-ip-trailing-dot", "wimse://192.0.2.1./svc", "trust_domain_trailing_dot", "The trailing-dot check runs before the IPv4 check."),
    ("g-ipv6-td", "wimse://[2001:db8::1]/svc", "port", "IPv6 literals contain ':' and the port check precedes the character check."),
    ("g-empty-query", "wimse://trust.example.com/svc?", "query", "Even an empty query is forbidden."),
    ("g-empty-fragment", "wimse://trust.example.com/svc#", "fragment", "Even an empty fragment is forbidden."),
    ("g-spiffe-tilde-contrast", "wimse://example.org/~svc", None, "Same path as the SPIFFE g-tilde-path case, valid under wimse."),
]


def build_id_file(cases, source):
    out, seen = [], set()
    for cid, text, err, why in cases:
        assert cid not in seen, cid
        seen.add(cid)
        res = ref_parse_id(text)
        if err is None:
            assert res[0] == "ok", (cid, res)
            out.append({"id": cid, "input": text, "valid": True, "trust_domain": res[2], "path": res[3], "why": why})
        else:
            assert res == ("err", err), (cid, res, err)
            out.append({"id": cid, "input": text, "valid": False, "error": err, "why": why})
    return {"source": source, "cases": out}


# --------------------------------------------------------------------------
# Token cases
# --------------------------------------------------------------------------
BASES = {}  # case id -> id of the valid case it was derived from (for --explain)


def wit_case(cid, why, token, *, td, anchors, now, profile="wimse", error=None, claims=None, kind="wit", base=None):
    case = {"id": cid, "why": why, "kind": kind, "token": token, "trust_domain": td, "anchors": anchors,
            "profile": profile, "now": now}
    if error is None:
        case["expect"] = "valid"
        case["claims"] = claims
    else:
        case["expect"] = "error"
        case["error"] = error
    if base and error is not None:
        BASES[cid] = base
    return case


def build_wit_cases(keys):
    j5 = keys["issuer-june5"]
    a1_h_seg, a1_p_seg, a1_s_seg = A1_WIT.split(".")
    a1_h, a1_p = decode_part(a1_h_seg), decode_part(a1_p_seg)
    # the generator re-serializes exactly like the spec's go-jose generator
    assert b64u(cjson(a1_h)) == a1_h_seg and b64u(cjson(a1_p)) == a1_p_seg

    def a1(cid, why, token, error=None, *, now=A1_NOW, anchors=("issuer-june5",), claims=None):
        return wit_case(cid, why, token, td="example.com", anchors=list(anchors), now=now, error=error,
                        claims=claims, base="a1-wit")

    def a1_resigned(header_changes=None, payload_changes=None, drop_header=(), drop_payload=()):
        h, p = copy.deepcopy(a1_h), copy.deepcopy(a1_p)
        h.update(header_changes or {})
        p.update(payload_changes or {})
        for k in drop_header:
            del h[k]
        for k in drop_payload:
            del p[k]
        return h, p

    def signed(h, p, key=j5):
        return jws(h, p, key=key)

    cases = []
    cases.append(a1("a1-wit", "The A.1 example WIT, verbatim, inside its validity window.", A1_WIT, claims=a1_p))
    cases.append(a1("a1-wit-exp-within-leeway", "A.1 WIT 30 s after exp: still inside the 60 s clock-skew leeway.",
                    A1_WIT, now=a1_p["exp"] + 30, claims=a1_p))
    cases.append(a1("a1-wit-expired", "A.1 WIT 61 s after exp, beyond the 60 s leeway.", A1_WIT, "expired",
                    now=a1_p["exp"] + LEEWAY + 1))
    cases.append(wit_case("a5-legacy-wit-typ", "Validly signed -05/-06 WIT whose typ is the old 'wimse-id+jwt'.",
                          A5_WIT, td="example.com", anchors=["issuer-june5-old"], now=A1_NOW, error="wrong_typ"))
    cases.append(a1("a1-wit-no-anchors", "A.1 WIT with no trust anchors configured for example.com.", A1_WIT,
                    "unknown_key", anchors=()))
    h, p = a1_resigned({"kid": "June 6"})
    cases.append(a1("a1-wit-unknown-kid", "A.1 claims signed by the June 5 key but with kid 'June 6', which no anchor has.",
                    signed(h, p), "unknown_key"))
    cases.append(a1("a1-wit-attacker-signature",
                    "A.1 header and payload byte-for-byte, signed by an attacker's P-256 key while claiming kid 'June 5'.",
                    jws(header_segment=a1_h_seg, payload_segment=a1_p_seg, key=keys["attacker-es256"], alg="ES256"),
                    "bad_signature"))
    tampered = dict(a1_p, sub="wimse://example.com/admin-workload")
    cases.append(a1("a1-wit-tampered-sub", "A.1 payload with sub changed to another valid identifier, original signature kept.",
                    jws(header_segment=a1_h_seg, payload=tampered, signature=b64u_decode(a1_s_seg)), "bad_signature"))
    cases.append(a1("a1-wit-alg-none", "Unsigned token: header {\"alg\":\"none\",\"typ\":\"wit+jwt\"}, A.1 payload, empty signature.",
                    jws(raw_header='{"alg":"none","typ":"wit+jwt"}', payload_segment=a1_p_seg, signature=b""),
                    "alg_not_allowed"))
    h, p = a1_resigned({"alg": "HS256"})
    cases.append(a1("a1-wit-hs256-key-confusion",
                    "HS256 over the A.1 claims keyed with the June 5 public key's SPKI PEM bytes (classic RS/ES->HS confusion).",
                    jws(h, p, key=pem_of(j5)), "alg_not_allowed"))
    h, p = a1_resigned({"typ": "JWT"})
    cases.append(a1("a1-wit-typ-jwt", "A.1 re-signed with typ 'JWT' instead of 'wit+jwt'.", signed(h, p), "wrong_typ"))
    h, p = a1_resigned(drop_header=["typ"])
    cases.append(a1("a1-wit-typ-missing", "A.1 re-signed without a typ header.", signed(h, p), "wrong_typ"))
    h, p = a1_resigned({"typ": "at+jwt"})
    cases.append(a1("a1-wit-typ-access-token",
                    "A.1 re-signed with typ 'at+jwt': an explicit typ of another token type (RFC 9068 access token).",
                    signed(h, p), "typ_confusion"))
    h, p = a1_resigned({"typ": "application/wpt+jwt"})
    cases.append(a1("a1-wit-typ-wpt", "A.1 re-signed with typ 'application/wpt+jwt': a WPT-typed token where a WIT is expected.",
                    signed(h, p), "typ_confusion"))
    h, p = a1_resigned(payload_changes={"nbf": A1_NOW + 600})
    cases.append(a1("a1-wit-nbf-future", "A.1 re-signed with nbf 600 s after now (beyond the 60 s leeway).",
                    signed(h, p), "not_yet_valid"))
    h, p = a1_resigned(drop_payload=["exp"])
    cases.append(a1("a1-wit-missing-exp", "A.1 re-signed without exp.", signed(h, p), "missing_claim"))
    h, p = a1_resigned(drop_payload=["sub"])
    cases.append(a1("a1-wit-missing-sub", "A.1 re-signed without sub.", signed(h, p), "missing_claim"))
    h, p = a1_resigned(drop_payload=["cnf"])
    cases.append(a1("a1-wit-missing-cnf", "A.1 re-signed without cnf.", signed(h, p), "missing_claim"))
    h, p = a1_resigned()
    del p["cnf"]["jwk"]["alg"]
    cases.append(a1("a1-wit-cnf-jwk-no-alg", "A.1 re-signed with cnf.jwk lacking alg (REQUIRED).", signed(h, p), "missing_claim"))
    h, p = a1_resigned()
    p["cnf"]["jwk"]["alg"] = "none"
    cases.append(a1("a1-wit-cnf-alg-none", "A.1 re-signed with cnf.jwk.alg 'none'.", signed(h, p), "alg_not_allowed"))
    h, p = a1_resigned(payload_changes={"sub": "wimse://Example.com/x"})
    cases.append(a1("a1-wit-sub-uppercase-td", "A.1 re-signed with non-canonical sub 'wimse://Example.com/x'.",
                    signed(h, p), "invalid_identifier"))
    h, p = a1_resigned(payload_changes={"sub": "wimse://example.com/specific%2Dworkload"})
    cases.append(a1("a1-wit-sub-percent-encoded", "A.1 re-signed with sub 'wimse://example.com/specific%2Dworkload'.",
                    signed(h, p), "invalid_identifier"))
    h, p = a1_resigned(payload_changes={"exp": str(a1_p["exp"])})
    cases.append(a1("a1-wit-exp-string", "A.1 re-signed with exp as the JSON string \"1745512510\".", signed(h, p), "malformed"))
    raw_p = cjson(a1_p).decode()
    assert raw_p.endswith(',"sub":"wimse://example.com/specific-workload"}')
    raw_dup_sub = raw_p[:-1] + ',"sub":"wimse://example.com/other-workload"}'
    cases.append(a1("a1-wit-duplicate-sub",
                    "A.1 payload with a second, different \"sub\" member appended (parser-differential bait), validly signed.",
                    jws(raw_header=cjson(a1_h).decode(), raw_payload=raw_dup_sub, key=j5), "duplicate_member"))
    raw_dup_alg = '{"alg":"ES256","alg":"ES256","kid":"June 5","typ":"wit+jwt"}'
    cases.append(a1("a1-wit-duplicate-alg-header", "A.1 with \"alg\":\"ES256\" twice in the header, validly signed.",
                    jws(raw_header=raw_dup_alg, payload_segment=a1_p_seg, key=j5), "duplicate_member"))
    h, p = a1_resigned({"crit": ["exp"]})
    cases.append(a1("a1-wit-crit", "A.1 re-signed with header crit [\"exp\"], an extension no verifier understands.",
                    signed(h, p), "unknown_crit"))

    def padded(target):
        # A.1 header + A.1 claims + an ignorable private claim sized so the
        # token is exactly `target` bytes long.
        for k in range(target):
            p = dict(a1_p, **{"example.com/pad": "A" * k})
            length = len(a1_h_seg) + 1 + len(b64u(cjson(p))) + 1 + len(b64u(bytes(64)))
            if length == target:
                tok = jws(header_segment=a1_h_seg, payload=p, key=j5)
                assert len(tok) == target
                return tok, p
            if length > target:
                break
        raise AssertionError(target)

    tok, p = padded(MAX_TOKEN_BYTES)
    cases.append(a1("a1-wit-size-16384", "A.1 plus an ignorable padding claim, exactly 16384 bytes: at (not over) the 16 KiB limit.",
                    tok, claims={k: v for k, v in p.items() if k != "example.com/pad"}))
    tok, _ = padded(17 * 1024)
    cases.append(a1("a1-wit-too-large", "A.1 plus an ignorable padding claim, 17408 bytes (17 KiB), validly signed.",
                    tok, "too_large"))
    cases.append(a1("a1-wit-two-parts", "A.1 with the signature part removed (header.payload).",
                    a1_h_seg + "." + a1_p_seg, "malformed"))
    bad_seg = a1_p_seg[:10] + "*" + a1_p_seg[11:]
    cases.append(a1("a1-wit-bad-base64url", "A.1 with one payload character replaced by '*', outside the base64url alphabet.",
                    a1_h_seg + "." + bad_seg + "." + a1_s_seg, "malformed"))
    cases.append(a1("a1-wit-header-not-json", "Header segment is base64url of the text 'not json'; A.1 payload; signed.",
                    jws(header_segment=b64u(b"not json"), payload_segment=a1_p_seg, key=j5, alg="ES256"), "malformed"))
    cases.append(a1("a1-wit-payload-array", "Payload is a JSON array holding the A.1 claims object, validly signed.",
                    jws(a1_h, raw_payload="[" + raw_p + "]", key=j5), "malformed"))
    h, p = a1_resigned(payload_changes={"iat": A1_NOW, "exp": A1_NOW + 48 * 3600})
    cases.append(a1("a1-wit-lifetime-48h", "A.1 re-signed with iat = now and exp = now + 48 h (max WIT lifetime 24 h).",
                    signed(h, p), "lifetime_too_long"))
    h, p = a1_resigned(payload_changes={"iat": A1_NOW, "exp": A1_NOW + MAX_WIT_LIFETIME + 1})
    cases.append(a1("a1-wit-lifetime-24h-plus-1s",
                    "A.1 re-signed with exp = now + 24 h + 1 s: the leeway widens expiry checks, never the 24 h maximum.",
                    signed(h, p), "lifetime_too_long"))
    h, p = a1_resigned(payload_changes={"iat": A1_NOW, "exp": A1_NOW + MAX_WIT_LIFETIME})
    cases.append(a1("a1-wit-lifetime-24h", "A.1 re-signed with exp = now + 24 h exactly: at the maximum.",
                    signed(h, p), claims=p))
    h, p = a1_resigned(payload_changes={"iat": A1_NOW, "exp": A1_NOW + 23 * 3600})
    cases.append(a1("a1-wit-lifetime-23h", "A.1 re-signed with iat = now and exp = now + 23 h: under the 24 h maximum.",
                    signed(h, p), claims=p))

    # ---- Lanyard-issued WITs / WIT-SVIDs (SYN_NOW clock) ----
    es, rs, ed = keys["lanyard-es256"], keys["lanyard-rs256"], keys["lanyard-ed25519"]
    cnf_es = dict(public_jwk(keys["workload-es256"]))
    cnf_es.pop("kid")
    cnf_ed = dict(public_jwk(keys["workload-a1"]), alg="EdDSA")

    def claims(sub, cnf, label, **extra):
        c = {"sub": sub, "cnf": {"jwk": cnf}, "iat": SYN_NOW - 60, "exp": SYN_NOW + 3600, "jti": fake_jti(label)}
        c.update(extra)
        return c

    def lan(cid, why, token, error=None, *, anchors=("lanyard-es256",), profile="wit-svid", claims=None, base=None):
        return wit_case(cid, why, token, td="example.org", anchors=list(anchors), now=SYN_NOW, profile=profile,
                        error=error, claims=claims, base=base)

    svid_h = {"alg": "ES256", "kid": "lanyard-es256", "typ": "wit+jwt"}
    svid_p = claims("spiffe://example.org/svc", cnf_es, "wit-svid")
    cases.append(lan("lanyard-wit-svid-es256", "Lanyard ES256 WIT-SVID: kid, typ wit+jwt, spiffe sub, ES256 cnf key, no aud.",
                     jws(svid_h, svid_p, key=es), claims=svid_p))
    cases.append(lan("lanyard-wit-svid-aud", "The WIT-SVID with an aud claim added; WIT-SVIDs MUST NOT carry aud.",
                     jws(svid_h, dict(svid_p, aud=SVID_AUDIENCE), key=es), "forbidden_claim", base="lanyard-wit-svid-es256"))
    cases.append(lan("lanyard-wit-svid-no-kid", "The WIT-SVID re-signed without kid; kid is mandatory for WIT-SVIDs.",
                     jws({"alg": "ES256", "typ": "wit+jwt"}, svid_p, key=es), "missing_kid", base="lanyard-wit-svid-es256"))
    cases.append(lan("lanyard-wit-svid-eddsa-issuer", "WIT-SVID signed with EdDSA (anchor lanyard-ed25519); EdDSA is outside the WIT-SVID alg list.",
                     jws({"alg": "EdDSA", "kid": "lanyard-ed25519", "typ": "wit+jwt"}, svid_p, key=ed), "alg_not_allowed",
                     anchors=("lanyard-ed25519",), base="lanyard-wit-svid-es256"))
    p = claims("spiffe://example.org/svc", cnf_ed, "wit-svid")
    cases.append(lan("lanyard-wit-svid-cnf-eddsa", "WIT-SVID whose cnf.jwk.alg is EdDSA (like the WIMSE draft examples); not in the WIT-SVID list.",
                     jws(svid_h, p, key=es), "alg_not_allowed", base="lanyard-wit-svid-es256"))
    cases.append(lan("lanyard-wit-svid-trust-domain-sub",
                     "WIT-SVID whose sub is the trust-domain ID spiffe://example.org: it names no workload (a workload ID needs a path).",
                     jws(svid_h, dict(svid_p, sub="spiffe://example.org"), key=es), "invalid_identifier",
                     base="lanyard-wit-svid-es256"))
    cases.append(lan("lanyard-wit-wimse-profile-trust-domain-sub",
                     "WIMSE-profile WIT whose sub is the trust-domain ID spiffe://example.org: refused under the WIMSE profile too.",
                     jws(svid_h, dict(svid_p, sub="spiffe://example.org"), key=es), "invalid_identifier", profile="wimse",
                     base="lanyard-wit-svid-es256"))
    cases.append(lan("lanyard-wit-svid-wimse-sub", "WIT-SVID whose sub is the valid wimse identifier wimse://example.org/svc; WIT-SVID sub must be a SPIFFE ID.",
                     jws(svid_h, dict(svid_p, sub="wimse://example.org/svc"), key=es), "invalid_identifier",
                     base="lanyard-wit-svid-es256"))
    p = claims("wimse://example.org/svc-rs", cnf_es, "wit-rs256")
    cases.append(lan("lanyard-wit-rs256", "WIMSE-profile WIT signed RS256 by lanyard-rs256, ES256 cnf key.",
                     jws({"alg": "RS256", "kid": "lanyard-rs256", "typ": "wit+jwt"}, p, key=rs), anchors=("lanyard-rs256",),
                     profile="wimse", claims=p))
    cases.append(lan("lanyard-wit-ps256-under-rs256-key",
                     "Same claims signed PS256 with the lanyard-rs256 key; the anchor's alg member is RS256.",
                     jws({"alg": "PS256", "kid": "lanyard-rs256", "typ": "wit+jwt"}, p, key=rs), "alg_mismatch",
                     anchors=("lanyard-rs256",), profile="wimse", base="lanyard-wit-rs256"))
    p = claims("wimse://example.org/svc-ed", cnf_ed, "wit-eddsa")
    cases.append(lan("lanyard-wit-eddsa", "WIMSE-profile WIT signed EdDSA by lanyard-ed25519, EdDSA cnf key.",
                     jws({"alg": "EdDSA", "kid": "lanyard-ed25519", "typ": "wit+jwt"}, p, key=ed), anchors=("lanyard-ed25519",),
                     profile="wimse", claims=p))
    p = claims("wimse://example.org/svc-es", cnf_es, "wit-es256-nokid")
    cases.append(lan("lanyard-wit-es256-no-kid-single-anchor",
                     "WIMSE-profile WIT without kid; kid is optional in WIMSE and the single anchor makes key selection unambiguous.",
                     jws({"alg": "ES256", "typ": "wit+jwt"}, p, key=es), profile="wimse", claims=p))
    p = claims("wimse://other.example/svc-es", cnf_es, "wit-es256-nokid")
    cases.append(lan("lanyard-wit-foreign-trust-domain",
                     "Validly signed by lanyard-es256, but sub is in other.example while anchors are only configured for example.org.",
                     jws({"alg": "ES256", "typ": "wit+jwt"}, p, key=es), "unknown_key",
                     profile="wimse", base="lanyard-wit-es256-no-kid-single-anchor"))

    # ---- decode-only vectors (issuer keys unpublished) ----
    for cid, tok, why, profile in [
        ("a6-wit-svid-decode", A6_WIT_SVID, "SPIFFE WIT-SVID.md Appendix A example; issuer key unpublished, decode only.", "wit-svid"),
        ("a4-request-wit-decode", A4_REQUEST_WIT, "svc-a WIT from the http-signature-06 signed request; issuer key unpublished.", "wimse"),
        ("a4-response-wit-decode", A4_RESPONSE_WIT, "svc-b WIT from the http-signature-06 signed response; issuer key unpublished.", "wimse"),
        ("a4b-request-wit-decode", A4B_REQUEST_WIT, "svc-a WIT from the http-signature-05 signed request; issuer key unpublished.", "wimse"),
        ("a4b-response-wit-decode", A4B_RESPONSE_WIT, "svc-b WIT from the http-signature-05 signed response; issuer key unpublished.", "wimse"),
    ]:
        payload = decode_part(tok.split(".")[1])
        td = ref_parse_id(payload["sub"])[2]
        cases.append(wit_case(cid, why, tok, td=td, anchors=[], now=payload["iat"] + 1, profile=profile,
                              claims=payload, kind="decode"))
    return cases


def wpt_case(cid, why, *, wit=None, wpt=None, audience=A3_AUDIENCE, access_token=None, txn_token=None, other_tokens=None,
             td="example.com", anchors=("issuer-june5",), now=A3_NOW, error=None, claims=None, base=None, compat=None,
             request=None):
    """A WIT+WPT pair (kind wit+wpt) or, with `request`, a whole request's headers (kind wpt-request).

    `compat="wpt-01"` runs the case with the draft-ietf-wimse-wpt-01 compatibility switch on
    (the legacy header and an ath-bound access token are accepted); without it, the -02 rules.
    """
    if request is None:
        case = {"id": cid, "why": why, "kind": "wit+wpt", "wit": wit, "wpt": wpt, "audience": audience}
    else:
        case = {"id": cid, "why": why, "kind": "wpt-request", "request": request, "audience": audience}
    if compat is not None:
        case["compat"] = compat
    if access_token is not None:
        case["access_token"] = access_token
    if txn_token is not None:
        case["txn_token"] = txn_token
    if other_tokens is not None:
        case["other_tokens"] = other_tokens
    case.update({"trust_domain": td, "anchors": list(anchors), "profile": "wimse", "now": now})
    if error is None:
        case["expect"] = "valid"
        case["claims"] = claims
    else:
        case["expect"] = "error"
        case["error"] = error
    if base and error is not None:
        BASES[cid] = base
    return case


TXN_TOKEN = "txn_7Hq2xKp9sLm4Nw8Zr1VbT3cY"
CTX_VALUE = "ctx-5f1e7a2b9c"


def build_wpt_cases(keys):
    wk = keys["workload-a1"]
    a3_p = decode_part(A3_WPT.split(".")[1])
    w01 = "wpt-01"
    cases = [
        wpt_case("a3-wpt", "The A.1 WIT with the A.3 WPT and the A.3 request's bearer access token, verbatim (wpt-01 rules).",
                 wit=A1_WIT, wpt=A3_WPT, access_token=A3_ACCESS_TOKEN, claims=a3_p, compat=w01),
        wpt_case("a3-wpt-no-access-token",
                 "A.3 WPT (has ath) but the request carries no access token; defined as ath_mismatch (ath binds a token that is absent).",
                 wit=A1_WIT, wpt=A3_WPT, error="ath_mismatch", base="a3-wpt", compat=w01),
        wpt_case("a3-wpt-wrong-access-token", "A.3 WPT but the request's access token differs in its last character.",
                 wit=A1_WIT, wpt=A3_WPT, access_token=A3_ACCESS_TOKEN[:-1] + "1", error="ath_mismatch", base="a3-wpt",
                 compat=w01),
        wpt_case("a3-wpt-wrong-audience", "A.3 pair verified by a recipient whose target URI is https://workload.example.com/other.",
                 wit=A1_WIT, wpt=A3_WPT, access_token=A3_ACCESS_TOKEN, audience="https://workload.example.com/other",
                 error="wrong_audience", base="a3-wpt", compat=w01),
        wpt_case("a3-wpt-expired", "A.3 pair 61 s after the WPT exp (the WIT is still valid).",
                 wit=A1_WIT, wpt=A3_WPT, access_token=A3_ACCESS_TOKEN, now=a3_p["exp"] + LEEWAY + 1,
                 error="expired", base="a3-wpt", compat=w01),
        wpt_case("a5-legacy-wpt", "Validly signed -05/-06 WIT+WPT pair (typ wimse-id+jwt / wimse-proof+jwt); the WIT fails first.",
                 wit=A5_WIT, wpt=A5_WPT, access_token=A3_ACCESS_TOKEN, anchors=("issuer-june5-old",), now=A1_NOW,
                 error="wrong_typ", compat=w01),
        # draft-ietf-wimse-wpt-02 (the default rules): no access token beside a WPT, no ath.
        wpt_case("wpt02-a3-with-bearer",
                 "The A.3 WPT and its bearer access token under the -02 rules: a WPT beside a Bearer token is refused before anything else.",
                 wit=A1_WIT, wpt=A3_WPT, access_token=A3_ACCESS_TOKEN, error="access_token_with_wpt", base="a3-wpt"),
        wpt_case("wpt02-a3-ath",
                 "The A.3 WPT alone under the -02 rules: it still carries ath, which binds a bearer token -02 forbids; refused.",
                 wit=A1_WIT, wpt=A3_WPT, error="forbidden_claim", base="a3-wpt"),
    ]

    wpt_h = {"alg": "EdDSA", "typ": "wpt+jwt"}

    def base_claims(label, **extra):
        c = {"aud": A3_AUDIENCE, "exp": A3_NOW + 120, "jti": fake_jti(label), "wth": sha256_b64u(A1_WIT)}
        c.update(extra)
        return c

    def syn(cid, why, claims_, *, header=wpt_h, key=wk, error=None, base="wpt-minimal", raw_payload=None, **kw):
        tok = jws(header, claims_, key=key, raw_payload=raw_payload) if raw_payload else jws(header, claims_, key=key)
        return wpt_case(cid, why, wit=A1_WIT, wpt=tok, error=error, claims=None if error else claims_,
                        base=None if base == cid else base, **kw)

    c0 = base_claims("wpt-minimal")
    cases.append(syn("wpt-minimal", "Lanyard WPT for the A.1 WIT signed with the A.1 workload key: aud, exp = now+120, jti, wth; no extra tokens.",
                     c0, base="wpt-minimal"))
    cases.append(syn("wpt-wth-other-wit", "wth is the hash of the A.5 legacy WIT, not of the presented A.1 WIT.",
                     dict(c0, wth=sha256_b64u(A5_WIT)), error="wth_mismatch"))
    for claim in ("wth", "jti", "aud", "exp"):
        cases.append(syn(f"wpt-missing-{claim}", f"The minimal WPT without {claim}.",
                         {k: v for k, v in c0.items() if k != claim}, error="missing_claim"))
    cases.append(syn("wpt-alg-es256-vs-cnf-eddsa",
                     "WPT with header alg ES256, signed with a P-256 key, while the WIT cnf.jwk.alg is EdDSA (alg is compared before the signature).",
                     c0, header={"alg": "ES256", "typ": "wpt+jwt"}, key=keys["attacker-es256"], error="alg_mismatch"))
    cases.append(syn("wpt-wrong-ed25519-key", "EdDSA WPT signed by lanyard-ed25519 instead of the WIT's cnf key.",
                     c0, key=keys["lanyard-ed25519"], error="bad_signature"))
    cases.append(syn("wpt-lifetime-1h", "WPT exp = now + 3600 (max WPT lifetime 300 s).",
                     dict(c0, exp=A3_NOW + 3600), error="lifetime_too_long"))
    cases.append(syn("wpt-lifetime-301s", "WPT exp = now + 301: one second over the 300 s maximum (the leeway is not added to it).",
                     dict(c0, exp=A3_NOW + MAX_WPT_LIFETIME + 1), error="lifetime_too_long"))
    c = dict(c0, exp=A3_NOW + MAX_WPT_LIFETIME, jti=fake_jti("wpt-lifetime-300s"))
    cases.append(syn("wpt-lifetime-300s", "WPT exp = now + 300: exactly the maximum.", c))
    cases.append(syn("wpt-typ-wit", "WPT signed with typ 'wit+jwt', i.e. a WIT-typed token where a WPT is expected.",
                     c0, header={"alg": "EdDSA", "typ": "wit+jwt"}, error="typ_confusion"))
    cases.append(syn("wpt-typ-dpop", "WPT claims signed with typ 'dpop+jwt' (a DPoP proof's typ).",
                     c0, header={"alg": "EdDSA", "typ": "dpop+jwt"}, error="typ_confusion"))
    cases.append(syn("wpt-typ-unknown", "WPT signed with typ 'wimse-proof+jwt', the s2s-05/-06 spelling, which no type has now.",
                     c0, header={"alg": "EdDSA", "typ": "wimse-proof+jwt"}, error="wrong_typ"))
    cases.append(syn("wpt-typ-missing", "WPT without a typ header.", c0, header={"alg": "EdDSA"}, error="wrong_typ"))
    cases.append(syn("wpt-typ-media-type",
                     "typ 'application/wpt+jwt': RFC 7515 4.1.9 lets the 'application/' prefix be omitted, so both spellings are accepted.",
                     c0, header={"alg": "EdDSA", "typ": "application/wpt+jwt"}))
    cases.append(syn("wpt-crit", "WPT with header crit [\"exp\"].", c0,
                     header={"alg": "EdDSA", "crit": ["exp"], "typ": "wpt+jwt"}, error="unknown_crit"))
    raw = cjson(c0).decode()
    raw_dup = raw.replace('"aud":"%s",' % A3_AUDIENCE, '"aud":"%s","aud":"%s",' % (A3_AUDIENCE, A3_AUDIENCE), 1)
    assert raw_dup != raw
    cases.append(syn("wpt-duplicate-aud", "WPT payload with the same \"aud\" member twice, validly signed.", c0,
                     raw_payload=raw_dup, error="duplicate_member"))
    c = base_claims("wpt-ath", ath=sha256_b64u(A3_ACCESS_TOKEN))
    cases.append(syn("wpt-ath", "Minimal WPT plus ath for the A.3 access token, which the request carries (wpt-01 rules).", c,
                     access_token=A3_ACCESS_TOKEN, compat=w01))
    cases.append(syn("wpt-access-token-without-ath",
                     "The request carries an access token but the WPT has no ath (MUST be present under wpt-01).",
                     c0, access_token=A3_ACCESS_TOKEN, error="missing_claim", compat=w01))
    cases.append(syn("wpt02-ath-present", "The same WPT with ath under the -02 rules, without an access token: ath is refused.",
                     c, error="forbidden_claim", base="wpt-ath"))
    c = base_claims("wpt-tth", tth=sha256_b64u(TXN_TOKEN))
    cases.append(syn("wpt-tth", "WPT with tth matching the request's Txn-Token.", c, txn_token=TXN_TOKEN))
    cases.append(syn("wpt-tth-mismatch", "WPT tth is for a different Txn-Token than the one in the request.", c,
                     txn_token=TXN_TOKEN + "X", error="tth_mismatch", base="wpt-tth"))
    cases.append(syn("wpt-txn-token-without-tth", "The request carries a Txn-Token but the WPT has no tth (MUST be present).",
                     c0, txn_token=TXN_TOKEN, error="missing_claim"))
    c = base_claims("wpt-oth", oth={"x-ctx": sha256_b64u(CTX_VALUE)})
    cases.append(syn("wpt-oth", "WPT oth covers the x-ctx header of the request.", c, other_tokens={"x-ctx": CTX_VALUE}))
    cases.append(syn("wpt-oth-trimmed", "As wpt-oth, but the header value has leading/trailing spaces, which are trimmed before hashing.",
                     c, other_tokens={"x-ctx": "  " + CTX_VALUE + " "}, base="wpt-oth"))
    cases.append(syn("wpt-oth-mismatch", "oth hash for x-ctx does not match the request's x-ctx value.", c,
                     other_tokens={"x-ctx": CTX_VALUE + "-other"}, error="oth_mismatch", base="wpt-oth"))
    c = base_claims("wpt-oth", oth={"x-ctx": sha256_b64u(CTX_VALUE), "x-missing": sha256_b64u("absent")})
    cases.append(syn("wpt-oth-unknown", "oth also names x-missing, a header the request does not carry (x-ctx itself matches).",
                     c, other_tokens={"x-ctx": CTX_VALUE}, error="oth_unknown", base="wpt-oth"))
    late = A1_WIT_EXP + 90
    c = base_claims("wpt-minimal", exp=late + 120)
    cases.append(syn("wpt-wit-expired", "Fresh, valid WPT (exp = now + 120) but the A.1 WIT expired 90 s before now.",
                     c, now=late, error="expired"))
    cases.extend(build_wpt02_request_cases(keys))
    return cases


# The -02 example claims (draft-ietf-wimse-wpt-02 section 2, "Example WPT Claims"): the aud, exp and jti
# are verbatim; the example's wth (X9wiPgq3...) hashes a WIT the draft text does not include, so wth is
# recomputed for the A.1 WIT, and the claims are signed with the published A.1 workload key.
WPT02_CLAIMS = {"aud": A3_AUDIENCE, "exp": 1745510016, "jti": "__bwc4ESC3acc2LTC1-_x"}


def build_wpt02_request_cases(keys):
    """Whole requests (header lists) in the -02 carriage, and the -01 carriage in both modes."""
    wk = keys["workload-a1"]
    claims = dict(WPT02_CLAIMS, wth=sha256_b64u(A1_WIT))
    wpt = jws({"alg": "EdDSA", "typ": "wpt+jwt"}, claims, key=wk)
    txn_claims = dict(claims, jti=fake_jti("wpt02-txn"), tth=sha256_b64u(TXN_TOKEN))
    txn_wpt = jws({"alg": "EdDSA", "typ": "wpt+jwt"}, txn_claims, key=wk)
    wit = ["Workload-Identity-Token", A1_WIT]
    body = '{"do stuff":"please"}'

    def request(*headers):
        return {"method": "POST", "target": "/path",
                "headers": [["Host", "workload.example.com"], ["Content-Type", "application/json"], *headers],
                "body": body}

    def case(cid, why, req, error=None, claims_=None, **kw):
        return wpt_case(cid, why, request=req, error=error, claims=claims_, base=None if error is None else "wpt02-request", **kw)

    a3_request = request(["Authorization", "Bearer " + A3_ACCESS_TOKEN], wit, ["Workload-Proof-Token", A3_WPT])
    return [
        case("wpt02-request", "The -02 example request: Workload-Identity-Token plus Authorization: WPT with the -02 example claims.",
             request(wit, ["Authorization", "WPT " + wpt]), claims_=claims),
        case("wpt02-request-scheme-case", "The scheme name is case-insensitive (RFC 9110 section 11.1): 'authorization: wpt ...'.",
             request(wit, ["authorization", "wpt " + wpt]), claims_=claims),
        case("wpt02-request-txn-token", "A Txn-Token in its own header, bound by tth: the context that replaces a bearer token.",
             request(wit, ["Authorization", "WPT " + txn_wpt], ["Txn-Token", TXN_TOKEN]), claims_=txn_claims),
        case("wpt02-request-txn-token-unbound", "A Txn-Token the WPT does not bind (no tth): refused.",
             request(wit, ["Authorization", "WPT " + wpt], ["Txn-Token", TXN_TOKEN]), "missing_claim"),
        case("wpt02-request-bearer-beside-wpt", "Authorization: WPT and a second Authorization: Bearer field: a WPT beside a Bearer token.",
             request(wit, ["Authorization", "WPT " + wpt], ["Authorization", "Bearer " + A3_ACCESS_TOKEN]),
             "access_token_with_wpt"),
        case("wpt02-request-dpop-beside-wpt", "Authorization: WPT with a DPoP proof header: a DPoP-bound token cannot travel with a WPT.",
             request(wit, ["Authorization", "WPT " + wpt], ["DPoP", "eyJhbGciOiJFUzI1NiIsInR5cCI6ImRwb3Arand0In0.e30.sig"]),
             "access_token_with_wpt"),
        case("wpt02-request-two-wpts", "Two Authorization: WPT fields: a request carries exactly one Authorization field.",
             request(wit, ["Authorization", "WPT " + wpt], ["Authorization", "WPT " + txn_wpt]), "header"),
        case("wpt02-request-not-token68", "Authorization: WPT followed by two space-separated tokens: not one token68.",
             request(wit, ["Authorization", "WPT " + wpt + " " + wpt]), "header"),
        case("wpt02-request-legacy-header", "The A.3 request verbatim (Workload-Proof-Token + Authorization: Bearer) under the -02 rules.",
             a3_request, "wpt_legacy_header"),
        case("a3-request-wpt01", "The A.3 request verbatim with the wpt-01 compatibility switch on: accepted, ath binding the bearer token.",
             a3_request, claims_=decode_part(A3_WPT.split(".")[1]), compat="wpt-01"),
    ]


def build_jwt_svid_cases(keys):
    es, rs, ps, ed, att = (keys[n] for n in ("lanyard-es256", "lanyard-rs256", "lanyard-ps256", "lanyard-ed25519", "attacker-es256"))
    now = SYN_NOW
    base = {"sub": "spiffe://example.org/svc", "aud": SVID_AUDIENCE, "iat": now, "exp": now + 300}
    h = {"alg": "ES256", "kid": "lanyard-es256", "typ": "JWT"}

    def case(cid, why, token, error=None, *, anchors=("lanyard-es256",), audience=SVID_AUDIENCE, claims=None,
             at=now, base_id="jwt-svid-es256"):
        c = {"id": cid, "why": why, "kind": "jwt-svid", "token": token, "audience": audience, "trust_domain": "example.org",
             "anchors": list(anchors), "profile": "jwt-svid", "now": at}
        if error is None:
            c["expect"] = "valid"
            c["claims"] = claims
        else:
            c["expect"] = "error"
            c["error"] = error
            BASES[cid] = base_id
        return c

    def without(d, k):
        return {a: b for a, b in d.items() if a != k}

    rs_claims = dict(base, aud=["https://other.example.org", SVID_AUDIENCE])
    return [
        case("jwt-svid-es256", "ES256 JWT-SVID as SPIRE emits it: kid, typ JWT, single string aud.", jws(h, base, key=es), claims=base),
        case("jwt-svid-rs256-aud-list", "RS256 JWT-SVID whose aud is a list that contains the verifier's audience.",
             jws({"alg": "RS256", "kid": "lanyard-rs256", "typ": "JWT"}, rs_claims, key=rs), anchors=("lanyard-rs256",),
             claims=rs_claims),
        case("jwt-svid-ps256", "PS256 JWT-SVID (RSASSA-PSS, SHA-256, 32-byte salt) under lanyard-ps256.",
             jws({"alg": "PS256", "kid": "lanyard-ps256", "typ": "JWT"}, base, key=ps), anchors=("lanyard-ps256",), claims=base),
        case("jwt-svid-typ-absent", "typ is optional for JWT-SVIDs.", jws(without(h, "typ"), base, key=es), claims=base),
        case("jwt-svid-typ-jose", "typ 'JOSE' is allowed for JWT-SVIDs.", jws(dict(h, typ="JOSE"), base, key=es), claims=base),
        case("jwt-svid-wrong-audience", "Valid ES256 JWT-SVID verified by a service whose audience is https://other.example.org.",
             jws(h, base, key=es), "wrong_audience", audience="https://other.example.org"),
        case("jwt-svid-aud-list-without-audience", "aud list that does not contain the verifier's audience.",
             jws(h, dict(base, aud=["https://other.example.org", "https://third.example.org"]), key=es), "wrong_audience"),
        case("jwt-svid-missing-aud", "JWT-SVID without aud (MUST be present).", jws(h, without(base, "aud"), key=es), "missing_claim"),
        case("jwt-svid-missing-exp", "JWT-SVID without exp.", jws(h, without(base, "exp"), key=es), "missing_claim"),
        case("jwt-svid-missing-sub", "JWT-SVID without sub.", jws(h, without(base, "sub"), key=es), "missing_claim"),
        case("jwt-svid-eddsa", "EdDSA-signed JWT-SVID (anchor lanyard-ed25519); EdDSA is not in the JWT-SVID alg list.",
             jws({"alg": "EdDSA", "kid": "lanyard-ed25519", "typ": "JWT"}, base, key=ed), "alg_not_allowed",
             anchors=("lanyard-ed25519",)),
        case("jwt-svid-no-kid", "ES256 JWT-SVID without kid (go-spiffe/SPIRE reject these).",
             jws(without(h, "kid"), base, key=es), "missing_kid"),
        case("jwt-svid-typ-wit", "JWT-SVID signed with typ 'wit+jwt': the typ of another token type (only JWT or JOSE allowed).",
             jws(dict(h, typ="wit+jwt"), base, key=es), "typ_confusion"),
        case("jwt-svid-typ-access-token", "JWT-SVID claims signed with typ 'at+jwt' (an RFC 9068 access token's typ).",
             jws(dict(h, typ="at+jwt"), base, key=es), "typ_confusion"),
        case("jwt-svid-typ-txn-token", "JWT-SVID claims signed with typ 'application/txntoken+jwt' (a Txn-Token's typ).",
             jws(dict(h, typ="application/txntoken+jwt"), base, key=es), "typ_confusion"),
        case("jwt-svid-typ-client-assertion", "JWT-SVID claims signed with typ 'client-authentication+jwt' (an RFC 7523bis client assertion).",
             jws(dict(h, typ="client-authentication+jwt"), base, key=es), "typ_confusion"),
        case("jwt-svid-typ-unknown", "JWT-SVID signed with typ 'foo+jwt', unknown: not one JWT-SVID allows.",
             jws(dict(h, typ="foo+jwt"), base, key=es), "wrong_typ"),
        case("jwt-svid-expired", "Valid ES256 JWT-SVID checked 61 s after exp.", jws(h, base, key=es), "expired",
             at=base["exp"] + LEEWAY + 1),
        case("jwt-svid-nbf-future", "JWT-SVID with nbf 600 s after now.", jws(h, dict(base, nbf=now + 600), key=es), "not_yet_valid"),
        case("jwt-svid-wimse-sub", "sub is the valid wimse identifier wimse://example.org/svc; a JWT-SVID sub must be a SPIFFE ID.",
             jws(h, dict(base, sub="wimse://example.org/svc"), key=es), "invalid_identifier"),
        case("jwt-svid-sub-trailing-slash", "sub 'spiffe://example.org/svc/' is not a valid SPIFFE ID.",
             jws(h, dict(base, sub="spiffe://example.org/svc/"), key=es), "invalid_identifier"),
        # The anchor for the two unsigned/HMAC cases is issuer-june5, a key without an
        # "alg" member, so that no alg_mismatch can arise besides alg_not_allowed.
        case("jwt-svid-hs256-key-confusion",
             "HS256 keyed with the SPKI PEM bytes of the trusted June 5 key (anchor has no alg member, so only the alg allowlist can catch it).",
             jws({"alg": "HS256", "kid": "June 5", "typ": "JWT"}, base, key=pem_of(keys["issuer-june5"])), "alg_not_allowed",
             anchors=("issuer-june5",)),
        case("jwt-svid-alg-none",
             "Header {\"alg\":\"none\",\"kid\":\"June 5\",\"typ\":\"JWT\"}, empty signature; anchor issuer-june5 has no alg member.",
             jws({"alg": "none", "kid": "June 5", "typ": "JWT"}, base, signature=b""), "alg_not_allowed",
             anchors=("issuer-june5",)),
        case("jwt-svid-bad-signature", "Same header and claims as jwt-svid-es256, signed by the attacker key.",
             jws(h, base, key=att), "bad_signature"),
        case("jwt-svid-unknown-kid", "Signed by lanyard-es256 but kid 'lanyard-es256-next' is not in the bundle.",
             jws(dict(h, kid="lanyard-es256-next"), base, key=es), "unknown_key"),
        case("jwt-svid-foreign-trust-domain", "sub spiffe://other.example.org/svc; only example.org has anchors.",
             jws(h, dict(base, sub="spiffe://other.example.org/svc"), key=es), "unknown_key"),
        case("jwt-svid-ps256-under-rs256-key", "PS256 signature made with the lanyard-rs256 key, whose JWK alg is RS256.",
             jws({"alg": "PS256", "kid": "lanyard-rs256", "typ": "JWT"}, base, key=rs), "alg_mismatch",
             anchors=("lanyard-rs256",), base_id="jwt-svid-ps256"),
    ]


# --------------------------------------------------------------------------
# HTTP Message Signatures, draft-ietf-wimse-http-signature-07 (httpsig/wimse_07.json)
# --------------------------------------------------------------------------
# The -07 example (section 3.7.1, "Signed Request") is published only shortened (its WIT and
# signature are cut), so these cases rebuild its shape -- label sig1, @method @path @query, its
# created/expires/nonce/wimse-aud, wimse-sign-response -- over the -06 example messages and
# WITs, signed with the published -06 caller and callee keys (svc-a-key, svc-b-key).  The WITs'
# issuer key is unpublished: only the message signatures are checked.
H07_CREATED = 1789405135
H07_NOW = H07_CREATED + 3
H07_AUDIENCE = "https://svcb.example.com/gimme-ice-cream"
H07_BODY = "No ice cream today.\n\n"
TAG = "wimse-workload-to-workload"


def sf_params(params):
    """RFC 8941 parameters: ;name=value, booleans true as bare ;name."""
    out = ""
    for name, value in params:
        if value is True:
            out += f";{name}"
        elif isinstance(value, int):
            out += f";{name}={value}"
        else:
            out += f';{name}="{value}"'
    return out


def sig_params(components, params):
    items = " ".join(f'"{name}"' + (";req" if req else "") for name, req in components)
    return f"({items}){sf_params(params)}"


def component_value(name, req, request, response):
    msg = request if (req or response is None) else response
    if name == "@method":
        return request["method"]
    if name == "@path":
        return request["target"].split("?")[0] or "/"
    if name == "@query":
        return "?" + request["target"].split("?", 1)[1] if "?" in request["target"] else "?"
    if name == "@request-target":
        return request["target"]
    if name == "@status":
        return str(response["status"])
    values = [v.strip(" \t") for n, v in msg["headers"] if n.lower() == name]
    return ", ".join(values) if values else None


def signature_base(components, params, request, response=None):
    lines = []
    for name, req in components:
        value = component_value(name, req, request, response)
        if value is None:
            return None
        lines.append(f'"{name}"' + (";req" if req else "") + f": {value}")
    lines.append(f'"@signature-params": {sig_params(components, params)}')
    return "\n".join(lines)


def h07_sign(key, label, components, params, request, response=None):
    base = signature_base(components, params, request, response).encode()
    sig = base64.b64encode(sign("EdDSA", key, base)).decode()
    return f"{label}={sig_params(components, params)}", f"{label}=:{sig}:"


def h07_message(headers, signatures):
    """`headers` plus Signature-Input/Signature for each (input, signature) in `signatures`."""
    inputs = ", ".join(i for i, _ in signatures)
    sigs = ", ".join(s for _, s in signatures)
    return headers + [["Signature-Input", inputs], ["Signature", sigs]]


def build_httpsig_cases(keys):
    svc_a, svc_b = keys["svc-a-key"], keys["svc-b-key"]
    wit_h = ["Workload-Identity-Token", A4_REQUEST_WIT]
    req_base = {"method": "GET", "target": "/gimme-ice-cream?flavor=vanilla", "authority": "svcb.example.com",
                "headers": [["Host", "svcb.example.com"], wit_h], "body": ""}
    req_components = [("@method", False), ("@path", False), ("@query", False), ("workload-identity-token", False)]
    req_params = [("created", H07_CREATED), ("expires", H07_CREATED + 300), ("nonce", "abcd1111"), ("tag", TAG),
                  ("wimse-aud", H07_AUDIENCE), ("wimse-sign-response", True)]
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(H07_BODY.encode()).digest()).decode() + ":"
    resp_base = {"status": 404, "headers": [["Content-Digest", digest], ["Content-Type", "text/plain"],
                                             ["Workload-Identity-Token", A4_RESPONSE_WIT]], "body": H07_BODY}
    resp_components = [("@status", False), ("workload-identity-token", False), ("content-type", False),
                       ("content-digest", False), ("@method", True), ("@path", True), ("@query", True)]
    resp_params = [("created", H07_CREATED), ("expires", H07_CREATED + 302), ("nonce", "abcd2222"), ("tag", TAG),
                   ("wimse-req-nonce", "abcd1111")]

    def signed_request(components=req_components, params=req_params, req=req_base, extra=(), label="sig1"):
        sigs = [h07_sign(svc_a, label, components, params, req)] + list(extra)
        return dict(req, headers=h07_message(req["headers"], sigs)), (components, params)

    def signed_response(request, components=resp_components, params=resp_params):
        sig = h07_sign(svc_b, "sig1", components, params, request, resp_base)
        return dict(resp_base, headers=h07_message(resp_base["headers"], [sig])), (components, params)

    def case(cid, why, message, request, response=None, error=None, meta=None):
        c = {"id": cid, "why": why, "message": message, "caller_key": "svc-a-key", "callee_key": "svc-b-key",
             "request": request, "audience": H07_AUDIENCE, "request_nonce": "abcd1111", "now": H07_NOW}
        if response is not None:
            c["response"] = response
        if error is None:
            c["expect"] = "valid"
            req_unsigned = dict(request, headers=[h for h in request["headers"] if not h[0].startswith("Signature")])
            c["signature_base"] = signature_base(*meta, req_unsigned, response)
        else:
            c["expect"] = "error"
            c["error"] = error
        HTTPSIG_META[cid] = meta
        return c

    request, meta = signed_request()
    response, rmeta = signed_response(req_base)
    no_query_req = dict(req_base, target="/gimme-ice-cream")
    no_query, nq_meta = signed_request(req=no_query_req)
    other_tag = h07_sign(svc_b, "wimse", [("@method", False)], [("created", H07_CREATED), ("tag", "some-other-profile")], req_base)
    by_tag, bt_meta = signed_request(extra=[other_tag])
    two, two_meta = signed_request(extra=[h07_sign(svc_a, "sig2", req_components, req_params, req_base)])
    no_q, noq_meta = signed_request(components=[c for c in req_components if c[0] != "@query"])
    legacy_components = [("@method", False), ("@request-target", False), ("workload-identity-token", False)]
    legacy, legacy_meta = signed_request(components=legacy_components)
    with_keyid, keyid_meta = signed_request(params=req_params[:3] + [("keyid", "svc-a-key")] + req_params[3:])
    no_req_nonce, nrn_meta = signed_response(req_base, params=resp_params[:-1])
    cases = [
        case("http-signature-07-request",
             "The -07 example request's shape (sig1; @method @path @query workload-identity-token; its parameters), signed with the -06 caller key.",
             "request", request, meta=meta),
        case("http-signature-07-response",
             "A signed 404 answering it: @status, the server's WIT, content-type, content-digest, @method;req @path;req @query;req, wimse-req-nonce.",
             "response", request, response, meta=rmeta),
        case("http-signature-07-no-query",
             "A request without a query still covers @query, whose value is then '?' (RFC 9421 section 2.2.7).",
             "request", no_query, meta=nq_meta),
        case("http-signature-07-selected-by-tag",
             "A second signature labelled 'wimse' with another tag beside the WIMSE one labelled 'sig1': selected by tag, never by label.",
             "request", by_tag, meta=bt_meta),
        case("http-signature-07-missing-query", "The -07 request signed without @query.",
             "request", no_q, error="signature_components", meta=noq_meta),
        case("http-signature-06-target-in-default-mode",
             "The -06 form (@request-target) under the -07 rules; accepted only with the -06 compatibility switch.",
             "request", legacy, error="signature_legacy_target", meta=legacy_meta),
        case("http-signature-07-two-wimse-signatures", "Two signatures tagged wimse-workload-to-workload (sig1, sig2): reject.",
             "request", two, error="signature_duplicate", meta=two_meta),
        case("http-signature-07-keyid", "The -07 request with a keyid parameter, which the profile forbids.",
             "request", with_keyid, error="signature_params", meta=keyid_meta),
        case("http-signature-07-response-without-req-nonce",
             "A signed response without wimse-req-nonce: every signed response must carry it.",
             "response", request, no_req_nonce, error="signature_params", meta=nrn_meta),
    ]
    return cases


HTTPSIG_META = {}  # case id -> (components, params) the case's WIMSE signature was built from


def ref_check_httpsig(case, keys):
    """The profile rules of -07 section 3 over the structure a case was built from, plus the
    signature itself; collects every violation."""
    components, params = HTTPSIG_META[case["id"]]
    errs = []
    names = dict(params)
    is_request = case["message"] == "request"
    msg = case["request"] if is_request else case["response"]
    inputs = [v for n, v in msg["headers"] if n == "Signature-Input"]
    if sum(s.count(f'tag="{TAG}"') for s in inputs) > 1:
        errs.append("signature_duplicate")
    if "keyid" in names or "alg" in names or not {"created", "expires", "nonce", "tag"} <= set(names):
        errs.append("signature_params")
    if is_request and "wimse-aud" not in names:
        errs.append("signature_params")
    if not is_request and "wimse-req-nonce" not in names:
        errs.append("signature_params")
    covered = {(n, r) for n, r in components}
    req = not is_request
    if ("@request-target", req) in covered:
        errs.append("signature_legacy_target")
    elif not {("@method", req), ("@path", req), ("@query", req)} <= covered:
        errs.append("signature_components")
    request = dict(case["request"], headers=[h for h in case["request"]["headers"] if not h[0].startswith("Signature")])
    response = None
    if not is_request:
        response = dict(case["response"], headers=[h for h in case["response"]["headers"] if not h[0].startswith("Signature")])
    base = signature_base(components, params, request, response)
    raw = [v for n, v in msg["headers"] if n == "Signature"][0]
    label_sigs = dict(part.split("=", 1) for part in raw.split(", "))
    label = [v for n, v in msg["headers"] if n == "Signature-Input"][0]
    label = next(entry.split("=", 1)[0] for entry in label.split(", ") if f'tag="{TAG}"' in entry)
    sig = base64.b64decode(label_sigs[label].strip(":"))
    key = keys["svc-a-key" if is_request else "svc-b-key"]
    if base is None or not verify_sig("EdDSA", public_jwk(key), base.encode(), sig):
        errs.append("bad_signature")
    if errs == [] and case.get("signature_base") not in (None, base):
        errs.append("signature_base_differs")
    return sorted(set(errs))


# --------------------------------------------------------------------------
# Reference verifier (collects every violation; used only for self-checking)
# --------------------------------------------------------------------------
# The explicit typ values of known JWT types (lanyard_core::jose::TokenType); an explicit typ
# from this table where another type is expected is typ_confusion, any other wrong typ wrong_typ.
KNOWN_TYPS = {
    "at+jwt", "dpop+jwt", "txntoken+jwt", "wit+jwt", "wpt+jwt", "client-authentication+jwt",
    "authorization-grant+jwt", "oauth-client-attestation+jwt", "oauth-client-attestation-pop+jwt",
    "secevent+jwt", "logout+jwt", "token-introspection+jwt", "oauth-authz-req+jwt", "oauth-id-jag+jwt",
    "kb+jwt", "jwk-set+jwt", "entity-statement+jwt",
}


def typ_error(typ, expected):
    """The error for header typ `typ` where `expected` (a known typ, or None for JWT/JOSE/absent) is wanted."""
    bare = typ[len("application/"):] if isinstance(typ, str) and typ.lower().startswith("application/") else typ
    bare = bare.lower() if isinstance(bare, str) else bare
    if expected is not None and bare == expected:
        return None
    if bare in KNOWN_TYPS:
        return "typ_confusion"
    if expected is None and typ in (None, "JWT", "JOSE"):
        return None
    return "wrong_typ"


ASYM_ALGS = {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
SVID_ALGS = ASYM_ALGS - {"EdDSA"}
PROFILE_ALGS = {"wimse": ASYM_ALGS, "wit-svid": SVID_ALGS, "jwt-svid": SVID_ALGS}
STRING_CLAIMS = ("sub", "jti", "iss", "wth", "ath", "tth")
NUMERIC_CLAIMS = ("exp", "nbf", "iat")


def _json_strict(raw: bytes, errs: list):
    def hook(pairs):
        names = [k for k, _ in pairs]
        if len(names) != len(set(names)) and "duplicate_member" not in errs:
            errs.append("duplicate_member")
        return dict(pairs)

    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=hook)
    except (UnicodeDecodeError, ValueError):
        return None


def ref_parse_jws(token: str, errs: list):
    if len(token.encode()) > MAX_TOKEN_BYTES:
        errs.append("too_large")
    parts = token.split(".")
    if len(parts) != 3:
        errs.append("malformed")
        return None
    try:
        hb, pb, sig = (b64u_decode(x) for x in parts)
    except ValueError:
        errs.append("malformed")
        return None
    header, payload = _json_strict(hb, errs), _json_strict(pb, errs)
    if not isinstance(header, dict) or not isinstance(payload, dict):
        errs.append("malformed")
        return None
    bad_type = any(k in payload and not isinstance(payload[k], str) for k in STRING_CLAIMS)
    bad_type |= any(k in payload and (isinstance(payload[k], bool) or not isinstance(payload[k], (int, float)))
                    for k in NUMERIC_CLAIMS)
    aud = payload.get("aud")
    bad_type |= aud is not None and not (isinstance(aud, str) or (isinstance(aud, list) and all(isinstance(a, str) for a in aud)))
    bad_type |= "cnf" in payload and not isinstance(payload["cnf"], dict)
    bad_type |= "oth" in payload and not (isinstance(payload["oth"], dict) and all(isinstance(v, str) for v in payload["oth"].values()))
    bad_type |= any(k in header and not isinstance(header[k], str) for k in ("alg", "typ", "kid"))
    if bad_type:
        errs.append("malformed")
        return None
    return header, payload, (parts[0] + "." + parts[1]).encode("ascii"), sig


def _check_time(payload, now, max_lifetime, errs):
    exp = payload.get("exp")
    if exp is None:
        errs.append("missing_claim")
    elif now > exp + LEEWAY:
        errs.append("expired")
    elif max_lifetime is not None and exp - now > max_lifetime:
        errs.append("lifetime_too_long")
    if payload.get("nbf") is not None and payload["nbf"] > now + LEEWAY:
        errs.append("not_yet_valid")


def ref_verify_token(token, *, kind, td, anchors, profile, now, audience=None):
    """kind: 'wit' or 'jwt-svid'.  Returns (errors, payload or None)."""
    errs = []
    parsed = ref_parse_jws(token, errs)
    if parsed is None:
        return errs, None
    h, p, signing_input, sig = parsed
    typ_err = typ_error(h.get("typ"), "wit+jwt" if kind == "wit" else None)
    if typ_err:
        errs.append(typ_err)
    alg = h.get("alg")
    alg_ok = alg in PROFILE_ALGS[profile]
    if not alg_ok:
        errs.append("alg_not_allowed")
    if "crit" in h:
        errs.append("unknown_crit")
    if profile in ("wit-svid", "jwt-svid") and "kid" not in h:
        errs.append("missing_kid")
    sub_td = None
    if "sub" not in p:
        errs.append("missing_claim")
    else:
        res = ref_parse_id(p["sub"])
        # A WIT names a workload: a SPIFFE trust-domain ID (no path) is refused as its sub.
        if res[0] != "ok" or (profile != "wimse" and res[1] != "spiffe") or (kind == "wit" and res[3] == ""):
            errs.append("invalid_identifier")
        else:
            sub_td = res[2]
    key = None
    if sub_td is not None:
        if sub_td != td or not anchors:
            errs.append("unknown_key")
        elif "kid" in h:
            found = [a for a in anchors if a.get("kid") == h["kid"]]
            if found:
                key = found[0]
            else:
                errs.append("unknown_key")
        elif len(anchors) == 1:
            key = anchors[0]
        else:
            errs.append("unknown_key")
    if key is not None and alg_ok:
        if key.get("alg") not in (None, alg):
            errs.append("alg_mismatch")
        elif not verify_sig(alg, key, signing_input, sig):
            errs.append("bad_signature")
    _check_time(p, now, MAX_WIT_LIFETIME if kind == "wit" else None, errs)
    if kind == "wit":
        jwk = p.get("cnf", {}).get("jwk")
        if not isinstance(jwk, dict) or "alg" not in jwk:
            errs.append("missing_claim")
        elif jwk["alg"] not in PROFILE_ALGS[profile]:
            errs.append("alg_not_allowed")
        if profile == "wit-svid" and "aud" in p:
            errs.append("forbidden_claim")
    else:
        aud = p.get("aud")
        if aud is None:
            errs.append("missing_claim")
        elif audience not in ([aud] if isinstance(aud, str) else aud):
            errs.append("wrong_audience")
    return errs, p


def ref_extract(request, compat):
    """The -02 carriage rules (and -01 with `compat`): (errors, tokens).  Gated: the first carriage
    problem is the error, as the receiver stops reading the request there."""
    by_name = {}
    for name, value in request["headers"]:
        by_name.setdefault(name.lower(), []).append(value)
    wit, auth, legacy, txn = (by_name.get(n, []) for n in ("workload-identity-token", "authorization",
                                                            "workload-proof-token", "txn-token"))
    if len(wit) != 1 or len(legacy) > 1 or len(txn) > 1:
        return ["header"], None
    schemes = [(v.split(" ", 1) + [""])[:2] for v in auth]
    is_wpt = [s.lower() == "wpt" for s, _ in schemes]
    if len(auth) > 1:
        return (["access_token_with_wpt"] if any(is_wpt) and not all(is_wpt) else ["header"]), None
    if legacy and not compat:
        return ["wpt_legacy_header"], None
    if auth and is_wpt[0] and not legacy:
        if "dpop" in by_name and not compat:
            return ["access_token_with_wpt"], None
        creds = schemes[0][1].strip(" ")
        if not re.fullmatch(r"[A-Za-z0-9._~+/-]+=*", creds):
            return ["header"], None
        return [], {"wit": wit[0], "wpt": creds, "access_token": None, "txn_token": txn[0] if txn else None}
    if legacy and (not auth or schemes[0][0].lower() == "bearer"):
        token = schemes[0][1] if auth else None
        return [], {"wit": wit[0], "wpt": legacy[0], "access_token": token, "txn_token": txn[0] if txn else None}
    return ["header"], None


def ref_verify_wpt(case, keys):
    if case["kind"] == "wpt-request":
        errs, tokens = ref_extract(case["request"], case.get("compat"))
        if tokens is None:
            return errs, None
        case = dict(case, **tokens)
    if case.get("access_token") is not None and case.get("compat") != "wpt-01":
        # -02 section 2.2: refused before the tokens are looked at.
        return ["access_token_with_wpt"], None
    anchors = [public_jwk(keys[n]) for n in case["anchors"]]
    errs, wit_p = ref_verify_token(case["wit"], kind="wit", td=case["trust_domain"], anchors=anchors,
                                   profile=case["profile"], now=case["now"])
    if wit_p is None or not isinstance(wit_p.get("cnf", {}).get("jwk"), dict):
        return errs, None
    cnf = wit_p["cnf"]["jwk"]
    parsed = ref_parse_jws(case["wpt"], errs)
    if parsed is None:
        return errs, None
    h, p, signing_input, sig = parsed
    now = case["now"]
    typ_err = typ_error(h.get("typ"), "wpt+jwt")
    if typ_err:
        errs.append(typ_err)
    if h.get("alg") != cnf.get("alg"):
        errs.append("alg_mismatch")
    elif not verify_sig(h["alg"], cnf, signing_input, sig):
        errs.append("bad_signature")
    if "crit" in h:
        errs.append("unknown_crit")
    _check_time(p, now, MAX_WPT_LIFETIME, errs)
    if "aud" not in p:
        errs.append("missing_claim")
    elif p["aud"] != case["audience"]:
        errs.append("wrong_audience")
    if "jti" not in p:
        errs.append("missing_claim")
    if "wth" not in p:
        errs.append("missing_claim")
    elif p["wth"] != sha256_b64u(case["wit"]):
        errs.append("wth_mismatch")
    bound = (("ath", "access_token", "ath_mismatch"), ("tth", "txn_token", "tth_mismatch"))
    if case.get("compat") != "wpt-01":
        bound = bound[1:]
        if "ath" in p:
            errs.append("forbidden_claim")
    for claim, field, err in bound:
        value = case.get(field)
        if value is not None and claim not in p:
            errs.append("missing_claim")
        elif claim in p and (value is None or p[claim] != sha256_b64u(value)):
            errs.append(err)
    other = case.get("other_tokens") or {}
    if other and "oth" not in p:
        errs.append("missing_claim")
    for name, digest in (p.get("oth") or {}).items():
        if name not in other:
            errs.append("oth_unknown")
        elif digest != sha256_b64u(other[name].strip(" ")):
            errs.append("oth_mismatch")
    return errs, p


def self_check(files, keys):
    problems = []
    for name, doc in files.items():
        if not name.startswith("identifiers/"):
            continue
        for c in doc["cases"]:
            res = ref_parse_id(c["input"])
            if c["valid"] != (res[0] == "ok") or (not c["valid"] and res[1] != c["error"]):
                problems.append(f"{name}:{c['id']}: parser says {res}")
    for name in ("tokens/wit.json", "tokens/wpt.json", "tokens/jwt_svid.json"):
        ids = set()
        for c in files[name]["cases"]:
            assert c["id"] not in ids, c["id"]
            ids.add(c["id"])
            for a in c["anchors"]:
                assert a in keys, a
            anchors = [public_jwk(keys[a]) for a in c["anchors"]]
            if c["kind"] == "decode":
                parts = c["token"].split(".")
                errs, payload = [], decode_part(parts[1])
                ref_parse_jws(c["token"], errs)
                if decode_part(parts[0]).get("typ") != "wit+jwt":
                    errs.append("wrong_typ")
            elif c["kind"] in ("wit+wpt", "wpt-request"):
                errs, payload = ref_verify_wpt(c, keys)
            else:
                errs, payload = ref_verify_token(c["token"], kind="wit" if c["kind"] == "wit" else "jwt-svid",
                                                 td=c["trust_domain"], anchors=anchors, profile=c["profile"],
                                                 now=c["now"], audience=c.get("audience"))
            if c["expect"] == "valid":
                if errs:
                    problems.append(f"{name}:{c['id']}: expected valid, reference verifier found {errs}")
                elif any(payload.get(k) != v for k, v in c["claims"].items()):
                    problems.append(f"{name}:{c['id']}: claims differ")
            elif set(errs) != {c["error"]}:
                problems.append(f"{name}:{c['id']}: expected only {c['error']}, reference verifier found {errs}")
    for c in files["httpsig/wimse_07.json"]["cases"]:
        errs = ref_check_httpsig(c, keys)
        want = [] if c["expect"] == "valid" else [c["error"]]
        if errs != want:
            problems.append(f"httpsig/wimse_07.json:{c['id']}: expected {want}, reference check found {errs}")
    # spec keys: private parts match the published public parts
    for nm in ("issuer-june5", "workload-a1", "svc-a-key", "svc-b-key"):
        k = keys[nm]
        derived = jwk_from_private("EC" if k["kty"] == "EC" else "OKP", "-", "-", private_key(k))
        assert derived["x"] == k["x"] and derived.get("y") == k.get("y"), nm
    for nm in GENERATED_KEYS:
        k = keys[nm]
        assert k["kid"] == nm and k["alg"] == GENERATED_KEYS[nm][1]
        msg = b"lanyard self-check"
        assert verify_sig(k["alg"], public_jwk(k), msg, sign(k["alg"], k, msg)), nm
    return problems


def explain(files):
    """Print how each synthetic negative case differs from its base case."""
    by_id = {}
    for name in ("tokens/wit.json", "tokens/wpt.json", "tokens/jwt_svid.json"):
        for c in files[name]["cases"]:
            by_id[c["id"]] = c

    def parts(tok):
        out = []
        for seg in tok.split(".")[:2]:
            try:
                out.append(b64u_decode(seg).decode())
            except (ValueError, UnicodeDecodeError):
                out.append("<not base64url>")
        return out

    def flat(prefix, val, out):
        if isinstance(val, dict):
            for k, v in val.items():
                flat(f"{prefix}.{k}" if prefix else k, v, out)
        else:
            out[prefix] = val
        return out

    for cid, base_id in BASES.items():
        c, b = by_id[cid], by_id[base_id]
        diffs = []
        for field in ("token", "wit", "wpt"):
            if field not in c or c[field] == b.get(field):
                continue
            for label, x, y in zip(("header", "payload"), parts(c[field]), parts(b[field])):
                if x == y:
                    continue
                try:
                    fx, fy = flat("", json.loads(x), {}), flat("", json.loads(y), {})
                    ch = [f"{k}: {fy.get(k, '<absent>')!r} -> {fx.get(k, '<absent>')!r}"[:110]
                          for k in sorted(set(fx) | set(fy)) if fx.get(k) != fy.get(k)]
                    diffs.append(f"{field}.{label} " + "; ".join(ch) if ch else f"{field}.{label} raw text differs")
                except (ValueError, AttributeError):
                    diffs.append(f"{field}.{label} raw text differs")
            if c[field].count(".") != b[field].count("."):
                diffs.append(f"{field}: {b[field].count('.') + 1} parts -> {c[field].count('.') + 1} parts")
            elif c[field].split(".")[:2] == b[field].split(".")[:2]:
                diffs.append(f"{field}: signature only")
        for field in ("audience", "access_token", "txn_token", "other_tokens", "anchors", "now", "profile", "trust_domain"):
            if c.get(field) != b.get(field):
                diffs.append(f"{field}: {b.get(field)!r} -> {c.get(field)!r}")
        print(f"{cid} [{c['error']}] vs {base_id}: " + (" | ".join(diffs) or "NO DIFFERENCE"))


# --------------------------------------------------------------------------
def main():
    keys = load_keys()
    sources = {
        "spiffe": "spiffe.md Appendix B (go-spiffe @e9973f6 spiffeid/id_test.go, SPIFFE-ID.md @665a28f), the SPIFFE examples "
                  "of wimse.md A.7 (draft-ietf-wimse-identifier @0a46ee3) and A.6, plus generated length/charset edge cases; "
                  "error kinds follow the classification order of WorkloadId::parse",
        "wimse": "wimse.md A.7 (draft-ietf-wimse-identifier @0a46ee3, -03 editor's copy) valid and must-reject examples, "
                 "identifiers from the A.1/A.4/A.6 tokens, plus generated edge cases",
        "wit": "wimse.md A.1 (ietf-wg-wimse/draft-ietf-wimse-s2s-protocol @40b1c41 includes/wit.txt), A.4/A.4b "
               "(http-signature-06 tag 1f46b46 / -05 tag 7d6da68), A.5 (s2s-protocol-05/-06), A.6 (spiffe/spiffe @665a28f "
               "WIT-SVID.md); negative and Lanyard-issued cases generated by generate.py",
        "wpt": "wimse.md A.3 (draft-ietf-wimse-wpt, @40b1c41 includes/wpt.txt, wpt-request.txt) and A.5; "
               "synthetic WPTs generated by generate.py with the A.1 workload key",
        "jwt_svid": "spiffe.md section 3 (spiffe/spiffe @665a28f JWT-SVID.md); all tokens generated by generate.py",
        "httpsig": "draft-ietf-wimse-http-signature-07 section 3 (the -07 example request's shape: @path/@query, tag "
                   "selection, wimse-req-nonce), over the -06 example messages and WITs (wimse.md A.4), signed by "
                   "generate.py with the published -06 svc-a/svc-b keys; the WITs' issuer key is unpublished, so only "
                   "message signatures verify",
    }
    files = {
        "identifiers/spiffe.json": build_id_file(SPIFFE_ID_CASES, sources["spiffe"]),
        "identifiers/wimse.json": build_id_file(WIMSE_ID_CASES, sources["wimse"]),
        "keys.json": keys,
        "tokens/wit.json": {"source": sources["wit"], "cases": build_wit_cases(keys)},
        "tokens/wpt.json": {"source": sources["wpt"], "cases": build_wpt_cases(keys)},
        "tokens/jwt_svid.json": {"source": sources["jwt_svid"], "cases": build_jwt_svid_cases(keys)},
        "httpsig/wimse_07.json": {"source": sources["httpsig"], "cases": build_httpsig_cases(keys)},
    }
    problems = self_check(files, keys)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    for rel, doc in files.items():
        path = HERE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for rel, doc in files.items():
        n = len(doc["cases"]) if "cases" in doc else len(doc)
        print(f"{rel}: {n} {'cases' if 'cases' in doc else 'keys'}")
    if "--explain" in sys.argv:
        explain(files)


if __name__ == "__main__":
    main()
