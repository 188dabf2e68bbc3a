import { parseArgs } from 'node:util';
import { ConfigError, resolveConfig } from '../config/resolve-config.ts';
import { SCOPES, type Scope } from './caller.ts';
import { DEV_ISSUER, loadOrCreateDevSecret, mintToken, parseTtl } from './dev-token.ts';
import { KeySourceError } from './keys.ts';

const USAGE = `usage: verdict token [--scope "decisions:evaluate audit:read"] [--sub name] [--ttl 1h] [--client-id id] [--human]
       (npm run token -- …)

Mints an HS256 bearer token from JWT_SECRET or, in the embedded mode, from the generated secret in
$VERDICT_DATA_DIR/dev-jwt-secret. Default: every scope, sub "dev", 12h. --human adds the claim
principal_type "human" (only a human principal may approve an agent action: approvals:grant). Scopes: ${SCOPES.join(', ')}.`;

/** `npm run token`: prints one token on stdout (nothing else, so `$(npm run -s token)` works). */
function main(argv: string[]): number {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        scope: { type: 'string' },
        sub: { type: 'string' },
        ttl: { type: 'string' },
        'client-id': { type: 'string' },
        human: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const scopes = (typeof values.scope === 'string' ? values.scope : SCOPES.join(' '))
    .split(/[\s,]+/)
    .filter(Boolean);
  const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (unknown.length > 0 || scopes.length === 0) {
    process.stderr.write(`unknown scope(s): ${unknown.join(', ') || '(none given)'}\n${USAGE}\n`);
    return 2;
  }
  const ttlSeconds = parseTtl(typeof values.ttl === 'string' ? values.ttl : '12h');
  if (ttlSeconds === null) {
    process.stderr.write(`--ttl must look like 90, 30s, 15m, 12h or 7d\n`);
    return 2;
  }
  try {
    const config = resolveConfig();
    if (config.jwt.publicKey !== undefined || config.jwt.jwksUrl !== undefined) {
      throw new KeySourceError(
        'JWT_PUBLIC_KEY',
        'tokens for a public key or JWKS are issued by your identity provider, not by Verdict',
      );
    }
    let secret = config.jwt.secret;
    if (secret === undefined) {
      if (config.databaseUrl !== undefined) {
        throw new KeySourceError('JWT_SECRET', 'DATABASE_URL is set: set JWT_SECRET to mint tokens');
      }
      secret = loadOrCreateDevSecret(config.dataDir).secret;
    }
    const token = mintToken(secret, {
      scopes: scopes as Scope[],
      sub: typeof values.sub === 'string' ? values.sub : 'dev',
      ttlSeconds,
      issuer: config.jwt.issuer ?? (config.jwt.secret === undefined ? DEV_ISSUER : undefined),
      audience: config.jwt.audience,
      clientId: typeof values['client-id'] === 'string' ? values['client-id'] : undefined,
      principalType: values.human === true ? 'human' : undefined,
    });
    process.stdout.write(`${token}\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof KeySourceError) {
      process.stderr.write(`verdict token: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

process.exitCode = main(process.argv.slice(2));
