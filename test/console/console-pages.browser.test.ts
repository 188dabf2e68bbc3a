import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectAccessible, launchBrowser, newPerson, screenshot } from '../support/browser.ts';
import { freePort } from '../support/net.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

// End to end in a real Chromium against a real OpenID provider (oidc-provider, development
// interactions): sign-in with the organisation, the decision explorer finding a denial and showing
// why, hostile agent strings shown as text, a person without Verdict access refused. axe-core on
// every page visited.

const poll = <T>(probe: () => T | Promise<T>) => expect.poll(probe, { timeout: 10_000, interval: 50 });

const CLIENT_ID = 'verdict-console';
const CLIENT_SECRET = 'a-client-secret-for-the-console-pages-suite';
const GROUPS: Record<string, string[]> = {
  alice: ['verdict-approvers'],
  bob: ['verdict-auditors'],
  mallory: ['contractors'],
};
const SCOPE_MAP = 'verdict-approvers=approvals:grant,audit:read;verdict-auditors=audit:read';

/** Script payloads an agent controls (its subject id, a tool argument). */
const PAYLOAD_SUBJECT = 'code-agent"><img src=x onerror="window.__pwned=1">';
const PAYLOAD_PATH = '</pre><script>window.__pwned=2</script>';

async function startProvider(redirectUri: string, servers: Server[]): Promise<string> {
  let handle: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
  const server = createServer((req, res) => handle(req, res));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(url, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    claims: { openid: ['sub'], profile: ['name'], groups: ['groups'] },
    scopes: ['openid', 'profile', 'groups'],
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ['a-cookie-key-for-the-console-pages-suite'] },
    findAccount: (_ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, name: id, groups: GROUPS[id] ?? [] }),
    }),
  });
  handle = provider.callback();
  return url;
}

function call(subject: string, path: string) {
  return {
    subject: { type: 'agent', id: subject, properties: { on_behalf_of: 'user:42' } },
    action: { name: 'tool.call' },
    resource: { type: 'tool', id: 'read_file', properties: { risk: 'high', arguments: { path } } },
    context: {
      session: { untrusted_content: false, tool_calls: 1 },
      data_classification: 'internal',
    },
  };
}

describe('the console pages in a real browser, signed in with OIDC', () => {
  let verdict: TestVerdict;
  let browser: Browser;
  const servers: Server[] = [];

  beforeAll(async () => {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    const issuer = await startProvider(`${publicUrl}/console/callback`, servers);
    verdict = await startTestVerdict('console_pages', {
      port,
      env: {
        VERDICT_PUBLIC_URL: publicUrl,
        VERDICT_OIDC_ISSUER: issuer,
        VERDICT_OIDC_CLIENT_ID: CLIENT_ID,
        VERDICT_OIDC_CLIENT_SECRET: CLIENT_SECRET,
        VERDICT_OIDC_SCOPES: 'openid profile groups',
        VERDICT_OIDC_SCOPE_MAP: SCOPE_MAP,
      },
    });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await verdict?.close();
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });

  const decide = async (envelope: unknown) => {
    const res = await fetch(`${verdict.url}/v1/decisions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${verdict.token('svc-agent-runtime', ['decisions:evaluate'])}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify(envelope),
    });
    expect(res.status).toBe(200);
    return (await res.json()) as { allow: boolean; decision_id: string };
  };

  /** From the console's login page through the provider's login and consent forms. */
  const signInWithOrganisation = async (page: Page, login: string) => {
    await page.getByRole('link', { name: 'Sign in with your organisation' }).click();
    await page.locator('input[name="login"]').waitFor({ timeout: 10_000 });
    await page.locator('input[name="login"]').fill(login);
    await page.locator('input[name="password"]').fill('any');
    await page.locator('button[type="submit"]').click();
    // The consent form (first sign-in of this account to this client).
    await page.waitForURL(
      (url) => url.pathname.startsWith('/console') || url.pathname.includes('interaction'),
    );
    if (!new URL(page.url()).pathname.startsWith('/console')) {
      await page.locator('button[type="submit"]').click();
    }
  };

  it('signs in with the organisation, finds a denial in the explorer and shows why; agent strings run nothing', async () => {
    const denied = await decide(call(PAYLOAD_SUBJECT, PAYLOAD_PATH));
    expect(denied.allow).toBe(false);

    const { page, cspViolations } = await newPerson(browser);
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    await page.goto(`${verdict.url}/console/decisions?allow=false`);
    expect(new URL(page.url()).pathname).toBe('/console/login');
    // OIDC is configured: token sign-in is off by default, the organisation's link is offered.
    expect(await page.getByLabel('Access token').count()).toBe(0);
    await expectAccessible(page);
    await screenshot(page, 'console-login-oidc');

    await signInWithOrganisation(page, 'alice');
    await poll(() => new URL(page.url()).pathname).toBe('/console/decisions');
    expect(new URL(page.url()).searchParams.get('allow')).toBe('false');
    await poll(() => page.getByText('Signed in as').textContent()).toContain('alice');
    const row = page.locator(`tr[data-decision="${denied.decision_id}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain(PAYLOAD_SUBJECT);
    // Denials only: every row the filter shows is a deny.
    const rows = await page.locator('#decisions tbody tr').count();
    expect(await page.locator('#decisions tbody .badge.deny').count()).toBe(rows);
    await expectAccessible(page);
    await screenshot(page, 'console-decisions');

    // A filter by the form: the control that denied it.
    await page.getByLabel('Outcome').selectOption('');
    await page.getByLabel('Violated control').fill('TOOL-003');
    await page.getByRole('button', { name: 'Search' }).click();
    await poll(() => new URL(page.url()).searchParams.get('control')).toBe('TOOL-003');
    await row.waitFor({ timeout: 10_000 });

    await row.getByRole('link', { name: /Why/ }).click();
    await poll(() => new URL(page.url()).pathname).toBe(`/console/decisions/${denied.decision_id}`);
    expect(await page.locator('#outcome').textContent()).toContain('deny');
    const violations = await page.locator('#violations').textContent();
    expect(violations).toContain('TOOL-003');
    expect(await page.textContent('main')).toContain(PAYLOAD_PATH);
    await expectAccessible(page);
    await screenshot(page, 'console-decision-why');

    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(dialogs).toEqual([]);
    expect(cspViolations).toEqual([]);
    await page.context().close();
  });

  it('refuses a person whose groups give no Verdict access, and an auditor sees no approval action', async () => {
    const { page } = await newPerson(browser);
    await page.goto(`${verdict.url}/console/login`);
    await signInWithOrganisation(page, 'mallory');
    await poll(() => page.textContent('main')).toContain('no Verdict access');
    expect(await page.getByText('Signed in as').count()).toBe(0);
    await page.context().close();

    const auditor = await newPerson(browser);
    await auditor.page.goto(`${verdict.url}/console/login?next=%2Fconsole%2Fdecisions`);
    await signInWithOrganisation(auditor.page, 'bob');
    await poll(() => new URL(auditor.page.url()).pathname).toBe('/console/decisions');
    expect(await auditor.page.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    await auditor.page.context().close();
  });

  it('a callback without its pending sign-in is refused', async () => {
    const res = await fetch(`${verdict.url}/console/callback?code=abc&state=def`);
    expect(res.status).toBe(401);
  });
});
