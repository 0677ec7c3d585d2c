#!/usr/bin/env python3
"""Lanyard OAuth interop driver for joserfc: RFC 9068 access tokens, RFC 9449 DPoP
proofs and RFC 7523 ``private_key_jwt`` client assertions.

crates/lanyard-core/tests/interop_oauth.rs runs it as a subprocess; it follows the
contract of tests/interop/node/oauth.mjs for these commands (see tests/interop/README.md):

    oauth_interop.py verify-access-token --jwks <file> --token <jwt> --issuer <iss>
                                         --audience <aud> [--now <unix-seconds>]
    oauth_interop.py sign-dpop --jwk <private-jwk-file> --method <m> --uri <uri>
                               [--access-token <at>] [--nonce <n>] --iat <unix-seconds>
    oauth_interop.py sign-client-assertion --jwk <private-jwk-file> --client-id <id>
                               --audience <aud> --iat <unix-seconds> --lifetime <s> [--typ <typ>]

Success: the result goes to stdout as one line, exit status 0.
Failure: one line ``error: <message>`` goes to stderr, exit status 1.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import uuid
from typing import Any
from urllib.parse import urlsplit

# The output contract and argument plumbing of interop.py (same directory, so on sys.path).
from interop import (
    ALLOWED_ALGORITHMS,
    CLOCK_TOLERANCE_SECONDS,
    ArgumentParser,
    InteropError,
    read_json_object,
    run_command,
    unix_seconds,
)

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")


def token_hash(token: str) -> str:
    """base64url(SHA-256(ASCII token)): ``ath`` (RFC 9449 §4.2)."""
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def htu_of(uri: str) -> str:
    """RFC 9449 §4.2: the target URI without query and fragment."""
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        raise InteropError(f"not an absolute URI: {uri!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"


def private_key(path: str):
    """The private JWK (it must carry ``alg``) as a joserfc key, its alg and public JWK."""
    from joserfc import jwk as joserfc_jwk

    jwk = read_json_object(path)
    alg = jwk.get("alg")
    if not isinstance(alg, str):
        raise InteropError(f"{path}: the private JWK must carry an 'alg' member")
    public = {k: v for k, v in jwk.items() if k not in PRIVATE_MEMBERS}
    return joserfc_jwk.import_key(jwk), alg, public


def verify_access_token(args: argparse.Namespace) -> None:
    """RFC 9068 §4 with joserfc: the key by kid, the signature and allow-list (jwt.decode),
    typ exactly at+jwt (joserfc does not check it), iss, aud, exp/nbf and the required
    claims (JWTClaimsRegistry)."""
    from joserfc import jwt
    from joserfc.jwk import KeySet

    key_set = KeySet.import_key_set(read_json_object(args.jwks))
    token = jwt.decode(args.token, key_set, algorithms=ALLOWED_ALGORITHMS)
    if token.header.get("typ") != "at+jwt":
        raise InteropError(f"typ header is {token.header.get('typ')!r}, expected exactly 'at+jwt'")
    registry = jwt.JWTClaimsRegistry(
        now=args.now,
        leeway=CLOCK_TOLERANCE_SECONDS,
        iss={"essential": True, "value": args.issuer},
        aud={"essential": True, "value": args.audience},
        sub={"essential": True},
        client_id={"essential": True},
        iat={"essential": True},
        exp={"essential": True},
        jti={"essential": True},
    )
    registry.validate(token.claims)
    print(json.dumps(token.claims, separators=(",", ":"), ensure_ascii=False))


def sign_dpop(args: argparse.Namespace) -> None:
    """A DPoP proof: header {typ, alg, jwk (public, without kid)}, a random jti."""
    from joserfc import jwt

    key, alg, public = private_key(args.jwk)
    public.pop("kid", None)
    claims: dict[str, Any] = {
        "jti": str(uuid.uuid4()),
        "htm": args.method,
        "htu": htu_of(args.uri),
        "iat": args.iat,
    }
    if args.access_token is not None:
        claims["ath"] = token_hash(args.access_token)
    if args.nonce is not None:
        claims["nonce"] = args.nonce
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": public}
    print(jwt.encode(header, claims, key, algorithms=[alg]))


def sign_client_assertion(args: argparse.Namespace) -> None:
    """A private_key_jwt assertion the way Authlib's private_key_jwt_sign shapes it
    (iss = sub = client, aud, jti, iat, exp), with --typ in the header when given."""
    from joserfc import jwt

    key, alg, public = private_key(args.jwk)
    header: dict[str, Any] = {"alg": alg}
    if "kid" in public:
        header["kid"] = public["kid"]
    if args.typ is not None:
        header["typ"] = args.typ
    claims = {
        "iss": args.client_id,
        "sub": args.client_id,
        "aud": args.audience,
        "jti": str(uuid.uuid4()),
        "iat": args.iat,
        "exp": args.iat + args.lifetime,
    }
    print(jwt.encode(header, claims, key, algorithms=[alg]))


HANDLERS = {
    "verify-access-token": verify_access_token,
    "sign-dpop": sign_dpop,
    "sign-client-assertion": sign_client_assertion,
}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="oauth_interop.py")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    verify = sub.add_parser("verify-access-token")
    verify.add_argument("--jwks", required=True)
    verify.add_argument("--token", required=True)
    verify.add_argument("--issuer", required=True)
    verify.add_argument("--audience", required=True)
    verify.add_argument("--now", type=unix_seconds)

    dpop = sub.add_parser("sign-dpop")
    dpop.add_argument("--jwk", required=True)
    dpop.add_argument("--method", required=True)
    dpop.add_argument("--uri", required=True)
    dpop.add_argument("--access-token")
    dpop.add_argument("--nonce")
    dpop.add_argument("--iat", required=True, type=unix_seconds)

    assertion = sub.add_parser("sign-client-assertion")
    assertion.add_argument("--jwk", required=True)
    assertion.add_argument("--client-id", required=True)
    assertion.add_argument("--audience", required=True)
    assertion.add_argument("--iat", required=True, type=unix_seconds)
    assertion.add_argument("--lifetime", required=True, type=unix_seconds)
    assertion.add_argument("--typ")
    return parser


def main(argv: list[str]) -> int:
    def command() -> None:
        args = build_parser().parse_args(argv)
        HANDLERS[args.command](args)

    return run_command(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
