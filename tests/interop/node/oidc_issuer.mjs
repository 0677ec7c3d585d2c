// A real external issuer for Lanyard's trusted-issuer interop test
// (crates/lanyard-server/tests/oauth_exchange/trusted_issuers.rs): panva oidc-provider on
// loopback, with one client_credentials client (client_secret_basic) whose access tokens
// for the resource RESOURCE are ES256 JWTs (`at+jwt`, RFC 9068), 300 s.
// Usage: node oidc_issuer.mjs PORT CLIENT_ID CLIENT_SECRET RESOURCE
// Prints one JSON line {"issuer": ...} once it listens; runs until killed.
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors } from 'oidc-provider';

const [port, clientId, clientSecret, resource] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'peer-1', alg: 'ES256', use: 'sig' };

const provider = new Provider(issuer, {
  jwks: { keys: [jwk] },
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'read',
  }],
  // The keystore holds only ES256; the RS256 default would fail client validation.
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  scopes: ['read'],
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
          scope: 'read', audience: resource, accessTokenTTL: 300,
          accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));
provider.listen(Number(port), '127.0.0.1', () => console.log(JSON.stringify({ issuer })));
