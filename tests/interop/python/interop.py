#!/usr/bin/env python3
"""Lanyard interop driver for two Python JOSE libraries: joserfc and PyJWT.

Lanyard's Rust test suite runs this script as a subprocess to check that
tokens Lanyard signs verify with independent JOSE implementations, and that
tokens signed here verify with Lanyard. tests/interop/node/interop.mjs
implements the same command-line contract on top of panva/jose; see
tests/interop/README.md for the contract.

    interop.py verify --lib joserfc|pyjwt --jwks <file> --token <compact-jws>
                      --typ <typ> [--audience <aud>] [--now <unix-seconds>]
    interop.py sign --lib joserfc|pyjwt --jwk <private-jwk-file>
                    --claims <claims-json-file> --typ <typ> [--kid <kid> | --no-kid]
    interop.py thumbprint --lib joserfc --jwk <file>

Success: the result goes to stdout as one line, exit status 0.
Failure: one line ``error: <message>`` goes to stderr, exit status 1.

Neither library checks the JOSE ``typ`` header during JWT verification, so
both code paths compare it themselves, exactly, after the signature has been
verified.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

# The only JWS algorithms the interop contract allows. Everything else,
# including "none" and the HMAC family, must be rejected by `verify`.
ALLOWED_ALGORITHMS = ["ES256", "ES384", "EdDSA", "RS256", "PS256"]

# Clock skew tolerated on exp/nbf/iat, in seconds.
CLOCK_TOLERANCE_SECONDS = 60


class InteropError(Exception):
    """A usage or policy failure detected by this script itself."""


# --------------------------------------------------------------------------
# Helpers shared by both libraries
# --------------------------------------------------------------------------


def read_json_object(path: str) -> dict[str, Any]:
    """Reads a file that must hold a single JSON object."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except OSError as e:
        raise InteropError(f"cannot read {path}: {e.strerror}") from e
    except ValueError as e:
        raise InteropError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise InteropError(f"{path} must contain a JSON object")
    return value


def print_claims(claims: dict[str, Any]) -> None:
    """Prints claims as one line of compact JSON, like JSON.stringify."""
    print(json.dumps(claims, separators=(",", ":"), ensure_ascii=False))


def check_kid_rule(header: dict[str, Any], jwks: dict[str, Any]) -> None:
    """Contract: a token without ``kid`` may only be verified against a set
    that holds exactly one key."""
    keys = jwks.get("keys")
    count = len(keys) if isinstance(keys, list) else 0
    if "kid" not in header and count != 1:
        raise InteropError(f"token has no kid and the JWKS holds {count} keys (need exactly 1)")


def check_typ(header: dict[str, Any], expected: str) -> None:
    """Contract: the JOSE ``typ`` header must equal --typ exactly."""
    actual = header.get("typ")
    if actual != expected:
        raise InteropError(f"typ header is {json.dumps(actual)}, expected exactly {json.dumps(expected)}")


def signing_header(jwk: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Builds the protected header {alg, typ, kid} for `sign`.

    alg is the JWK's own "alg" member; kid is --kid, else the JWK's kid, and
    is left out with --no-kid (or when there is none).
    """
    alg = jwk.get("alg")
    if not isinstance(alg, str):
        raise InteropError(f'{args.jwk}: the private JWK must carry an "alg" member')
    header: dict[str, Any] = {"alg": alg, "typ": args.typ}
    if not args.no_kid:
        kid = args.kid if args.kid is not None else jwk.get("kid")
        if kid is not None:
            header["kid"] = kid
    return header


# --------------------------------------------------------------------------
# joserfc
# --------------------------------------------------------------------------


def joserfc_verify(args: argparse.Namespace) -> None:
    from joserfc import jws, jwt
    from joserfc.jwk import KeySet

    jwks = read_json_object(args.jwks)
    header = jws.extract_compact(args.token.encode()).headers()
    check_kid_rule(header, jwks)

    # KeySet picks the key by kid (or the only key when there is no kid),
    # skipping keys whose "alg"/"use" rule them out; jwt.decode checks the
    # algorithm allow-list, the key type and curve, and the signature.
    # Claims are validated in a separate step.
    key_set = KeySet.import_key_set(jwks)
    token = jwt.decode(args.token, key_set, algorithms=ALLOWED_ALGORITHMS)
    check_typ(token.header, args.typ)

    claim_rules: dict[str, Any] = {"exp": {"essential": True}}
    if args.audience is not None:
        # "value" matches a string aud equal to it, or an array aud holding it.
        claim_rules["aud"] = {"essential": True, "value": args.audience}
    registry = jwt.JWTClaimsRegistry(now=args.now, leeway=CLOCK_TOLERANCE_SECONDS, **claim_rules)
    registry.validate(token.claims)

    print_claims(token.claims)


def joserfc_sign(args: argparse.Namespace) -> None:
    from joserfc import jwk as joserfc_jwk
    from joserfc import jwt

    jwk = read_json_object(args.jwk)
    claims = read_json_object(args.claims)
    header = signing_header(jwk, args)
    key = joserfc_jwk.import_key(jwk)
    # algorithms=[alg] lets joserfc use algorithms outside its "recommended"
    # default set (it treats EdDSA as deprecated in favour of RFC 9864's
    # Ed25519); joserfc still checks that the key suits the algorithm.
    print(jwt.encode(header, claims, key, algorithms=[header["alg"]]))


def joserfc_thumbprint(args: argparse.Namespace) -> None:
    from joserfc import jwk as joserfc_jwk

    key = joserfc_jwk.import_key(read_json_object(args.jwk))
    # RFC 7638 with joserfc's default digest, SHA-256.
    print(key.thumbprint())


# --------------------------------------------------------------------------
# PyJWT
# --------------------------------------------------------------------------


def pyjwt_select_jwk(jwks: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
    """Picks the verification JWK for a token header.

    PyJWT's own PyJWKSet binds every key to one algorithm up front (an RSA
    key without "alg" becomes RS256, so it could never check a PS256 token),
    so the key is chosen here instead: by kid, or the only key when the
    token has no kid. Keys meant for encryption ("use": "enc") never match.
    """
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
        raise InteropError('the JWKS must be an object with a "keys" array of JWK objects')
    usable = [k for k in keys if k.get("use", "sig") == "sig"]
    if "kid" not in header:
        if len(usable) == 1:
            return usable[0]
        raise InteropError("token has no kid and the JWKS does not hold exactly one signing key")
    for jwk in usable:
        if jwk.get("kid") == header["kid"]:
            return jwk
    raise InteropError(f"no key in the JWKS for kid {json.dumps(header['kid'])}")


@contextlib.contextmanager
def pyjwt_clock(pinned: int | None) -> Iterator[None]:
    """Makes PyJWT's claim checks see `pinned` as the current time.

    PyJWT has no way to pass "now" to jwt.decode: its exp/nbf/iat checks call
    ``datetime.now(tz=timezone.utc)`` through the name ``datetime`` that
    ``jwt.api_jwt`` imports. For the duration of the block that name is
    replaced by a datetime subclass whose now() returns `pinned`, so PyJWT's
    own checks (and its leeway) run unchanged against the pinned clock.
    """
    if pinned is None:
        yield
        return

    import jwt.api_jwt as api_jwt

    real_datetime = getattr(api_jwt, "datetime", None)
    if real_datetime is not datetime.datetime:
        # Fail loudly rather than silently verify against the wall clock.
        raise InteropError("cannot pin PyJWT's clock: jwt.api_jwt no longer imports datetime.datetime")

    class PinnedDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> datetime.datetime:
            return datetime.datetime.fromtimestamp(pinned, tz)

    api_jwt.datetime = PinnedDatetime  # type: ignore[misc]
    try:
        yield
    finally:
        api_jwt.datetime = real_datetime  # type: ignore[misc]


def pyjwt_verify(args: argparse.Namespace) -> None:
    import jwt

    jwks = read_json_object(args.jwks)
    header = jwt.get_unverified_header(args.token)
    check_kid_rule(header, jwks)

    alg = header.get("alg")
    if alg not in ALLOWED_ALGORITHMS:
        raise InteropError(f"algorithm {json.dumps(alg)} is not allowed")
    jwk = pyjwt_select_jwk(jwks, header)
    # A JWK with "alg" is bound to it (PyJWT rejects a token whose alg
    # differs); a JWK without one is bound to the token's (allow-listed)
    # alg, and Algorithm.from_jwk / prepare_key then reject a key of the
    # wrong type or curve for it.
    key = jwt.PyJWK(jwk, algorithm=None if "alg" in jwk else alg)

    with pyjwt_clock(args.now):
        decoded = jwt.decode_complete(
            args.token,
            key,
            algorithms=ALLOWED_ALGORITHMS,
            audience=args.audience,
            leeway=CLOCK_TOLERANCE_SECONDS,
            options={
                "require": ["exp"],
                # Without --audience the aud claim is not checked (PyJWT
                # would otherwise reject every token that carries one).
                "verify_aud": args.audience is not None,
            },
        )
    check_typ(decoded["header"], args.typ)

    print_claims(decoded["payload"])


def pyjwt_sign(args: argparse.Namespace) -> None:
    import jwt

    jwk = read_json_object(args.jwk)
    claims = read_json_object(args.claims)
    header = signing_header(jwk, args)
    # PyJWK builds the private key via algorithms.*.from_jwk for the JWK's alg.
    key = jwt.PyJWK(jwk)
    # PyJWT adds {"typ": "JWT", "alg": ...} and then overlays `headers`, so
    # the resulting header is exactly {alg, typ[, kid]}.
    print(jwt.encode(claims, key, algorithm=header["alg"], headers=header))


def pyjwt_thumbprint(args: argparse.Namespace) -> NoReturn:
    raise InteropError("PyJWT has no RFC 7638 thumbprint API; use --lib joserfc")


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

HANDLERS = {
    ("verify", "joserfc"): joserfc_verify,
    ("verify", "pyjwt"): pyjwt_verify,
    ("sign", "joserfc"): joserfc_sign,
    ("sign", "pyjwt"): pyjwt_sign,
    ("thumbprint", "joserfc"): joserfc_thumbprint,
    ("thumbprint", "pyjwt"): pyjwt_thumbprint,
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting with 2, so
    usage errors follow the same `error: ...` / exit 1 contract."""

    def error(self, message: str) -> NoReturn:
        raise InteropError(f"{self.prog}: {message}")


def unix_seconds(value: str) -> int:
    """Parses --now: a whole number of seconds since the Unix epoch."""
    try:
        return int(value, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer number of seconds, got {value!r}") from None


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="interop.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    def add_command(name: str) -> ArgumentParser:
        sub = commands.add_parser(name)
        sub.add_argument("--lib", required=True, choices=["joserfc", "pyjwt"])
        return sub

    verify = add_command("verify")
    verify.add_argument("--jwks", required=True, help="JWK Set file")
    verify.add_argument("--token", required=True, help="compact JWS")
    verify.add_argument("--typ", required=True, help="expected typ header, matched exactly")
    verify.add_argument("--audience", help="audience the aud claim must contain")
    verify.add_argument("--now", type=unix_seconds, help="current time, Unix seconds")

    sign = add_command("sign")
    sign.add_argument("--jwk", required=True, help="private JWK file; must carry alg")
    sign.add_argument("--claims", required=True, help="JSON object file to sign")
    sign.add_argument("--typ", required=True, help="typ header value")
    kid = sign.add_mutually_exclusive_group()
    kid.add_argument("--kid", help="kid header (default: the JWK's kid)")
    kid.add_argument("--no-kid", action="store_true", help="omit the kid header")

    thumbprint = add_command("thumbprint")
    thumbprint.add_argument("--jwk", required=True, help="JWK file")

    return parser


def run_command(command: Callable[[], None]) -> int:
    """Runs one driver command under the output contract: exit status 0, or one
    ``error: ...`` line on stderr and exit status 1 (shared with oauth_interop.py)."""
    # joserfc emits a SecurityWarning whenever "EdDSA" is used (RFC 9864
    # deprecates it in favour of "Ed25519"); EdDSA is part of the contract,
    # so keep stderr clean.
    warnings.filterwarnings("ignore", message="EdDSA is deprecated")
    try:
        command()
    except Exception as e:  # noqa: BLE001 - every failure maps to exit 1
        message = str(e) or type(e).__name__
        if not isinstance(e, InteropError):
            # Library exceptions: name the type, it is often the clearest part.
            message = f"{type(e).__name__}: {message}"
        print("error: " + " ".join(message.split()), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    def command() -> None:
        args = build_parser().parse_args(argv)
        HANDLERS[(args.command, args.lib)](args)

    return run_command(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
