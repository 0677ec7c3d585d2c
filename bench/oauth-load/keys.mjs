// Writes the ES256 keys of a load-test run into $OUT (default ./keys): the client's key
// (private JWK, public JWK, PKCS#8 PEM) and the peer AS's signing key. `kid` is the RFC 7638
// thumbprint, as `lanyard key generate` derives it.
import { generateKeyPair, exportJWK, exportPKCS8, calculateJwkThumbprint } from 'jose';
import { mkdirSync, writeFileSync } from 'node:fs';

const out = process.env.OUT ?? 'keys';
mkdirSync(out, { recursive: true });
for (const name of ['client', 'peer-as']) {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub);
  const meta = { kid, alg: 'ES256', use: 'sig' };
  writeFileSync(`${out}/${name}.jwk.json`, JSON.stringify({ ...(await exportJWK(privateKey)), ...meta }));
  writeFileSync(`${out}/${name}.pub.jwk.json`, JSON.stringify({ ...pub, ...meta }));
  writeFileSync(`${out}/${name}.pem`, await exportPKCS8(privateKey));
}
