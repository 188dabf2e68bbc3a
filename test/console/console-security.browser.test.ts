import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSigner } from 'fast-jwt';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectAccessible, launchBrowser, newPerson } from '../support/browser.ts';
import { withForgedSignature } from '../support/tokens.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

/** Polls a page (a live update, a navigation) for up to 10 s: the machine may be busy. */
const poll = <T>(probe: () => T | Promise<T>) => expect.poll(probe, { timeout: 10_000, interval: 50 });

// Security in a real Chromium: script payloads in every agent-controlled field run nothing on any
// page; a cross-site (and a same-site, cross-origin) form post changes nothing; a forged or expired
// token does not sign in; a non-human principal cannot approve; an auditor sees no Approve button
// and gets 403 on the action.

/** Each payload sets window.__pwned if it ever runs as markup or script. */
const PAYLOAD = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">"'><svg onload="window.__pwned=3">`;

function call(agent: string, extra: Record<string, unknown> = {}) {
  return {
    subject: { type: 'agent', id: agent, properties: { on_behalf_of: `user:${PAYLOAD}` } },
    action: { name: 'tool.call' },
    resource: {
      type: 'tool',
      id: 'read_file',
      properties: { risk: 'high', arguments: { path: `/workspace/${PAYLOAD}` } },
    },
    context: {
      session: { untrusted_content: false, tool_calls: 1 },
      data_classification: 'internal',
      ...extra,
    },
  };
}

describe('console security in a real browser', () => {
  let verdict: TestVerdict;
  let browser: Browser;
  let approvalId: string;
  let waiverId: string;
  let attacker: Server;

  const api = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(`${verdict.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  const signIn = async (page: Page, token: string) => {
    await page.goto(`${verdict.url}/console/login`);
    await page.getByLabel('Access token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };

  /** Nothing the payloads carry ran, and nothing they carry became an element. */
  const expectInert = async (page: Page) => {
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.locator('main img, main svg, main script').count()).toBe(0);
    expect(await page.locator('a[href^="javascript:" i]').count()).toBe(0);
    expect(await page.locator('main').textContent()).toContain('<script>window.__pwned=1</script>');
  };

  beforeAll(async () => {
    verdict = await startTestVerdict('console_security', { env: { VERDICT_CONSOLE_TOKEN_LOGIN: 'true' } });
    browser = await launchBrowser();
    // An approval request whose agent, user and arguments are script payloads. A deny opens one
    // only when an approval could lift it: the payload-named agent is on no allowlist (TOOL-001),
    // so that control is waived for it first, through the four-eyes workflow like any waiver.
    const allowlisted = await api('POST', '/v1/exceptions', verdict.token('owner', ['exceptions:request']), {
      control: 'TOOL-001',
      subject_id: `agent${PAYLOAD}`,
      reason: 'the console security test: an agent whose id is a script payload',
      expires_at: new Date(Date.now() + 86_400_000).toISOString(),
    });
    expect(allowlisted.status).toBe(201);
    const approvedWaiver = await api(
      'POST',
      `/v1/exceptions/${allowlisted.json.id as string}/approve`,
      verdict.token('risk-owner', ['exceptions:approve']),
      { reason: 'test' },
    );
    expect(approvedWaiver.status).toBe(200);
    const agentToken = verdict.token('svc-agent-runtime', ['decisions:evaluate']);
    const denied = await api('POST', '/v1/decisions', agentToken, call(`agent${PAYLOAD}`));
    expect(denied.status).toBe(200);
    approvalId = (denied.json.approval_request as { id: string }).id;
    // A waiver whose every free-text field is a payload (requested through the API: no form limits).
    const requester = verdict.token(`mallory${PAYLOAD}`, ['exceptions:request']);
    const waiver = await api('POST', '/v1/exceptions', requester, {
      control: 'TOOL-006',
      subject_id: `subject${PAYLOAD}`,
      resource_id: `resource${PAYLOAD}`,
      action: `action${PAYLOAD}`,
      reason: `reason${PAYLOAD}`,
      compensating_controls: [`control${PAYLOAD}`],
      ticket: {
        system: `sys${PAYLOAD}`,
        key: 'javascript:window.__pwned=4',
        url: 'javascript:window.__pwned=5',
      },
      expires_at: new Date(Date.now() + 5 * 86_400_000).toISOString(),
    });
    expect(waiver.status).toBe(201);
    waiverId = waiver.json.id as string;
    // The attacker's page: a form that posts an approval to the console, sent on load.
    attacker = createServer((req, res) => {
      const target = new URL(req.url ?? '/', 'http://x').searchParams.get('target') ?? '';
      res.writeHead(200, { 'content-type': 'text/html' }).end(
        `<!doctype html><title>win a prize</title><form id="f" method="post" action="${target}">
          <input name="verdict" value="approve"><input name="reason" value="csrf"></form>
          <script>document.getElementById('f').submit()</script>`,
      );
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await browser?.close();
    await verdict?.close();
    await new Promise((resolve) => attacker?.close(resolve));
  });

  it('script payloads in every agent-controlled field run nothing, on every page', async () => {
    const { page, context } = await newPerson(browser);
    await signIn(
      page,
      verdict.token('alice@example.com', ['approvals:grant', 'exceptions:approve', 'audit:read'], true),
    );
    for (const path of [
      '/console/approvals',
      `/console/approvals/${approvalId}`,
      '/console/waivers',
      `/console/waivers/${waiverId}`,
    ]) {
      await page.goto(`${verdict.url}${path}`);
      // Give a live update (the inbox's SSE) time to land, then check.
      await page.waitForTimeout(path === '/console/approvals' ? 500 : 0);
      await expectInert(page);
      await expectAccessible(page);
    }
    await context.close();
  });

  it('a cross-site or cross-origin form post changes nothing', async () => {
    const { page, context } = await newPerson(browser);
    await signIn(page, verdict.token('alice@example.com', ['approvals:grant'], true));
    await poll(() => new URL(page.url()).pathname).toBe('/console/approvals');
    const port = (attacker.address() as AddressInfo).port;
    const target = `${verdict.url}/console/approvals/${approvalId}/decide`;
    // localhost is another site than 127.0.0.1 (SameSite cookies stay home); 127.0.0.1 on another
    // port is the same site but another origin (the cookies go, the CSRF token cannot).
    for (const origin of [`http://localhost:${port}`, `http://127.0.0.1:${port}`]) {
      const answered = page.waitForResponse((r) => r.url() === target);
      await page.goto(`${origin}/?target=${encodeURIComponent(target)}`);
      const response = await answered;
      expect([401, 403]).toContain(response.status());
      expect((await verdict.verdict.grants?.approvals.get(approvalId))?.state).toBe('pending');
    }
    await context.close();
  });

  it('a forged or expired token does not sign in', async () => {
    const { page, context } = await newPerson(browser);
    const good = verdict.token('alice@example.com', ['approvals:grant'], true);
    const now = Math.floor(Date.now() / 1000);
    const expired = createSigner({ key: verdict.secret, algorithm: 'HS256' })({
      sub: 'alice@example.com',
      scope: 'approvals:grant',
      principal_type: 'human',
      iat: now - 7200,
      exp: now - 3600,
    });
    for (const [token, message] of [
      [withForgedSignature(good), 'not accepted'],
      [expired, 'expired'],
      ['not-a-jwt', 'not accepted'],
    ] as const) {
      await signIn(page, token);
      expect(new URL(page.url()).pathname).toBe('/console/login');
      expect(await page.getByRole('alert').textContent()).toContain(message);
      expect((await context.cookies()).find((c) => c.name === 'verdict_session')).toBeUndefined();
      await expectAccessible(page);
    }
    await context.close();
  });

  it('a non-human principal cannot approve an agent action', async () => {
    const { page, context } = await newPerson(browser);
    await signIn(page, verdict.token('ops-bot', ['approvals:grant']));
    await page.goto(`${verdict.url}/console/approvals/${approvalId}`);
    expect(await page.locator('main').textContent()).toContain('not a human principal');
    await page.getByRole('button', { name: 'Approve' }).click();
    await poll(() => page.getByRole('alert').textContent()).toContain('only a human principal');
    expect((await verdict.verdict.grants?.approvals.get(approvalId))?.state).toBe('pending');
    await context.close();
  });

  it('an auditor sees no Approve button and gets 403 on the action', async () => {
    const { page, context } = await newPerson(browser);
    await signIn(page, verdict.token('auditor@example.com', ['audit:read'], true));
    await page.goto(`${verdict.url}/console/approvals/${approvalId}`);
    expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    await page.goto(`${verdict.url}/console/waivers/${waiverId}`);
    expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    // With a valid CSRF token (from the page's sign-out form) the post is still refused.
    const csrf = await page.locator('input[name="_csrf"]').first().inputValue();
    for (const path of [`/console/approvals/${approvalId}/decide`, `/console/waivers/${waiverId}/decide`]) {
      const res = await page.request.post(`${verdict.url}${path}`, {
        form: { _csrf: csrf, verdict: 'approve', reason: 'auditor' },
      });
      expect(res.status()).toBe(403);
    }
    expect((await verdict.verdict.grants?.approvals.get(approvalId))?.state).toBe('pending');
    expect((await verdict.verdict.grants?.waivers.get(waiverId))?.state).toBe('pending');
    await context.close();
  });
});
