#!/usr/bin/env node
// Lanyard OAuth client interop driver for panva/openid-client (npm `openid-client`, v6):
// discovers an authorization server through its RFC 8414 metadata and runs
// `client_credentials` with `private_key_jwt` (assertion `aud` = the issuer, as
// rfc7523bis requires), optionally DPoP-bound (RFC 9449; openid-client answers the
// server's `use_dpop_nonce`).
//
// crates/lanyard-server/tests/oauth_interop.rs runs it against a running Lanyard server.
//
//   node oauth_client.mjs client-credentials --issuer <iss> --client-id <id>
//                         --jwk <private-jwk-file> [--scope <s>] [--resource <uri>] [--dpop]
//
// Success: the token response (and the DPoP key's thumbprint) on stdout as one JSON line.
// Failure: one line `error: <message>` on stderr, exit status 1.

import * as client from 'openid-client';
import { calculateJwkThumbprint, exportJWK, importJWK } from 'jose';

import { readJsonObject, runCli } from './cli.mjs';

async function clientCredentials(v) {
  const jwk = readJsonObject(v.jwk);
  const key = await importJWK(jwk, jwk.alg ?? 'ES256');
  const options = v.issuer.startsWith('http://') ? { execute: [client.allowInsecureRequests] } : {};
  const config = await client.discovery(
    new URL(v.issuer),
    v['client-id'],
    { token_endpoint_auth_method: 'private_key_jwt' },
    client.PrivateKeyJwt({ key, kid: jwk.kid }),
    { algorithm: 'oauth2', ...options },
  );
  const parameters = {};
  if (v.scope !== undefined) parameters.scope = v.scope;
  if (v.resource !== undefined) parameters.resource = v.resource;
  let dpop;
  let jkt;
  if (v.dpop) {
    const pair = await client.randomDPoPKeyPair('ES256');
    dpop = client.getDPoPHandle(config, pair);
    jkt = await calculateJwkThumbprint(await exportJWK(pair.publicKey));
  }
  const grant = () => client.clientCredentialsGrant(config, parameters, dpop ? { DPoP: dpop } : undefined);
  let response;
  try {
    response = await grant();
  } catch (err) {
    // The handle keeps the nonce the server sent; one retry is what RFC 9449 §8 expects.
    if (dpop && err && err.error === 'use_dpop_nonce') {
      response = await grant();
    } else {
      throw err;
    }
  }
  process.stdout.write(
    JSON.stringify({
      access_token: response.access_token,
      token_type: response.token_type,
      expires_in: response.expires_in,
      scope: response.scope,
      dpop_jkt: jkt,
    }) + '\n',
  );
}

await runCli(
  {
    'client-credentials': {
      options: {
        issuer: { type: 'string' },
        'client-id': { type: 'string' },
        jwk: { type: 'string' },
        scope: { type: 'string' },
        resource: { type: 'string' },
        dpop: { type: 'boolean' },
      },
      required: ['issuer', 'client-id', 'jwk'],
      run: clientCredentials,
    },
  },
  'oauth_client.mjs',
);
