#!/usr/bin/env node
// Lanyard token-exchange interop driver for panva/openid-client (npm `openid-client`, v6):
// a real OAuth client discovers a Lanyard authorization server (RFC 8414), authenticates
// with `private_key_jwt` and performs an RFC 8693 token exchange with an actor token
// (delegation).
//
// crates/lanyard-server/tests/oauth_exchange.rs runs it as a subprocess behind
// LANYARD_INTEROP=1 (see tests/interop/README.md).
//
//   node exchange.mjs exchange --issuer <url> --client-id <id> --jwk <private-jwk-file>
//                              --subject-token <jwt> --subject-token-type <uri>
//                              [--actor-token <jwt> --actor-token-type <uri>]
//                              [--requested-token-type <uri>] [--scope <s>] [--audience <a>]
//
// Success: the token response as one JSON line on stdout, exit status 0.
// Failure: one line `error: <message>` on stderr, exit status 1.

import * as client from 'openid-client';
import { importJWK } from 'jose';

import { InteropError, readJsonObject, runCli } from './cli.mjs';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

const COMMANDS = {
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
};

async function exchange(args) {
  const jwk = readJsonObject(args.jwk);
  if (typeof jwk.alg !== 'string') {
    throw new InteropError('the private JWK must name its alg');
  }
  const key = await importJWK(jwk, jwk.alg);
  const issuer = new URL(args.issuer);
  // Loopback servers speak plain HTTP in the tests.
  const execute = issuer.protocol === 'http:' ? [client.allowInsecureRequests] : [];
  const config = await client.discovery(
    issuer,
    args['client-id'],
    { token_endpoint_auth_method: 'private_key_jwt' },
    client.PrivateKeyJwt({ key, kid: jwk.kid }),
    { algorithm: 'oauth2', execute },
  );
  const params = {
    subject_token: args['subject-token'],
    subject_token_type: args['subject-token-type'],
  };
  for (const name of ['actor-token', 'actor-token-type', 'requested-token-type', 'scope', 'audience']) {
    if (args[name] !== undefined) {
      params[name.replaceAll('-', '_')] = args[name];
    }
  }
  const response = await client.genericGrantRequest(config, TOKEN_EXCHANGE, params);
  process.stdout.write(
    `${JSON.stringify({
      access_token: response.access_token,
      issued_token_type: response.issued_token_type,
      token_type: response.token_type,
      expires_in: response.expiresIn(),
      scope: response.scope,
    })}\n`,
  );
}

await runCli(COMMANDS, 'exchange.mjs');
