// node-oidc-provider as the token endpoint benchmark's peer: the same exchange the portal
// serves (client_credentials, client_secret_post, ES256-signed at+jwt access tokens), in N
// processes behind Node's cluster module.
//
//   PORT=... CLIENTS=memory|postgres [DATABASE_URL=...] WORKERS=2 node server.mjs
//
// CLIENT_ID, CLIENT_SECRET and SCOPES (space-separated) name the one client; with
// CLIENTS=postgres it is read from the table oidc_client on every request, as a provider
// whose clients live in a database does.
//
// MANY=N instead serves N clients, as the portal benchmark's mix has them: client
// bench_client_<n> with secret bench-secret-<n>-0123456789, granted the Leerlingen and
// Voorinschrijvingen scopes of school 100000 + n % SCHOOLS.
import cluster from 'node:cluster';
import crypto from 'node:crypto';

import Provider from 'oidc-provider';
import pg from 'pg';

const port = Number(process.env.PORT ?? 3000);
const workers = Number(process.env.WORKERS ?? 2);
const clientsIn = process.env.CLIENTS ?? 'memory';
const issuer = `http://127.0.0.1:${port}`;
const many = Number(process.env.MANY ?? 0);
const schools = Number(process.env.SCHOOLS ?? 3000);
const schoolScopes = (n) => [
  `api_informat_sas_leerlingen.leerlingen.${100000 + (n % schools)}`,
  `api_informat_sas_leerlingen.voorinschrijvingen.${100000 + (n % schools)}`,
];
const scopes = many
  ? Array.from({ length: Math.min(many, schools) }, (_, n) => schoolScopes(n)).flat()
  : (process.env.SCOPES ?? '').split(' ').filter(Boolean);
const manyClient = (n) => ({
  client_id: `bench_client_${n}`,
  client_secret: `bench-secret-${n}-0123456789`,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_post',
  scope: schoolScopes(n).join(' '),
  id_token_signed_response_alg: 'ES256',
});
const client = {
  client_id: process.env.CLIENT_ID,
  client_secret: process.env.CLIENT_SECRET,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_post',
  scope: scopes.join(' '),
  id_token_signed_response_alg: 'ES256',
};

if (cluster.isPrimary) {
  // One signing key for every worker, as the portal's processes share theirs.
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  process.env.SIGNING_JWK = JSON.stringify({
    ...privateKey.export({ format: 'jwk' }), kid: 'bench', use: 'sig', alg: 'ES256',
  });
  if (clientsIn === 'postgres') {
    const db = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await db.connect();
    await db.query('CREATE TABLE IF NOT EXISTS oidc_client (id text PRIMARY KEY, payload jsonb NOT NULL)');
    const rows = many ? Array.from({ length: many }, (_, n) => manyClient(n)) : [client];
    for (let start = 0; start < rows.length; start += 5000) {
      const batch = rows.slice(start, start + 5000);
      await db.query(
        'INSERT INTO oidc_client (id, payload)'
        + ' SELECT c->>\'client_id\', c FROM jsonb_array_elements($1::jsonb) c'
        + ' ON CONFLICT (id) DO UPDATE SET payload = excluded.payload',
        [JSON.stringify(batch)],
      );
    }
    await db.end();
  }
  for (let n = 0; n < workers; n += 1) cluster.fork();
} else {
  let adapter;
  if (clientsIn === 'postgres') {
    const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
    adapter = class PostgresClients {
      constructor(name) { this.name = name; }

      async find(id) {
        if (this.name !== 'Client') return undefined;
        const { rows } = await pool.query('SELECT payload FROM oidc_client WHERE id = $1', [id]);
        return rows[0]?.payload;
      }

      async upsert() {}

      async findByUid() { return undefined; }

      async findByUserCode() { return undefined; }

      async consume() {}

      async destroy() {}

      async revokeByGrantId() {}
    };
  }
  const resource = 'api_informat_sas_leerlingen';
  const provider = new Provider(issuer, {
    adapter,
    clients: clientsIn !== 'memory' ? []
      : many ? Array.from({ length: many }, (_, n) => manyClient(n)) : [client],
    jwks: { keys: [JSON.parse(process.env.SIGNING_JWK)] },
    scopes,
    cookies: { keys: ['bench-only-cookie-key'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => `urn:informat:${resource}`,
        useGrantedResource: () => true,
        // The client's own scopes: what the portal grants it, without splitting every
        // scope of every school on each request.
        getResourceServerInfo: (ctx, indicator, requester) => ({
          scope: requester?.scope ?? scopes.join(' '),
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 3600,
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  provider.listen(port);
}
