import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectAccessible, launchBrowser, newPerson, screenshot } from '../support/browser.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

// End to end in a real Chromium: token sign-in, the live approvals inbox, approving an agent's
// call that the agent then retries, sign-out. axe-core on every page visited.

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
    await expect.poll(() => new URL(page.url()).pathname).toBe('/console/approvals');
    await expect.poll(() => page.getByText('Signed in as').textContent()).toContain('alice@example.com');
    await expect.poll(() => page.locator('#inbox-empty').count()).toBe(1);
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
    await expect.poll(() => new URL(page.url()).pathname).toBe(`/console/approvals/${id}`);
    await expectAccessible(page);
    await page.getByLabel('Reason').fill('checked the path with the user');
    await page.getByRole('button', { name: 'Approve' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Approved');
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
});
