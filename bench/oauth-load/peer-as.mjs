// The peer measured beside Lanyard: panva oidc-provider 9.x as an OAuth AS for one
// client_credentials client authenticating with an ES256 private_key_jwt, issuing ES256
// `at+jwt` access tokens (RFC 9068) for one resource, 300 s. Configuration after
// ../../shared/specs/oauth.md §8.3 (its token-exchange grant left out: not measured).
// Env: PORT (3000), KEYS (./keys), CLIENT_ID (bench-client), RESOURCE.
import { readFileSync } from 'node:fs';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.env.PORT ?? 3000);
const issuer = `http://127.0.0.1:${port}`;
const keys = process.env.KEYS ?? 'keys';
const resource = process.env.RESOURCE ?? 'https://api.example.test';
const read = (name) => JSON.parse(readFileSync(`${keys}/${name}`, 'utf8'));

const provider = new Provider(issuer, {
  jwks: { keys: [read('peer-as.jwk.json')] },
  clients: [{
    client_id: process.env.CLIENT_ID ?? 'bench-client',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'ES256',
    jwks: { keys: [read('client.pub.jwk.json')] },
    scope: 'read write',
  }],
  // The keystore holds only ES256; the RS256 default would fail client validation.
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  clientAuthMethods: ['private_key_jwt'],
  scopes: ['read', 'write'],
  enabledJWA: { clientAuthSigningAlgValues: ['ES256'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== resource) throw new errors.InvalidTarget();
        return {
          scope: 'read write', audience: resource, accessTokenTTL: 300,
          accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  ttl: { ClientCredentials: 300 },
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));
provider.listen(port, '127.0.0.1', () => console.log(`peer AS listening on ${issuer}`));
