// A real authorization server for the OAuth end-to-end tests: oidc-provider (a certified OpenID
// provider) on loopback, issuing RFC 9068 JWT access tokens with the client credentials grant and
// RFC 8707 resource indicators (the token's `aud` is the `resource` the client asked for).
//
// It prints one JSON line, {"issuer": "http://127.0.0.1:<port>"}, once it listens. Test-only
// admin routes, beside the provider's own:
//   POST /admin/rotate  a new signing key, published and used from now on (the old one stays published)
//   POST /admin/sign    {"claims": {...}, "key": "current" | "foreign", "kid"?: "..."}: a JWT with exactly these
//                       claims (expired ones, say), signed by the current key or by one never published
//   GET  /admin/stats   {"jwks": <GET /jwks served>, "introspections": <POST /token/introspection served>}
import http from 'node:http';

import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const SCOPES = ['customerio:use', 'customerio:destructive'];
const CLIENTS = [
  // Gets JWT access tokens.
  { client_id: 'tester', client_secret: 'tester-secret-0123456789abcdef0123456789' },
  // Gets opaque access tokens, which only introspection can check.
  { client_id: 'opaque-tester', client_secret: 'opaque-secret-0123456789abcdef0123456789' },
  // The MCP server itself, for the introspection endpoint.
  { client_id: 'customerio-mcp', client_secret: 'mcp-secret-0123456789abcdef0123456789abcd' },
].map((client) => ({
  ...client,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: SCOPES.join(' '),
}));

async function newKey(kid) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' } };
}

function makeProvider(issuer, keys) {
  const provider = new Provider(issuer, {
    clients: CLIENTS,
    jwks: { keys: keys.map((key) => key.jwk) },
    scopes: ['openid', ...SCOPES],
    cookies: { keys: ['test-only-cookie-key'] },
    ttl: { ClientCredentials: 600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resourceIndicator, client) => ({
          scope: SCOPES.join(' '),
          audience: resourceIndicator,
          accessTokenTTL: 600,
          accessTokenFormat: client.clientId === 'opaque-tester' ? 'opaque' : 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
  });
  return provider.callback();
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
}

function answer(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const keys = [await newKey('key-1')];
const foreign = await newKey('foreign-1');
const stats = { jwks: 0, introspections: 0 };
let issuer;
let handle;

const server = http.createServer(async (req, res) => {
  try {
    const { pathname } = new URL(req.url, issuer);
    if (pathname === '/admin/rotate' && req.method === 'POST') {
      keys.unshift(await newKey(`key-${keys.length + 1}`));
      handle = makeProvider(issuer, keys);
      return answer(res, 200, { kid: keys[0].kid });
    }
    if (pathname === '/admin/sign' && req.method === 'POST') {
      const { claims, key = 'current', kid } = await readJson(req);
      const signer = key === 'foreign' ? foreign : keys[0];
      const token = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: kid ?? signer.kid, typ: 'at+jwt' })
        .sign(signer.privateKey);
      return answer(res, 200, { token });
    }
    if (pathname === '/admin/stats') return answer(res, 200, stats);
    if (pathname === '/jwks') stats.jwks += 1;
    if (pathname === '/token/introspection') stats.introspections += 1;
    return handle(req, res);
  } catch (error) {
    return answer(res, 500, { error: String(error) });
  }
});

server.listen(0, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  handle = makeProvider(issuer, keys);
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});
