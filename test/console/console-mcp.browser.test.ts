import type { Progress } from '@modelcontextprotocol/sdk/types.js';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectOpsHost, type OpsHost } from '../mcp/ops-host.ts';
import { expectAccessible, launchBrowser, newPerson, screenshot } from '../support/browser.ts';
import { freePort } from '../support/net.ts';
import {
  signInWithOrganisation,
  startOidcProvider,
  type TestOidcProvider,
} from '../support/oidc-provider.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

// The loop closes for an agent (issue 24), end to end: an MCP host (the SDK's real Client) calls a
// real MCP server through `verdict mcp-proxy --wait-for-approval`; the call is denied pending a human
// approval and held; an approver signed in with the organisation (a real OpenID provider) sees it
// appear live in the console's inbox in a real Chromium, reads the exact arguments and approves;
// the proxy's held call then goes through to the server and the host gets the tool's answer.

const poll = <T>(probe: () => T | Promise<T>) => expect.poll(probe, { timeout: 15_000, interval: 50 });

const CLIENT_ID = 'verdict-console-mcp';
const CLIENT_SECRET = 'a-client-secret-for-the-console-mcp-suite';

describe('mcp-proxy --wait-for-approval through a console approval, in a real browser', () => {
  let verdict: TestVerdict;
  let browser: Browser;
  let provider: TestOidcProvider | undefined;
  let host: OpsHost | undefined;

  beforeAll(async () => {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    provider = await startOidcProvider({
      client: { id: CLIENT_ID, secret: CLIENT_SECRET, redirectUri: `${publicUrl}/console/callback` },
      groups: { alice: ['verdict-approvers'] },
      groupsInIdToken: true,
    });
    verdict = await startTestVerdict('console_mcp', {
      port,
      env: {
        VERDICT_PUBLIC_URL: publicUrl,
        VERDICT_OIDC_ISSUER: provider.issuer,
        VERDICT_OIDC_CLIENT_ID: CLIENT_ID,
        VERDICT_OIDC_CLIENT_SECRET: CLIENT_SECRET,
        VERDICT_OIDC_SCOPES: 'openid profile groups',
        VERDICT_OIDC_SCOPE_MAP: 'verdict-approvers=approvals:grant,audit:read',
      },
    });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await host?.close();
    await browser?.close();
    await verdict?.close();
    await provider?.close();
  });

  it('holds the agent’s call while a person approves it in the open inbox, then forwards it', async () => {
    // The approver signs in with the organisation and keeps the inbox open.
    const { page, cspViolations } = await newPerson(browser);
    await page.goto(`${verdict.url}/console/approvals`);
    await signInWithOrganisation(page, 'alice');
    await poll(() => new URL(page.url()).pathname).toBe('/console/approvals');
    await poll(() => page.getByText('Signed in as').textContent()).toContain('alice');

    // The agent: an MCP host connected to a real MCP server through the proxy, which waits 60 s.
    const agent = await connectOpsHost(verdict, {
      user: 'user:dana',
      waitForApproval: '60s',
      name: 'agent-host',
    });
    host = agent;
    const seen = () => agent.served();
    const progress: Progress[] = [];
    let settled = false;
    const call = agent.client
      .callTool({ name: 'deploy_service', arguments: { service: 'billing', version: '2.4.1' } }, undefined, {
        onprogress: (p) => progress.push(p),
        timeout: 90_000,
      })
      .finally(() => {
        settled = true;
      });

    // The held call's request appears in the open inbox without a reload.
    const row = page.locator('#inbox-table tbody tr').filter({ hasText: 'user:dana' });
    await row.waitFor({ timeout: 15_000 });
    const id = (await row.getAttribute('data-approval')) as string;
    expect(id).toMatch(/^apr_/);
    expect(await row.textContent()).toContain('ops-agent');
    expect(await row.textContent()).toContain('deploy_service');
    await expectAccessible(page);
    await screenshot(page, 'mcp-wait-inbox');
    // The proxy holds the call, telling the host why, and the server has seen nothing.
    await poll(() => progress.length).toBeGreaterThan(0);
    expect(progress[0]?.message).toContain(id);
    expect(settled).toBe(false);
    expect(seen()).toEqual([]);

    // The approver reads the exact arguments the approval is bound to, and approves.
    await row.getByRole('link', { name: id }).click();
    await poll(() => new URL(page.url()).pathname).toBe(`/console/approvals/${id}`);
    const main = (await page.locator('main').textContent()) ?? '';
    expect(main).toContain('"service": "billing"');
    expect(main).toContain('"version": "2.4.1"');
    await expectAccessible(page);
    await screenshot(page, 'mcp-wait-approval');
    await page.getByLabel('Reason').fill('CHG-88: the billing release window');
    await page.getByRole('button', { name: 'Approve' }).click();
    await poll(() => page.getByRole('status').textContent()).toContain('Approved');
    expect(await page.locator('main').textContent()).toContain('granted');
    await expectAccessible(page);
    await screenshot(page, 'mcp-wait-approved');

    // The proxy decides the same call again with the approval and forwards it: the tool answers.
    const result = await call;
    expect(result.isError).toBeFalsy();
    expect((result.content as { text?: string }[]).map((c) => c.text).join('\n')).toBe('deployed billing');
    expect(seen()).toEqual([
      {
        tool: 'deploy_service',
        arguments: { service: 'billing', version: '2.4.1' },
        verdict_token_seen: false,
      },
    ]);
    // The approval was used once, and granted by alice as signed in with the organisation.
    const approval = await verdict.verdict.grants?.approvals.get(id);
    expect(approval?.uses).toBe(1);
    const history = await verdict.verdict.grants?.approvals.history(id);
    expect(history?.find((e) => e.action === 'grant')?.actor).toBe('alice');

    // The decided request has left the inbox.
    await page.goto(`${verdict.url}/console/approvals`);
    expect(await page.locator(`tr[data-approval="${id}"]`).count()).toBe(0);
    expect(cspViolations).toEqual([]);
    await page.context().close();
  }, 60_000); // two processes started (the proxy and the MCP server): slack for a busy host
});
