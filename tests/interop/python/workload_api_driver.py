"""Drives a running SPIFFE Workload API (SPIFFE_ENDPOINT_SOCKET) with py-spiffe.

    workload_api_driver.py --spiffe-id <expected ID> --audience <aud> --forbidden-id <ID>
                           [--rotation-timeout <seconds>]

Prints one line of JSON: {"library", "version", "checks": {name: {"ok", ...}}}. Every
check runs even after one fails; a failed check has "ok": false and an "error". The
exit status is 0 when the report was printed (whatever it says) and 2 on bad usage.

py-spiffe runs exactly as shipped. The first check, "stock_client", is one
FetchX509Bundles call on a fresh client: gRPC C-core (1.57+) sends the percent-encoded
socket path as HTTP/2 :authority (e.g. `tmp%2Fagent%2Fapi.sock`), which the agent must
accept; see tests/interop/README.md.

Chains are verified with `cryptography` (its X.509 path validation, against the X.509
bundle the Workload API returned); JWT-SVIDs with py-spiffe's own
JwtSvid.parse_and_validate against the fetched JWT bundle, and through the Workload
API's ValidateJWTSVID.
"""

import argparse
import base64
import json
import queue
import sys
import time
from importlib.metadata import version

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store
from spiffe import JwtSvid, SpiffeId, TrustDomain, WorkloadApiClient


def spki(public_key):
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def serial_of(svid):
    return format(svid.leaf.serial_number, "x")


def grpc_code(error):
    """The gRPC status code behind a py-spiffe error (it keeps the RpcError as __cause__)."""
    cause = error
    while cause is not None:
        if isinstance(cause, grpc.RpcError) and isinstance(cause, grpc.Call):
            return cause.code().name, cause.details()
        cause = cause.__cause__
    return None, None


def check_svid(svid, bundle_set, expected_id):
    """Verifies the SVID's chain up to its trust domain's X.509 bundle and its key pair."""
    if str(svid.spiffe_id) != expected_id:
        raise AssertionError(f"SPIFFE ID {svid.spiffe_id} != {expected_id}")
    td = svid.spiffe_id.trust_domain
    bundle = bundle_set.get_bundle_for_trust_domain(td)
    if bundle is None:
        raise AssertionError(f"no X.509 bundle for {td}")
    roots = list(bundle.x509_authorities)
    chain = svid.cert_chain
    leaf = chain[0]
    # cryptography's RFC 5280 path validation, with the client-certificate policy
    # (SPIFFE X.509-SVIDs authenticate TLS clients and servers).
    verifier = PolicyBuilder().store(Store(roots)).build_client_verifier()
    verified = verifier.verify(leaf, chain[1:])
    uris = [
        n.value for n in (verified.subjects or []) if isinstance(n, x509.UniformResourceIdentifier)
    ]
    if uris != [expected_id]:
        raise AssertionError(f"verified URI SANs {uris} != [{expected_id}]")
    # The key pair: same public key, and a signature made with the private key verifies
    # with the leaf's public key.
    key = svid.private_key
    if spki(key.public_key()) != spki(leaf.public_key()):
        raise AssertionError("the private key does not match the leaf certificate")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        sig = key.sign(b"lanyard interop", ec.ECDSA(hashes.SHA256()))
        leaf.public_key().verify(sig, b"lanyard interop", ec.ECDSA(hashes.SHA256()))
    return {
        "spiffe_id": str(svid.spiffe_id),
        "serial": serial_of(svid),
        "chain_length": len(chain),
        "chain_verified": True,
        "key_matches": True,
        "key_type": type(key).__name__,
    }


def x509_svid(client, args):
    ctx = client.fetch_x509_context()
    details = check_svid(ctx.default_svid, ctx.x509_bundle_set, args.spiffe_id)
    details["svids"] = len(ctx.x509_svids)
    return details


def x509_bundles(client, args):
    bundles = client.fetch_x509_bundles()
    td = SpiffeId(args.spiffe_id).trust_domain
    bundle = bundles.get_bundle_for_trust_domain(td)
    if bundle is None or not bundle.x509_authorities:
        raise AssertionError(f"no X.509 authorities for {td}")
    return {
        "trust_domains": sorted(str(b.trust_domain) for b in bundles.bundles),
        "authorities": len(bundle.x509_authorities),
    }


def jwt_bundles(client, args):
    bundles = client.fetch_jwt_bundles()
    td = SpiffeId(args.spiffe_id).trust_domain
    bundle = bundles.get_bundle_for_trust_domain(td)
    if bundle is None or not bundle.jwt_authorities:
        raise AssertionError(f"no JWT authorities for {td}")
    return {
        "trust_domains": sorted(str(b.trust_domain) for b in bundles.bundles),
        "key_ids": sorted(bundle.jwt_authorities),
    }


def jwt_svid(client, args):
    fetched = client.fetch_jwt_svid(audience={args.audience})
    bundles = client.fetch_jwt_bundles()
    bundle = bundles.get_bundle_for_trust_domain(fetched.spiffe_id.trust_domain)
    if bundle is None:
        raise AssertionError(f"no JWT bundle for {fetched.spiffe_id.trust_domain}")
    validated = JwtSvid.parse_and_validate(fetched.token, bundle, {args.audience})
    if str(validated.spiffe_id) != args.spiffe_id:
        raise AssertionError(f"sub {validated.spiffe_id} != {args.spiffe_id}")
    try:
        JwtSvid.parse_and_validate(fetched.token, bundle, {"spiffe://example.org/other"})
        raise AssertionError("parse_and_validate accepted a token for another audience")
    except AssertionError:
        raise
    except Exception as e:  # the library's audience error
        wrong_audience = f"{type(e).__name__}: {e}"
    header = json.loads(_b64(fetched.token.split(".")[0]))
    return {
        "spiffe_id": str(validated.spiffe_id),
        "audience": sorted(validated.audience),
        "header": header,
        "validated_locally": True,
        "wrong_audience_rejected": wrong_audience,
    }


def jwt_svid_two_audiences(client, args):
    # JWT-SVID.md §3.2: `aud` holds one or more values; the Workload API's `audience` is
    # repeated. One token, valid for each audience.
    audiences = {args.audience, "second-audience"}
    fetched = client.fetch_jwt_svid(audience=audiences)
    bundles = client.fetch_jwt_bundles()
    bundle = bundles.get_bundle_for_trust_domain(fetched.spiffe_id.trust_domain)
    for audience in sorted(audiences):
        validated = JwtSvid.parse_and_validate(fetched.token, bundle, {audience})
        if str(validated.spiffe_id) != args.spiffe_id:
            raise AssertionError(f"sub {validated.spiffe_id} != {args.spiffe_id}")
    return {"spiffe_id": str(fetched.spiffe_id), "audience": sorted(validated.audience)}


def _b64(segment):
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def jwt_validate_api(client, args):
    fetched = client.fetch_jwt_svid(audience={args.audience})
    validated = client.validate_jwt_svid(fetched.token, args.audience)
    if str(validated.spiffe_id) != args.spiffe_id:
        raise AssertionError(f"sub {validated.spiffe_id} != {args.spiffe_id}")
    try:
        client.validate_jwt_svid(fetched.token, "spiffe://example.org/other")
        raise AssertionError("ValidateJWTSVID accepted a token for another audience")
    except AssertionError:
        raise
    except Exception as e:
        code, _ = grpc_code(e)
        refused = {"code": code, "error": str(e)}
    return {"spiffe_id": str(validated.spiffe_id), "validated_by_api": True, "wrong_audience": refused}


def permission_denied(client, args):
    try:
        svid = client.fetch_jwt_svid(audience={args.audience}, subject=SpiffeId(args.forbidden_id))
    except Exception as e:
        code, details = grpc_code(e)
        if code != "PERMISSION_DENIED":
            raise AssertionError(f"expected PERMISSION_DENIED, got {code}: {e}")
        return {"code": code, "message": details, "library_error": type(e).__name__}
    raise AssertionError(f"fetched a JWT-SVID for {svid.spiffe_id} it is not entitled to")


def rotation(args):
    """Streams X.509 contexts until the default SVID's serial number changes."""
    started = time.monotonic()
    updates = queue.Queue()
    client = WorkloadApiClient()
    handler = client.stream_x509_contexts(
        on_success=lambda ctx: updates.put(("ctx", ctx)),
        on_error=lambda err: updates.put(("err", err)),
        retry_connect=False,
    )
    try:
        first = None
        received = 0
        while True:
            left = args.rotation_timeout - (time.monotonic() - started)
            try:
                kind, item = updates.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError(
                    f"no new X.509-SVID within {args.rotation_timeout} s ({received} stream messages)"
                ) from None
            if kind == "err":
                raise AssertionError(f"stream error: {item}")
            received += 1
            svid = item.default_svid
            if first is None:
                first = serial_of(svid)
                continue
            if serial_of(svid) != first:
                checked = check_svid(svid, item.x509_bundle_set, args.spiffe_id)
                return {
                    "old_serial": first,
                    "new_serial": checked["serial"],
                    "new_svid_verified": checked["chain_verified"],
                    "messages": received,
                    "seconds": round(time.monotonic() - started, 3),
                }
    finally:
        handler.cancel()
        client.close()


def stock_client(_args):
    with WorkloadApiClient(default_timeout=15) as client:
        bundles = client.fetch_x509_bundles()
    return {"trust_domains": sorted(str(b.trust_domain) for b in bundles.bundles)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spiffe-id", required=True)
    parser.add_argument("--audience", required=True)
    parser.add_argument("--forbidden-id", required=True)
    parser.add_argument("--rotation-timeout", type=float, default=40.0)
    try:
        args = parser.parse_args()
    except SystemExit:
        print("error: bad usage", file=sys.stderr)
        sys.exit(2)

    checks = {}

    def record(name, fn, *fn_args):
        try:
            result = fn(*fn_args)
            checks[name] = {"ok": True, **result}
        except Exception as e:
            code, _ = grpc_code(e)
            checks[name] = {"ok": False, "error": f"{type(e).__name__}: {e}", "grpc_code": code}

    record("stock_client", stock_client, args)
    try:
        client = WorkloadApiClient(default_timeout=15)
    except Exception as e:
        checks["connect"] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        client = None
    if client is not None:
        with client:
            record("x509_svid", x509_svid, client, args)
            record("x509_bundles", x509_bundles, client, args)
            record("jwt_bundles", jwt_bundles, client, args)
            record("jwt_svid", jwt_svid, client, args)
            record("jwt_svid_two_audiences", jwt_svid_two_audiences, client, args)
            record("jwt_validate_api", jwt_validate_api, client, args)
            record("permission_denied", permission_denied, client, args)
    record("rotation", rotation, args)
    print(json.dumps({"library": "py-spiffe", "version": version("spiffe"), "checks": checks}))


if __name__ == "__main__":
    main()
