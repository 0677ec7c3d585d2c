#!/usr/bin/env node
// Lanyard interop driver for panva/jose (npm `jose`, v6).
//
// Lanyard's Rust test suite runs this script as a subprocess to check that
// tokens Lanyard signs verify with an independent JOSE implementation, and
// that tokens signed here verify with Lanyard. tests/interop/python/interop.py
// implements the same command-line contract on top of joserfc and pyjwt; see
// tests/interop/README.md for the contract.
//
//   node interop.mjs verify --jwks <file> --token <compact-jws> --typ <typ>
//                           [--audience <aud>] [--now <unix-seconds>]
//   node interop.mjs sign --jwk <private-jwk-file> --claims <claims-json-file>
//                         --typ <typ> [--kid <kid> | --no-kid]
//   node interop.mjs thumbprint --jwk <file>
//
// Success: the result goes to stdout as one line, exit status 0.
// Failure: one line `error: <message>` goes to stderr, exit status 1.

import {
  SignJWT,
  calculateJwkThumbprint,
  createLocalJWKSet,
  decodeProtectedHeader,
  importJWK,
  jwtVerify,
} from 'jose';

import { InteropError, readJsonObject, runCli } from './cli.mjs';

// The only JWS algorithms the interop contract allows. Everything else,
// including `none` and the HMAC family, must be rejected by `verify`.
const ALLOWED_ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'];

// Clock skew tolerated on exp/nbf, in seconds.
const CLOCK_TOLERANCE_SECONDS = 60;

// Flags accepted by each subcommand (node:util parseArgs syntax). Every value
// flag is a plain string; parsing is strict so unknown flags are errors.
const COMMANDS = {
  verify: {
    options: {
      jwks: { type: 'string' },
      token: { type: 'string' },
      typ: { type: 'string' },
      audience: { type: 'string' },
      now: { type: 'string' },
    },
    required: ['jwks', 'token', 'typ'],
    run: verify,
  },
  sign: {
    options: {
      jwk: { type: 'string' },
      claims: { type: 'string' },
      typ: { type: 'string' },
      kid: { type: 'string' },
      'no-kid': { type: 'boolean' },
    },
    required: ['jwk', 'claims', 'typ'],
    run: sign,
  },
  thumbprint: {
    options: {
      jwk: { type: 'string' },
    },
    required: ['jwk'],
    run: thumbprint,
  },
};

/**
 * verify: checks a compact JWS/JWT against a JWK Set and prints its claims.
 *
 * jose does the work natively: createLocalJWKSet picks the key by `kid`
 * (and by the key type/curve the `alg` needs), and jwtVerify checks the
 * signature, the algorithm allow-list, `typ`, exp/nbf with clock tolerance,
 * and `aud`. The script adds only the parts of the contract jose is more
 * lenient about (see the comments below).
 */
async function verify(args) {
  const jwks = readJsonObject(args.jwks);

  // Fail early (and with a clear message) on tokens that are not even a
  // parseable JWS; jose would reject them too, just less descriptively.
  let header;
  try {
    header = decodeProtectedHeader(args.token);
  } catch (err) {
    throw new InteropError(`malformed token: ${err.message}`);
  }

  // Contract: a token without `kid` may only be verified against a set that
  // holds exactly one key. (jose on its own would try every candidate key.)
  if (header.kid === undefined && (!Array.isArray(jwks.keys) || jwks.keys.length !== 1)) {
    const count = Array.isArray(jwks.keys) ? jwks.keys.length : 0;
    throw new InteropError(`token has no kid and the JWKS holds ${count} keys (need exactly 1)`);
  }

  const options = {
    algorithms: ALLOWED_ALGORITHMS,
    typ: args.typ,
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    // exp is mandatory: a token without one must not verify.
    requiredClaims: ['exp'],
  };
  if (args.audience !== undefined) {
    options.audience = args.audience;
  }
  if (args.now !== undefined) {
    options.currentDate = new Date(parseUnixSeconds(args.now) * 1000);
  }

  const { payload, protectedHeader } = await jwtVerify(
    args.token,
    createLocalJWKSet(jwks),
    options,
  );

  // jose's `typ` option compares media types the RFC 7515 way: it ignores
  // case and an `application/` prefix, so `typ: wit+jwt` also accepts
  // `application/WIT+JWT`. The contract wants an exact string match, so the
  // three drivers agree on what is rejected.
  if (protectedHeader.typ !== args.typ) {
    throw new InteropError(
      `typ header is ${JSON.stringify(protectedHeader.typ)}, expected exactly ${JSON.stringify(args.typ)}`,
    );
  }

  process.stdout.write(`${JSON.stringify(payload)}\n`);
}

/**
 * sign: signs the claims object with a private JWK and prints the compact JWS.
 * The claims are signed as given: no iat/exp/jti is added.
 */
async function sign(args) {
  const jwk = readJsonObject(args.jwk);
  const claims = readJsonObject(args.claims);

  if (typeof jwk.alg !== 'string') {
    throw new InteropError(`${args.jwk}: the private JWK must carry an "alg" member`);
  }
  if (args.kid !== undefined && args['no-kid']) {
    throw new InteropError('--kid and --no-kid are mutually exclusive');
  }

  const header = { alg: jwk.alg, typ: args.typ };
  if (!args['no-kid']) {
    const kid = args.kid ?? jwk.kid;
    if (kid !== undefined) {
      header.kid = kid;
    }
  }

  const key = await importJWK(jwk, jwk.alg);
  const token = await new SignJWT(claims).setProtectedHeader(header).sign(key);
  process.stdout.write(`${token}\n`);
}

/** thumbprint: prints the RFC 7638 SHA-256 JWK thumbprint (base64url). */
async function thumbprint(args) {
  const jwk = readJsonObject(args.jwk);
  process.stdout.write(`${await calculateJwkThumbprint(jwk, 'sha256')}\n`);
}

/** Parses `--now`: a whole number of seconds since the Unix epoch. */
function parseUnixSeconds(value) {
  if (!/^-?\d+$/.test(value)) {
    throw new InteropError(`--now must be an integer number of seconds, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

await runCli(COMMANDS, 'interop.mjs');
