"""OAuth client authentication with a JWT-SVID (`jwt-spiffe`) fetched by py-spiffe.

    SPIFFE_ENDPOINT_SOCKET=unix:///path/api.sock \
        spiffe_client_auth.py --issuer <url> --client-id <id> [--client-id <id> ...]

Discovers the authorization server through its RFC 8414 metadata
(`<issuer>/.well-known/oauth-authorization-server`), fetches one JWT-SVID whose only
audience is the issuer identifier from the Workload API with py-spiffe's
`WorkloadApiClient` as shipped, and POSTs one `client_credentials` request per
`--client-id` to the token endpoint with `requests`, the JWT-SVID as the client
assertion (draft-ietf-oauth-spiffe-client-auth: `client_assertion_type`
`urn:ietf:params:oauth:client-assertion-type:jwt-spiffe`, `client_id` required). The same
SVID goes with every `client_id`, so a test can show one client accepting it and another
refusing it.

Prints one line of JSON: {"library", "version", "metadata": {"issuer", "token_endpoint",
"token_endpoint_auth_methods_supported"}, "svid": {"spiffe_id", "audience"}, "responses":
[{"client_id", "status", "body"}]}, or {"library", "version", "error"} when a step before
the token requests fails. The response bodies hold the access tokens the test checks; the
SVID itself is never printed. Exit status 0 when a report was printed, 2 on bad usage.
"""

import argparse
import json
from importlib.metadata import version

import requests
from spiffe import WorkloadApiClient

JWT_SPIFFE = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"
TIMEOUT = 15


def discover(issuer):
    """The RFC 8414 metadata of `issuer` (an issuer without a path)."""
    response = requests.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=TIMEOUT)
    response.raise_for_status()
    metadata = response.json()
    if metadata.get("issuer") != issuer:
        raise AssertionError(f"metadata issuer {metadata.get('issuer')!r} != {issuer!r}")
    return metadata


def token_request(token_endpoint, client_id, svid_token):
    """One client_credentials request authenticated with the JWT-SVID: status and body."""
    response = requests.post(
        token_endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_assertion_type": JWT_SPIFFE,
            "client_assertion": svid_token,
        },
        timeout=TIMEOUT,
    )
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return {"client_id": client_id, "status": response.status_code, "body": body}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--client-id", action="append", required=True)
    args = parser.parse_args()
    report = {"library": "py-spiffe", "version": version("spiffe")}
    try:
        metadata = discover(args.issuer)
        report["metadata"] = {
            key: metadata.get(key)
            for key in ("issuer", "token_endpoint", "token_endpoint_auth_methods_supported")
        }
        # The audience is the issuer identifier and nothing else (the draft's rule).
        with WorkloadApiClient(default_timeout=TIMEOUT) as client:
            svid = client.fetch_jwt_svid(audience={metadata["issuer"]})
        report["svid"] = {"spiffe_id": str(svid.spiffe_id), "audience": sorted(svid.audience)}
        report["responses"] = [
            token_request(metadata["token_endpoint"], client_id, svid.token)
            for client_id in args.client_id
        ]
    except Exception as e:  # the report carries every failure
        report["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(report))


if __name__ == "__main__":
    main()
