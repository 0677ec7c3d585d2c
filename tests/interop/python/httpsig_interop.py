#!/usr/bin/env python3
"""Lanyard interop driver for RFC 9421 HTTP Message Signatures: pyauth's http-message-signatures.

Lanyard's Rust test suite (crates/lanyard-core/tests/interop_httpsig.rs) runs this
script as a subprocess to check that requests Lanyard signs with its
draft-ietf-wimse-http-signature-07 profile (@path and @query; @query is "?" when the
request has none) verify with an independent RFC 9421
implementation, and that requests signed here verify with Lanyard. See
tests/interop/README.md for the contract.

    httpsig_interop.py sign --jwk <private-jwk-file> --request <request-json-file>
        [--mode wimse|library] [--audience <wimse-aud>] [--created <unix-seconds>]
        [--lifetime <seconds>] [--nonce <nonce>] [--label <label>] [--include-alg]
    httpsig_interop.py verify --jwk <jwk-file> --request <request-json-file>
        [--label <label>] [--audience <wimse-aud>] [--now <unix-seconds>]

A request file is a JSON object {"method", "url", "headers", "body"}: "url" is
absolute ("https://host/path?query"), "headers" a list of [name, value] pairs
(names may repeat), "body" a string (may be empty or absent).

Success: one line of compact JSON on stdout, exit status 0.
Failure: one line ``error: <message>`` on stderr, exit status 1.

The algorithm follows the JWK: OKP/Ed25519 is RFC 9421 ``ed25519`` (§3.3.6),
EC/P-256 is ``ecdsa-p256-sha256`` (§3.3.4, raw r||s).

What the library can and cannot do for the WIMSE profile (3.0.0):

* Signing: ``HTTPMessageSigner.sign()``/``prepare()`` always write ``keyid``
  (``key_id`` is a required argument) and know only the parameters created,
  keyid, alg, expires, nonce and tag, in that order; ``alg`` can be left out
  (``include_alg=False``). There is no way to add ``wimse-aud``. ``--mode
  library`` signs exactly that way. ``--mode wimse`` uses the library's public
  external-signer API instead: ``prepare()`` builds the base, the
  ``@signature-params`` line is replaced by the WIMSE parameters (no keyid/alg,
  plus wimse-aud), and ``apply()`` re-derives the signature base from the
  message and those parameters with the library's own code and refuses to
  attach the signature unless it equals the base that was signed.
* Verifying: ``HTTPMessageVerifier`` requires ``keyid`` (the profile forbids
  it) and rejects parameters outside its list (``wimse-aud``). ``verify`` here
  runs the library's ``verify()`` with two adjustments: the parameter list is
  extended (a class attribute meant for that), and a signature without
  ``keyid`` is checked with the --jwk key by a copy of the library's
  ``_verify_one`` minus the keyid lookup (everything else, including the
  signature base, is the library's code). A signature with ``keyid`` goes
  through the library unchanged, its key resolved by the JWK's ``kid``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import inspect
import json
import secrets
import sys
import types
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from http_sf.compat import Dictionary, InnerList

import http_message_signatures
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    PreparedSignature,
    VerifyResult,
    algorithms,
)
from http_message_signatures import signatures as hms_signatures

# draft-ietf-wimse-http-signature-07 §3: the target is covered as @path and @query, never
# @request-target (-06) or @authority.
WIMSE_TAG = "wimse-workload-to-workload"
WIMSE_LABEL = "wimse"
TARGET_COMPONENTS = ("@method", "@path", "@query")
# Header fields the profile requires covered whenever the request carries them.
PROFILE_FIELDS = ("content-type", "content-digest", "authorization", "txn-token", "workload-identity-token")
# Signature parameters of the profile that the library does not know.
WIMSE_PARAMETERS = frozenset({"wimse-aud", "wimse-sign-response"})
SIGNATURE_PARAMS_PREFIX = b'"@signature-params": '


class InteropError(Exception):
    """A usage or policy failure detected by this script itself."""


# --------------------------------------------------------------------------
# Input
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


class FieldLines:
    """Header field lines in wire order, with the mapping methods the library
    uses (``items``, iteration, ``in``, assignment, deletion). Names compare
    case-insensitively; assignment replaces every line of that name."""

    def __init__(self, lines: Iterable[tuple[str, str]]) -> None:
        self.lines = list(lines)

    def items(self) -> list[tuple[str, str]]:
        return list(self.lines)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self.lines))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n, _ in self.lines)

    def __setitem__(self, name: str, value: str) -> None:
        self.__delitem__(name)
        self.lines.append((name, value))

    def __delitem__(self, name: str) -> None:
        self.lines = [(n, v) for n, v in self.lines if n.lower() != name.lower()]


class Request:
    """The request interface the library reads: method, absolute url, headers
    (no ``status_code``, so it is treated as a request)."""

    def __init__(self, method: str, url: str, headers: FieldLines) -> None:
        self.method = method
        self.url = url
        self.headers = headers


def read_request(path: str) -> tuple[Request, bytes]:
    obj = read_json_object(path)
    method, url, headers, body = obj.get("method"), obj.get("url"), obj.get("headers", []), obj.get("body", "")
    if not isinstance(method, str) or not isinstance(url, str):
        raise InteropError(f'{path}: "method" and "url" must be strings')
    if not isinstance(headers, list) or not all(
        isinstance(h, list) and len(h) == 2 and all(isinstance(p, str) for p in h) for h in headers
    ):
        raise InteropError(f'{path}: "headers" must be a list of [name, value] string pairs')
    if not isinstance(body, str):
        raise InteropError(f'{path}: "body" must be a string')
    return Request(method, url, FieldLines((n, v) for n, v in headers)), body.encode("utf-8")


def b64url_int(jwk: dict[str, Any], member: str) -> int:
    return int.from_bytes(b64url_bytes(jwk, member), "big")


def b64url_bytes(jwk: dict[str, Any], member: str) -> bytes:
    value = jwk.get(member)
    if not isinstance(value, str):
        raise InteropError(f'the JWK has no "{member}" member')
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def load_jwk(path: str, *, private: bool) -> tuple[type[algorithms.HTTPSignatureAlgorithm], Any, dict[str, Any]]:
    """The RFC 9421 algorithm for the JWK and its key as a cryptography object."""
    jwk = read_json_object(path)
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if private and "d" not in jwk:
        raise InteropError(f"{path}: signing needs a private JWK (with d)")
    if kty == "OKP" and crv == "Ed25519":
        public = ed25519.Ed25519PublicKey.from_public_bytes(b64url_bytes(jwk, "x"))
        if not private:
            return algorithms.ED25519, public, jwk
        key = ed25519.Ed25519PrivateKey.from_private_bytes(b64url_bytes(jwk, "d"))
        if key.public_key() != public:
            raise InteropError(f"{path}: d does not match x")
        return algorithms.ED25519, key, jwk
    if kty == "EC" and crv == "P-256":
        numbers = ec.EllipticCurvePublicNumbers(b64url_int(jwk, "x"), b64url_int(jwk, "y"), ec.SECP256R1())
        if not private:
            return algorithms.ECDSA_P256_SHA256, numbers.public_key(), jwk
        key = ec.derive_private_key(b64url_int(jwk, "d"), ec.SECP256R1())
        if key.public_key().public_numbers() != numbers:
            raise InteropError(f"{path}: d does not match x and y")
        return algorithms.ECDSA_P256_SHA256, key, jwk
    raise InteropError(f"{path}: unsupported key (kty {kty!r}, crv {crv!r}); need OKP/Ed25519 or EC/P-256")


def print_json(value: Any) -> None:
    print(json.dumps(value, separators=(",", ":")))


def covered_fields(request: Request) -> list[str]:
    """The profile's header fields present on the request, lowercase."""
    return [f for f in PROFILE_FIELDS if f in request.headers]


# --------------------------------------------------------------------------
# sign
# --------------------------------------------------------------------------


def wimse_parameters(prepared: PreparedSignature, audience: str) -> PreparedSignature:
    """The prepared signature with WIMSE parameters: keyid and alg removed,
    wimse-aud added after tag. Only the ``@signature-params`` line of the base
    changes; apply() re-derives the whole base and checks it."""
    parsed = Dictionary()
    parsed.parse(("p=" + prepared.signature_params).encode())
    node = parsed["p"]
    if not isinstance(node, InnerList):
        raise InteropError(f"prepare() returned unexpected parameters {prepared.signature_params!r}")
    params = {k: v for k, v in node.params.items() if k not in ("keyid", "alg")}
    params["wimse-aud"] = audience
    rewritten = InnerList(list(node))
    rewritten.params.update(params)
    head, sep, last = prepared.signature_base.rpartition(b"\n")
    if not sep or not last.startswith(SIGNATURE_PARAMS_PREFIX):
        raise InteropError("prepare() returned a signature base without a final @signature-params line")
    params_str = str(rewritten)
    return PreparedSignature(
        signature_base=head + b"\n" + SIGNATURE_PARAMS_PREFIX + params_str.encode("ascii"),
        signature_params=params_str,
        label=prepared.label,
        algorithm_id=prepared.algorithm_id,
    )


def sign(args: argparse.Namespace) -> None:
    alg, key, jwk = load_jwk(args.jwk, private=True)
    request, body = read_request(args.request)
    if args.mode == "wimse" and args.audience is None:
        raise InteropError("--mode wimse needs --audience (wimse-aud)")
    if args.mode == "library" and args.audience is not None:
        raise InteropError("--mode library cannot sign wimse-aud (the library has no custom parameters)")
    key_id = jwk.get("kid")
    if not isinstance(key_id, str):
        if args.mode == "library":
            raise InteropError(f"{args.jwk}: the library always signs a keyid; the JWK needs a kid")
        key_id = "unused"  # dropped again by wimse_parameters

    created = args.created
    if created is None:
        created = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    as_datetime = lambda t: datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc)  # noqa: E731
    signer = HTTPMessageSigner(signature_algorithm=alg)
    # sign() is prepare() + algorithm.sign() + apply(); it is spelled out so that
    # the signature base can be printed and, in wimse mode, the parameters replaced.
    prepared = signer.prepare(
        request,
        key_id=key_id,
        created=as_datetime(created),
        expires=as_datetime(created + args.lifetime),
        nonce=args.nonce if args.nonce is not None else secrets.token_urlsafe(16),
        label=args.label,
        tag=WIMSE_TAG,
        include_alg=args.include_alg,
        covered_component_ids=[*TARGET_COMPONENTS, *covered_fields(request)],
        # With content, prepare() adds Content-Digest (sha-256) and covers it.
        body=body or None,
    )
    if args.mode == "wimse":
        prepared = wimse_parameters(prepared, args.audience)
    signature = alg(private_key=key).sign(prepared.signature_base)
    signer.apply(request, prepared, signature)
    print_json(
        {
            "headers": [[n, v] for n, v in request.headers.items()],
            "signature_base": prepared.signature_base.decode("ascii"),
        }
    )


# --------------------------------------------------------------------------
# verify
# --------------------------------------------------------------------------


@contextlib.contextmanager
def pinned_clock(pinned: int | None) -> Iterator[None]:
    """Makes the library's created/expires checks see `pinned` as the time.

    ``HTTPMessageVerifier.validate_created_and_expires`` calls
    ``datetime.datetime.now(datetime.timezone.utc)`` through the module name
    ``datetime`` in ``http_message_signatures.signatures``. For the block that
    name is a stand-in whose ``datetime.now()`` returns `pinned`, so the
    library's own checks (and its clock skew) run unchanged.
    """
    if pinned is None:
        yield
        return
    if getattr(hms_signatures, "datetime", None) is not datetime:
        raise InteropError("cannot pin the clock: http_message_signatures.signatures no longer imports datetime")

    class PinnedDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> datetime.datetime:  # type: ignore[override]
            return datetime.datetime.fromtimestamp(pinned, tz)

    stand_in = types.SimpleNamespace(
        datetime=PinnedDatetime, timezone=datetime.timezone, timedelta=datetime.timedelta
    )
    hms_signatures.datetime = stand_in  # type: ignore[assignment]
    try:
        yield
    finally:
        hms_signatures.datetime = datetime  # type: ignore[assignment]


def check_library_internals() -> None:
    """KeylessVerifier copies and calls private methods of 3.0.0: fail loudly
    if an upgrade changed them, rather than verify something else."""
    expected = {
        "_verify_one": ["self", "label", "sig_input", "signature", "message", "max_age", "component_resolver_factory"],
        "_build_signature_base": ["self", "message", "covered_component_ids", "signature_params", "component_resolver"],
    }
    for name, params in expected.items():
        method = getattr(HTTPMessageVerifier, name, None)
        if method is None or list(inspect.signature(method).parameters) != params:
            raise InteropError(
                f"http-message-signatures {http_message_signatures_version()} changed HTTPMessageVerifier.{name}; "
                "review KeylessVerifier in httpsig_interop.py"
            )


def http_message_signatures_version() -> str:
    from importlib.metadata import version

    return version(http_message_signatures.__name__.replace("_", "-"))


class KeylessVerifier(HTTPMessageVerifier):
    """The library's verifier, accepting the WIMSE parameters and, for a
    signature without ``keyid``, using the one key it was given."""

    signature_metadata_parameters = HTTPMessageVerifier.signature_metadata_parameters | WIMSE_PARAMETERS

    def __init__(self, *, public_key: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.public_key = public_key

    def _verify_one(  # type: ignore[no-untyped-def]
        self, *, label, sig_input, signature, message, max_age, component_resolver_factory=None
    ):
        if "keyid" in sig_input.params:
            return super()._verify_one(
                label=label,
                sig_input=sig_input,
                signature=signature,
                message=message,
                max_age=max_age,
                component_resolver_factory=component_resolver_factory,
            )
        # HTTPMessageVerifier._verify_one (3.0.0) without the keyid requirement
        # and key lookup: the WIMSE profile takes the key from the WIT.
        self.validate_created_and_expires(sig_input, max_age=max_age)
        if "alg" in sig_input.params and sig_input.params["alg"] != self.signature_algorithm.algorithm_id:
            raise InvalidSignature("Unexpected algorithm specified in the signature")
        for param in sig_input.params:
            if param not in self.signature_metadata_parameters:
                raise InvalidSignature(f'Unexpected signature metadata parameter "{param}"')
        try:
            verifier = self.signature_algorithm(public_key=self.public_key)
            sig_base, sig_params_node, sig_elements = self._build_signature_base(
                message,
                covered_component_ids=list(sig_input),
                signature_params=sig_input.params,
                component_resolver=component_resolver_factory() if component_resolver_factory is not None else None,
            )
            verifier.verify(signature=signature.value, message=sig_base.encode())
        except InvalidSignature:
            raise
        except Exception as e:  # noqa: BLE001 - same mapping as the library
            raise InvalidSignature(e) from e
        return VerifyResult(
            label=label,
            algorithm=self.signature_algorithm,
            covered_components=sig_elements,
            parameters=dict(sig_params_node.params),
            body=None,
            nonce=sig_input.params.get("nonce"),
        )


def verify(args: argparse.Namespace) -> None:
    check_library_internals()
    alg, public_key, jwk = load_jwk(args.jwk, private=False)
    request, body = read_request(args.request)
    kid = jwk.get("kid")
    verifier = KeylessVerifier(
        signature_algorithm=alg,
        key_resolver=MappingKeyResolver(public_keys={kid: public_key} if isinstance(kid, str) else {}, private_keys={}),
        public_key=public_key,
    )
    with pinned_clock(args.now):
        results = verifier.verify(
            request,
            expect_tag=WIMSE_TAG,
            expect_label=args.label,
            require_components=[*TARGET_COMPONENTS, *covered_fields(request)],
            # Checks Content-Digest against the body and requires it covered
            # whenever there is content.
            body=body,
        )
    if len(results) != 1:
        raise InteropError(f"{len(results)} signatures have tag={WIMSE_TAG}; need exactly one")
    result = results[0]
    params = {k: v.decode("latin-1") if isinstance(v, bytes) else v for k, v in result.parameters.items()}
    if args.audience is not None and params.get("wimse-aud") != args.audience:
        raise InteropError(f"wimse-aud is {json.dumps(params.get('wimse-aud'))}, expected {json.dumps(args.audience)}")
    print_json(
        {
            "label": result.label,
            "covered": [c for c in result.covered_components if c != '"@signature-params"'],
            "params": params,
            "signature_base": "\n".join(f"{k}: {v}" for k, v in result.covered_components.items()),
        }
    )


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting with 2, so
    usage errors follow the same `error: ...` / exit 1 contract."""

    def error(self, message: str) -> NoReturn:
        raise InteropError(f"{self.prog}: {message}")


def integer(value: str) -> int:
    try:
        return int(value, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {value!r}") from None


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="httpsig_interop.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    s = commands.add_parser("sign")
    s.add_argument("--jwk", required=True, help="private JWK file (OKP/Ed25519 or EC/P-256)")
    s.add_argument("--request", required=True, help="request JSON file")
    s.add_argument(
        "--mode",
        choices=["wimse", "library"],
        default="wimse",
        help="wimse: WIMSE parameters via prepare()/apply(); library: sign() as is (keyid, no wimse-aud)",
    )
    s.add_argument("--audience", help="wimse-aud (wimse mode only)")
    s.add_argument("--created", type=integer, help="created, Unix seconds (default: now)")
    s.add_argument("--lifetime", type=integer, default=60, help="expires - created, seconds (default 60)")
    s.add_argument("--nonce", help="nonce (default: 16 random bytes, base64url)")
    s.add_argument("--label", default=WIMSE_LABEL, help=f"signature label (default {WIMSE_LABEL})")
    s.add_argument("--include-alg", action="store_true", help="also sign the alg parameter")

    v = commands.add_parser("verify")
    v.add_argument("--jwk", required=True, help="public (or private) JWK file")
    v.add_argument("--request", required=True, help="request JSON file")
    v.add_argument("--label", help="also require this signature label")
    v.add_argument("--audience", help="wimse-aud must equal this")
    v.add_argument("--now", type=integer, help="current time, Unix seconds")
    return parser


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
        {"sign": sign, "verify": verify}[args.command](args)
    except Exception as e:  # noqa: BLE001 - every failure maps to exit 1
        message = str(e)
        if not message and e.__cause__ is not None:
            # The library wraps cryptography's message-less InvalidSignature.
            message = f"{type(e.__cause__).__module__}.{type(e.__cause__).__name__}"
        if not isinstance(e, InteropError):
            message = f"{type(e).__name__}: {message}" if message else type(e).__name__
        print("error: " + " ".join(message.split()), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
