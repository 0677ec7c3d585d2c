#!/usr/bin/env node
// Lanyard OAuth interop driver for panva/jose (npm `jose`, v6): RFC 9068 access tokens,
// RFC 9449 DPoP proofs and RFC 7523 `private_key_jwt` client assertions.
//
// crates/lanyard-core/tests/interop_oauth.rs runs it as a subprocess. The same contract
// is implemented for joserfc by tests/interop/python/oauth_interop.py (its `sign-*`
// commands and `verify-access-token`); see tests/interop/README.md.
//
//   node oauth.mjs verify-access-token --jwks <file> --token <jwt> --issuer <iss>
//                                      --audience <aud> [--now <unix-seconds>]
//   node oauth.mjs verify-dpop --proof <jwt> --method <m> --uri <uri>
//                              [--access-token <at>] [--now <unix-seconds>]
//   node oauth.mjs sign-dpop --jwk <private-jwk-file> --method <m> --uri <uri>
//                            [--access-token <at>] [--nonce <n>] --iat <unix-seconds>
//   node oauth.mjs sign-client-assertion --jwk <private-jwk-file> --client-id <id>
//                            --audience <aud> --iat <unix-seconds> --lifetime <s> [--typ <typ>]
//
// Success: the result goes to stdout as one line, exit status 0.
// Failure: one line `error: <message>` goes to stderr, exit status 1.

import { createHash, randomUUID } from 'node:crypto';

import {
  EmbeddedJWK,
  SignJWT,
  calculateJwkThumbprint,
  createLocalJWKSet,
  decodeProtectedHeader,
  importJWK,
  jwtVerify,
} from 'jose';

import { InteropError, readJsonObject, runCli } from './cli.mjs';

// The algorithms the interop tests exercise; `none` and HMAC are never allowed.
const ALLOWED_ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'];
const CLOCK_TOLERANCE_SECONDS = 60;
// RFC 9449 §11.1: how old a proof may be (Lanyard's default window).
const DPOP_MAX_AGE_SECONDS = 300;

const COMMANDS = {
  'verify-access-token': {
    options: {
      jwks: { type: 'string' },
      token: { type: 'string' },
      issuer: { type: 'string' },
      audience: { type: 'string' },
      now: { type: 'string' },
    },
    required: ['jwks', 'token', 'issuer', 'audience'],
    run: verifyAccessToken,
  },
  'verify-dpop': {
    options: {
      proof: { type: 'string' },
      method: { type: 'string' },
      uri: { type: 'string' },
      'access-token': { type: 'string' },
      now: { type: 'string' },
    },
    required: ['proof', 'method', 'uri'],
    run: verifyDpop,
  },
  'sign-dpop': {
    options: {
      jwk: { type: 'string' },
      method: { type: 'string' },
      uri: { type: 'string' },
      'access-token': { type: 'string' },
      nonce: { type: 'string' },
      iat: { type: 'string' },
    },
    required: ['jwk', 'method', 'uri', 'iat'],
    run: signDpop,
  },
  'sign-client-assertion': {
    options: {
      jwk: { type: 'string' },
      'client-id': { type: 'string' },
      audience: { type: 'string' },
      iat: { type: 'string' },
      lifetime: { type: 'string' },
      typ: { type: 'string' },
    },
    required: ['jwk', 'client-id', 'audience', 'iat', 'lifetime'],
    run: signClientAssertion,
  },
};

function parseSeconds(name, value) {
  if (!/^\d+$/.test(value)) {
    throw new InteropError(`--${name} must be a whole number of seconds, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function currentDate(now) {
  return now === undefined ? undefined : new Date(parseSeconds('now', now) * 1000);
}

/** jose compares `typ` as a media type (case and `application/` ignored); require it exactly. */
function requireTyp(header, typ) {
  if (header.typ !== typ) {
    throw new InteropError(`typ header is ${JSON.stringify(header.typ)}, expected exactly ${JSON.stringify(typ)}`);
  }
}

/** base64url(SHA-256(ASCII token)): `ath` (RFC 9449 §4.2). */
function tokenHash(token) {
  return createHash('sha256').update(token, 'ascii').digest('base64url');
}

/** RFC 9449 §4.3: the URI without query and fragment, scheme/host case and default port normalised. */
function htuOf(uri) {
  let url;
  try {
    url = new URL(uri);
  } catch {
    throw new InteropError(`not an absolute URI: ${JSON.stringify(uri)}`);
  }
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/**
 * verify-access-token: an RFC 9068 token (RFC 9068 §4): typ exactly at+jwt, the key by kid
 * from the JWK Set, iss, aud containing the audience, exp/nbf, the required claims.
 */
async function verifyAccessToken(args) {
  const jwks = readJsonObject(args.jwks);
  const { payload, protectedHeader } = await jwtVerify(args.token, createLocalJWKSet(jwks), {
    algorithms: ALLOWED_ALGORITHMS,
    typ: 'at+jwt',
    issuer: args.issuer,
    audience: args.audience,
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    currentDate: currentDate(args.now),
    requiredClaims: ['iss', 'sub', 'aud', 'client_id', 'iat', 'exp', 'jti'],
  });
  requireTyp(protectedHeader, 'at+jwt');
  process.stdout.write(`${JSON.stringify(payload)}\n`);
}

/**
 * verify-dpop: an RFC 9449 proof: typ exactly dpop+jwt, a public header jwk that verifies the
 * signature (jose's EmbeddedJWK), iat within the window, htm, htu and ath. Prints
 * {"jkt", "jti", "claims"}.
 */
async function verifyDpop(args) {
  const header = decodeProtectedHeader(args.proof);
  requireTyp(header, 'dpop+jwt');
  if (header.jwk === undefined || header.jwk.d !== undefined) {
    throw new InteropError('the proof must carry a public jwk');
  }
  const { payload } = await jwtVerify(args.proof, EmbeddedJWK, {
    algorithms: ALLOWED_ALGORITHMS,
    typ: 'dpop+jwt',
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    maxTokenAge: DPOP_MAX_AGE_SECONDS,
    currentDate: currentDate(args.now),
    requiredClaims: ['jti', 'htm', 'htu', 'iat'],
  });
  if (payload.htm !== args.method) {
    throw new InteropError(`htm ${JSON.stringify(payload.htm)} is not ${JSON.stringify(args.method)}`);
  }
  if (htuOf(payload.htu) !== htuOf(args.uri)) {
    throw new InteropError(`htu ${JSON.stringify(payload.htu)} does not match ${JSON.stringify(args.uri)}`);
  }
  const token = args['access-token'];
  if (token !== undefined ? payload.ath !== tokenHash(token) : payload.ath !== undefined) {
    throw new InteropError(`ath ${JSON.stringify(payload.ath)} does not bind the access token presented`);
  }
  const jkt = await calculateJwkThumbprint(header.jwk, 'sha256');
  process.stdout.write(`${JSON.stringify({ jkt, jti: payload.jti, claims: payload })}\n`);
}

/** Imports a private JWK (which must carry `alg`) and returns [key, alg, public JWK]. */
async function privateKey(path) {
  const jwk = readJsonObject(path);
  if (typeof jwk.alg !== 'string') {
    throw new InteropError(`${path}: the private JWK must carry an "alg" member`);
  }
  const key = await importJWK(jwk, jwk.alg);
  const { d, p, q, dp, dq, qi, ...publicJwk } = jwk;
  return [key, jwk.alg, publicJwk];
}

/** sign-dpop: a DPoP proof with the public key in the header and a random jti. */
async function signDpop(args) {
  const [key, alg, publicJwk] = await privateKey(args.jwk);
  const claims = { htm: args.method, htu: htuOf(args.uri) };
  if (args['access-token'] !== undefined) {
    claims.ath = tokenHash(args['access-token']);
  }
  if (args.nonce !== undefined) {
    claims.nonce = args.nonce;
  }
  const { kid, ...jwk } = publicJwk;
  const proof = await new SignJWT(claims)
    .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk })
    .setJti(randomUUID())
    .setIssuedAt(parseSeconds('iat', args.iat))
    .sign(key);
  process.stdout.write(`${proof}\n`);
}

/**
 * sign-client-assertion: what openid-client's PrivateKeyJwt sends (iss = sub = client,
 * aud, jti, iat, exp), with `typ` in the header when --typ is given.
 */
async function signClientAssertion(args) {
  const [key, alg, publicJwk] = await privateKey(args.jwk);
  const iat = parseSeconds('iat', args.iat);
  const header = { alg };
  if (publicJwk.kid !== undefined) {
    header.kid = publicJwk.kid;
  }
  if (args.typ !== undefined) {
    header.typ = args.typ;
  }
  const assertion = await new SignJWT({})
    .setProtectedHeader(header)
    .setIssuer(args['client-id'])
    .setSubject(args['client-id'])
    .setAudience(args.audience)
    .setJti(randomUUID())
    .setIssuedAt(iat)
    .setExpirationTime(iat + parseSeconds('lifetime', args.lifetime))
    .sign(key);
  process.stdout.write(`${assertion}\n`);
}

await runCli(COMMANDS, 'oauth.mjs');
