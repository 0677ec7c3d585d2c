#!/usr/bin/env node
// Lanyard OAuth client interop driver for panva/openid-client (npm `openid-client`, v6):
// discovers an authorization server through its RFC 8414 metadata and runs
// `client_credentials` with `private_key_jwt` (assertion `aud` = the issuer, as
// rfc7523bis requires), optionally DPoP-bound (RFC 9449; openid-client answers the
// server's `use_dpop_nonce`), or an RFC 8693 token exchange (with an actor token for
// delegation).
//
// crates/lanyard-server/tests/oauth_interop.rs (client_credentials) and
// crates/lanyard-server/tests/oauth_exchange.rs (exchange) run it against a running
// Lanyard server.
//
//   node oauth_client.mjs client-credentials --issuer <iss> --client-id <id>
//                         --jwk <private-jwk-file> [--scope <s>] [--resource <uri>] [--dpop]
//   node oauth_client.mjs exchange --issuer <iss> --client-id <id> --jwk <private-jwk-file>
//                         --subject-token <jwt> --subject-token-type <uri>
//                         [--actor-token <jwt> --actor-token-type <uri>]
//                         [--requested-token-type <uri>] [--scope <s>] [--audience <a>]
//
// Success: the token response (and the DPoP key's thumbprint) on stdout as one JSON line.
// Failure: one line `error: <message>` on stderr, exit status 1.

import * as client from 'openid-client';
import { calculateJwkThumbprint, exportJWK, importJWK } from 'jose';

import { readJsonObject, runCli } from './cli.mjs';

/** The client configuration: discovery of `--issuer`, `private_key_jwt` with `--jwk`. */
async function configure(v) {
  const jwk = readJsonObject(v.jwk);
  const key = await importJWK(jwk, jwk.alg ?? 'ES256');
  const options = v.issuer.startsWith('http://') ? { execute: [client.allowInsecureRequests] } : {};
  return client.discovery(
    new URL(v.issuer),
    v['client-id'],
    { token_endpoint_auth_method: 'private_key_jwt' },
    client.PrivateKeyJwt({ key, kid: jwk.kid }),
    { algorithm: 'oauth2', ...options },
  );
}

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

async function exchange(v) {
  const config = await configure(v);
  const parameters = {};
  for (const name of [
    'subject-token',
    'subject-token-type',
    'actor-token',
    'actor-token-type',
    'requested-token-type',
    'scope',
    'audience',
  ]) {
    if (v[name] !== undefined) parameters[name.replaceAll('-', '_')] = v[name];
  }
  const response = await client.genericGrantRequest(config, TOKEN_EXCHANGE, parameters);
  process.stdout.write(
    JSON.stringify({
      access_token: response.access_token,
      issued_token_type: response.issued_token_type,
      token_type: response.token_type,
      expires_in: response.expires_in,
      scope: response.scope,
    }) + '\n',
  );
}

async function clientCredentials(v) {
  const config = await configure(v);
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
    exchange: {
      options: {
        issuer: { type: 'string' },
        'client-id': { type: 'string' },
        jwk: { type: 'string' },
        'subject-token': { type: 'string' },
        'subject-token-type': { type: 'string' },
        'actor-token': { type: 'string' },
        'actor-token-type': { type: 'string' },
        'requested-token-type': { type: 'string' },
        scope: { type: 'string' },
        audience: { type: 'string' },
      },
      required: ['issuer', 'client-id', 'jwk', 'subject-token', 'subject-token-type'],
      run: exchange,
    },
  },
  'oauth_client.mjs',
);
