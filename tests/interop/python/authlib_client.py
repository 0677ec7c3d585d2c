#!/usr/bin/env python3
"""Lanyard OAuth client interop driver for Authlib: discovers an authorization server
through its RFC 8414 metadata and runs ``client_credentials`` with ``private_key_jwt``,
or asks its Transaction Token Service for a Txn-Token (an RFC 8693 token exchange with
``requested_token_type=urn:ietf:params:oauth:token-type:txn_token`` and a JSON
``request_context``, draft-ietf-oauth-transaction-tokens-11).

Authlib's ``PrivateKeyJWT`` puts the token endpoint in ``aud``; rfc7523bis requires the
issuer identifier as the sole ``aud`` (and Lanyard enforces it), so the assertion is
signed with ``aud`` = the issuer from the metadata, a fresh ``jti`` and a 60 s lifetime.

crates/lanyard-server/tests/oauth_interop.rs (client_credentials) and
crates/lanyard-server/tests/oauth_exchange.rs (txn-token) run it against a running
Lanyard server:

    authlib_client.py client-credentials --issuer <iss> --client-id <id>
                      --jwk <private-jwk-file> [--scope <s>] [--resource <uri>]
    authlib_client.py txn-token --issuer <iss> --client-id <id> --jwk <private-jwk-file>
                      --subject-token <jwt> --subject-token-type <uri> --audience <trust domain>
                      --scope <s> [--request-context <json>] [--request-details <json>]

Success: the token response on stdout as one JSON line, exit status 0.
Failure: one line ``error: <message>`` on stderr, exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

warnings.simplefilter("ignore")  # authlib.jose deprecation notices

import requests  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign  # noqa: E402
from joserfc.jwk import ECKey  # noqa: E402


def session(args: argparse.Namespace) -> tuple[OAuth2Session, str]:
    """An Authlib session for the client, and the token endpoint from the metadata."""
    metadata = requests.get(
        args.issuer.rstrip("/") + "/.well-known/oauth-authorization-server", timeout=10
    ).json()
    if metadata.get("issuer") != args.issuer:
        raise ValueError(f"metadata issuer {metadata.get('issuer')!r} is not {args.issuer!r}")
    token_endpoint = metadata["token_endpoint"]
    with open(args.jwk, encoding="utf-8") as f:
        jwk = json.load(f)
    key = ECKey.import_key(jwk)
    issuer = metadata["issuer"]

    class IssuerAudience(PrivateKeyJWT):
        def sign(self, auth, token_endpoint):  # noqa: ARG002 - aud is the issuer
            return private_key_jwt_sign(
                auth.client_secret,
                client_id=auth.client_id,
                token_endpoint=issuer,
                alg=self.alg,
                claims={},
                header={"kid": jwk["kid"]},
                expires_in=60,
            )

    oauth = OAuth2Session(args.client_id, key, token_endpoint_auth_method="private_key_jwt")
    oauth.register_client_auth_method(IssuerAudience(token_endpoint, alg="ES256"))
    return oauth, token_endpoint


def client_credentials(args: argparse.Namespace) -> None:
    oauth, token_endpoint = session(args)
    extra = {}
    if args.resource:
        extra["resource"] = args.resource
    token = oauth.fetch_token(
        token_endpoint, grant_type="client_credentials", scope=args.scope, **extra
    )
    print(json.dumps({k: token.get(k) for k in ("access_token", "token_type", "expires_in", "scope")}))


def txn_token(args: argparse.Namespace) -> None:
    oauth, token_endpoint = session(args)
    extra = {
        "subject_token": args.subject_token,
        "subject_token_type": args.subject_token_type,
        "requested_token_type": "urn:ietf:params:oauth:token-type:txn_token",
        "audience": args.audience,
    }
    # JSON objects, form-encoded as they are (not base64url since -07).
    for name in ("request_context", "request_details"):
        value = getattr(args, name)
        if value is not None:
            json.loads(value)
            extra[name] = value
    token = oauth.fetch_token(
        token_endpoint,
        grant_type="urn:ietf:params:oauth:grant-type:token-exchange",
        scope=args.scope,
        **extra,
    )
    keys = ("access_token", "token_type", "issued_token_type", "expires_in", "scope", "refresh_token")
    print(json.dumps({k: token.get(k) for k in keys}))


def main() -> None:
    parser = argparse.ArgumentParser(prog="authlib_client.py")
    sub = parser.add_subparsers(dest="command", required=True)
    cc = sub.add_parser("client-credentials")
    cc.add_argument("--issuer", required=True)
    cc.add_argument("--client-id", required=True)
    cc.add_argument("--jwk", required=True)
    cc.add_argument("--scope")
    cc.add_argument("--resource")
    tt = sub.add_parser("txn-token")
    for name in ("--issuer", "--client-id", "--jwk", "--subject-token", "--subject-token-type", "--audience", "--scope"):
        tt.add_argument(name, required=True)
    tt.add_argument("--request-context")
    tt.add_argument("--request-details")
    args = parser.parse_args()
    try:
        if args.command == "txn-token":
            txn_token(args)
        else:
            client_credentials(args)
    except Exception as e:  # noqa: BLE001 - the driver contract: one error line
        print(f"error: {type(e).__name__}: {e}".replace("\n", " "), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
