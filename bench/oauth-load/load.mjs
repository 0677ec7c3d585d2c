// One load generator for any AS: discovers the token endpoint through RFC 8414 metadata,
// pre-signs N private_key_jwt assertions (ES256, distinct jti, 290 s lifetime: Lanyard
// refuses assertions living over 300 s; aud = the issuer as its
// sole value, typ client-authentication+jwt per rfc7523bis) so the generator spends no
// signature work during the run, then sends client_credentials requests with autocannon
// over C keep-alive connections. Checks that a response is an ES256 at+jwt first.
// Env: AS (base URL), CLIENT_ID, KEYS, N, C, D (seconds), SCOPE, RESOURCE (optional).
// Prints one JSON line.
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import { importJWK, SignJWT, decodeProtectedHeader } from 'jose';

const as = process.env.AS ?? 'http://127.0.0.1:3000';
const clientId = process.env.CLIENT_ID ?? 'bench-client';
const n = Number(process.env.N ?? 40000);
const connections = Number(process.env.C ?? 32);
const duration = Number(process.env.D ?? 15);
const keys = process.env.KEYS ?? 'keys';

const meta = await (await fetch(`${as}/.well-known/oauth-authorization-server`)).json();
const jwk = JSON.parse(readFileSync(`${keys}/client.jwk.json`, 'utf8'));
const key = await importJWK(jwk, 'ES256');
const now = Math.floor(Date.now() / 1000);
const bodies = [];
for (let i = 0; i < n + 1; i++) {
  const assertion = await new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256', kid: jwk.kid, typ: 'client-authentication+jwt' })
    .setIssuer(clientId).setSubject(clientId).setAudience(meta.issuer)
    .setIssuedAt(now).setExpirationTime(now + 290)
    .sign(key);
  const form = {
    grant_type: 'client_credentials',
    client_id: clientId,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
    scope: process.env.SCOPE ?? 'read',
  };
  if (process.env.RESOURCE) form.resource = process.env.RESOURCE;
  bodies.push(new URLSearchParams(form).toString());
}
const headers = { 'content-type': 'application/x-www-form-urlencoded' };

// One request by hand: the response must be an ES256 at+jwt.
const first = await fetch(meta.token_endpoint, { method: 'POST', headers, body: bodies.pop() });
const answer = await first.json();
if (!first.ok || !answer.access_token) throw new Error(`token endpoint: ${first.status} ${JSON.stringify(answer)}`);
const header = decodeProtectedHeader(answer.access_token);
if (header.typ !== 'at+jwt' || header.alg !== 'ES256') throw new Error(`unexpected token header ${JSON.stringify(header)}`);

let next = 0;
const result = await autocannon({
  url: meta.token_endpoint,
  connections,
  duration,
  amount: n,
  requests: [{ method: 'POST', headers, setupRequest: (req) => ({ ...req, body: bodies[next++ % n] }) }],
});
console.log(JSON.stringify({
  as, connections, requests_per_second: Math.round(result.requests.average),
  latency_ms: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99 },
  total: result.requests.total, non_2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts,
}));
