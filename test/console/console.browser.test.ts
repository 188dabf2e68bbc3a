import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectAccessible, launchBrowser, newPerson, screenshot, tabTo } from '../support/browser.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

/** Polls a page (a live update, a navigation) for up to 10 s: the machine may be busy. */
const poll = <T>(probe: () => T | Promise<T>) => expect.poll(probe, { timeout: 10_000, interval: 50 });

// End to end in a real Chromium: token sign-in, the live approvals inbox, approving an agent's
// call that the agent then retries, a waiver requested, refused to its requester and approved by a
// second person, sign-out (the old cookie is refused after). axe-core on every page visited.

/** A high-risk read_file call by code-agent for user:42: TOOL-003 asks for a human approval. */
function call(path: string, extra: Record<string, unknown> = {}) {
  return {
    subject: { type: 'agent', id: 'code-agent', properties: { on_behalf_of: 'user:42' } },
    action: { name: 'tool.call' },
    resource: { type: 'tool', id: 'read_file', properties: { risk: 'high', arguments: { path } } },
    context: {
      session: { untrusted_content: false, tool_calls: 1 },
      data_classification: 'internal',
      ...extra,
    },
  };
}

describe('the console in a real browser', () => {
  let verdict: TestVerdict;
  let browser: Browser;

  beforeAll(async () => {
    verdict = await startTestVerdict('console_browser', { env: { VERDICT_CONSOLE_TOKEN_LOGIN: 'true' } });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await verdict?.close();
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
    return (await res.json()) as { allow: boolean; approval_request?: { id: string } };
  };

  const signIn = async (page: Page, token: string) => {
    await page.goto(`${verdict.url}/console/login`);
    await page.getByLabel('Access token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };

  it('signs in by token, shows a denied call live, approves it, and the retry passes', async () => {
    const { page, cspViolations } = await newPerson(browser);
    await page.goto(`${verdict.url}/console/approvals`);
    // Signed out: the console sends people to sign in first.
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await expectAccessible(page);
    await page.getByLabel('Access token').fill(verdict.token('alice@example.com', ['approvals:grant'], true));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await poll(() => new URL(page.url()).pathname).toBe('/console/approvals');
    await poll(() => page.getByText('Signed in as').textContent()).toContain('alice@example.com');
    await poll(() => page.locator('#inbox-empty').count()).toBe(1);
    await expectAccessible(page);

    // The agent's call is denied for want of an approval: the open inbox shows it, no reload.
    const denied = await decide(call('/workspace/deploy.yaml'));
    expect(denied.allow).toBe(false);
    const id = denied.approval_request?.id as string;
    const row = page.locator(`tr[data-approval="${id}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain('code-agent');
    expect(await row.textContent()).toContain('read_file');
    await expectAccessible(page);
    await screenshot(page, 'approvals-inbox');

    await row.getByRole('link', { name: id }).click();
    await poll(() => new URL(page.url()).pathname).toBe(`/console/approvals/${id}`);
    await expectAccessible(page);
    // The exact arguments the approval is bound to: as recorded, and their digest.
    expect(await page.locator('main').textContent()).toContain('/workspace/deploy.yaml');
    await screenshot(page, 'approval-detail');
    // With the keyboard only: Tab to the Reason, type it, Tab to Approve, Enter.
    await tabTo(page, '#reason');
    await page.keyboard.type('checked the path with the user');
    await tabTo(page, 'button[value="approve"]');
    await page.keyboard.press('Enter');
    await poll(() => page.getByRole('status').textContent()).toContain('Approved');
    await expectAccessible(page);
    expect(await page.locator('main').textContent()).toContain('granted');

    // The agent's retry, naming the approval, is allowed.
    const retried = await decide(call('/workspace/deploy.yaml', { approval_id: id }));
    expect(retried.allow).toBe(true);
    // And the event is alice's, on the chained history, as through the API.
    const history = await verdict.verdict.grants?.approvals.history(id);
    expect(history?.find((e) => e.action === 'grant')?.actor).toBe('alice@example.com');
    expect(cspViolations).toEqual([]);
    await page.context().close();
  });

  it('a waiver is requested, refused to its requester, approved by a second person', async () => {
    const bob = await newPerson(browser);
    await signIn(
      bob.page,
      verdict.token('bob@example.com', ['exceptions:request', 'exceptions:approve'], true),
    );
    await bob.page.goto(`${verdict.url}/console/waivers`);
    await expectAccessible(bob.page);
    await bob.page.getByRole('link', { name: 'Request a waiver' }).click();
    await poll(() => new URL(bob.page.url()).pathname).toBe('/console/waivers/new');
    await expectAccessible(bob.page);
    // The maximum per severity is shown, and the date field carries it.
    expect(await bob.page.locator('#expires_on-hint').textContent()).toMatch(/critical 30 days/);
    const inTenDays = new Date(Date.now() + 10 * 86_400_000).toISOString().slice(0, 10);
    await bob.page.getByLabel('Control', { exact: true }).selectOption('TOOL-006');
    await bob.page.getByLabel('Subject', { exact: true }).fill('code-agent');
    await bob.page.getByLabel('Resource', { exact: true }).fill('search_kb');
    await bob.page.getByLabel('Action', { exact: true }).fill('tool.call');
    await bob.page.getByLabel('Reason', { exact: true }).fill('rate limit too low for the migration week');
    await bob.page.getByLabel('Compensating controls').fill('manual review of the logs\ndaily report');
    await bob.page.getByLabel('Ticket').fill('JIRA:SEC-123');
    await bob.page.getByLabel('Expires on').fill(inTenDays);
    await bob.page.getByRole('button', { name: 'Request waiver' }).click();
    await poll(() => bob.page.getByRole('status').textContent()).toContain('Waiver requested');
    const waiverUrl = bob.page.url().replace(/\?.*$/, '');
    const waiverId = new URL(waiverUrl).pathname.split('/').pop() as string;
    expect(waiverId).toMatch(/^exc_/);
    await expectAccessible(bob.page);
    await screenshot(bob.page, 'waiver-pending');

    // The requester may not approve their own waiver: the store refuses, the page says why.
    await bob.page.getByRole('button', { name: 'Approve' }).click();
    await poll(() => bob.page.getByRole('alert').textContent()).toContain('cannot approve');
    await expectAccessible(bob.page);
    expect((await verdict.verdict.grants?.waivers.get(waiverId))?.state).toBe('pending');

    // Bob keeps the register open: the waiver is pending there.
    await bob.page.goto(`${verdict.url}/console/waivers`);
    await bob.page.locator(`#waivers-pending tr[data-waiver="${waiverId}"]`).waitFor({ timeout: 10_000 });
    await expectAccessible(bob.page);

    const carol = await newPerson(browser);
    await signIn(carol.page, verdict.token('carol@example.com', ['exceptions:approve'], true));
    await carol.page.goto(waiverUrl);
    await expectAccessible(carol.page);
    await carol.page.getByLabel('Reason').fill('compensated by the daily report');
    await carol.page.getByRole('button', { name: 'Approve' }).click();
    await poll(() => carol.page.getByRole('status').textContent()).toContain('Approved');
    expect(await carol.page.locator('dl').first().textContent()).toContain('active');
    await expectAccessible(carol.page);
    const history = await verdict.verdict.grants?.waivers.history(waiverId);
    expect(history?.map((e) => [e.action, e.actor])).toEqual([
      ['request', 'bob@example.com'],
      ['activate', 'carol@example.com'],
    ]);
    // Bob's open register follows, without a reload: the waiver has moved to the active ones.
    await poll(() => bob.page.locator(`#waivers-active tr[data-waiver="${waiverId}"]`).count()).toBe(1);
    expect(await bob.page.locator(`#waivers-pending tr[data-waiver="${waiverId}"]`).count()).toBe(0);
    await expectAccessible(bob.page);
    await screenshot(bob.page, 'waivers-register');
    await carol.page.goto(`${verdict.url}/console/waivers?state=active`);
    expect(await carol.page.locator(`tr[data-waiver="${waiverId}"]`).count()).toBe(1);
    await expectAccessible(carol.page);
    expect([...bob.cspViolations, ...carol.cspViolations]).toEqual([]);
    await bob.context.close();
    await carol.context.close();
  });

  it('works without JavaScript: sign in, find the request, deny it', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    const denied = await decide(call('/workspace/no-script.yaml'));
    const id = denied.approval_request?.id as string;
    await signIn(page, verdict.token('erin@example.com', ['approvals:grant'], true));
    await poll(() => new URL(page.url()).pathname).toBe('/console/approvals');
    await page.locator(`tr[data-approval="${id}"]`).getByRole('link').click();
    await page.getByLabel('Reason').fill('not during the freeze');
    await page.getByRole('button', { name: 'Deny' }).click();
    await poll(() => page.getByRole('status').textContent()).toContain('Denied');
    expect((await verdict.verdict.grants?.approvals.get(id))?.state).toBe('denied');
    await context.close();
  });

  it('signs out: the session ends on the server, and the old cookie is refused after', async () => {
    const { context, page } = await newPerson(browser);
    // Signing in with the keyboard only.
    await page.goto(`${verdict.url}/console/login`);
    await tabTo(page, '#token');
    await page.keyboard.type(verdict.token('dave@example.com', ['audit:read'], true));
    await tabTo(page, 'button[type="submit"]:not(.who button)');
    await page.keyboard.press('Enter');
    await poll(() => new URL(page.url()).pathname).toBe('/console/approvals');
    const cookie = (await context.cookies()).find((c) => c.name === 'verdict_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/console' });
    const copied = `verdict_session=${cookie?.value}`;
    const before = await fetch(`${verdict.url}/console/approvals`, {
      headers: { cookie: copied },
      redirect: 'manual',
    });
    expect(before.status).toBe(200);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await poll(() => page.getByRole('status').textContent()).toContain('signed out');
    await expectAccessible(page);
    expect((await context.cookies()).find((c) => c.name === 'verdict_session')).toBeUndefined();

    // The copied cookie no longer opens anything, from any client.
    const after = await fetch(`${verdict.url}/console/approvals`, {
      headers: { cookie: copied },
      redirect: 'manual',
    });
    expect(after.status).toBe(303);
    expect(after.headers.get('location')).toMatch(/^\/console\/login/);
    await context.addCookies([{ ...(cookie as NonNullable<typeof cookie>) }]);
    await page.goto(`${verdict.url}/console/approvals`);
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await context.close();
  });
});
