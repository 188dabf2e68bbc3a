/**
 * A real OpenID provider for tests: `oidc-provider` on 127.0.0.1 with its development interactions
 * (a login form that takes any name, then a consent form), one confidential client, and accounts
 * whose `groups` claim the test gives.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import type { Page } from 'playwright-core';

/** The provider and its server, to stop after the suite. */
export interface TestOidcProvider {
  issuer: string;
  close(): Promise<void>;
}

/**
 * Starts a provider. `groupsInIdToken` false follows OIDC Core 5.4 strictly: claims asked for by
 * scope come only from userinfo.
 */
export async function startOidcProvider(options: {
  client: { id: string; secret: string; redirectUri: string };
  groups: Record<string, string[]>;
  groupsInIdToken: boolean;
  name?: (id: string) => string;
}): Promise<TestOidcProvider> {
  let handle: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
  const server: Server = createServer((req, res) => handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: options.client.id,
        client_secret: options.client.secret,
        redirect_uris: [options.client.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    claims: { openid: ['sub'], profile: ['name'], groups: ['groups'] },
    scopes: ['openid', 'profile', 'groups'],
    conformIdTokenClaims: !options.groupsInIdToken,
    features: { devInteractions: { enabled: true } },
    cookies: { keys: [`a-cookie-key-for-${options.client.id}`] },
    findAccount: (_ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, name: options.name?.(id) ?? id, groups: options.groups[id] ?? [] }),
    }),
  });
  handle = provider.callback();
  return { issuer, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/**
 * In a browser: from the console's login page through the provider's development login and consent
 * forms (any password), back to the console.
 */
export async function signInWithOrganisation(page: Page, login: string): Promise<void> {
  await page.getByRole('link', { name: 'Sign in with your organisation' }).click();
  await page.locator('input[name="login"]').waitFor({ timeout: 10_000 });
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any');
  await page.locator('button[type="submit"]').click();
  // The consent form (first sign-in of this account to this client).
  await page.waitForURL((url) => url.pathname.startsWith('/console') || url.pathname.includes('interaction'));
  if (!new URL(page.url()).pathname.startsWith('/console')) {
    await page.locator('button[type="submit"]').click();
  }
}
