import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectAccessible, launchBrowser, newPerson, screenshot, tabTo } from '../support/browser.ts';
import { contractFixtureBundle } from '../support/bundle.ts';
import { freePort } from '../support/net.ts';
import {
  signInWithOrganisation,
  startOidcProvider,
  type TestOidcProvider,
} from '../support/oidc-provider.ts';
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
  carol: ['verdict-policy-authors'],
};
const SCOPE_MAP =
  'verdict-approvers=approvals:grant,audit:read;verdict-auditors=audit:read;verdict-policy-authors=bundles:write,audit:read';

const UPLOAD_REASON =
  'built from /home/releasebot/workspace/verdictpolicies/contractfixture/build/output/release/bundle.tar.gz';

/** Script payloads an agent controls (its subject id, a tool argument). */
const PAYLOAD_SUBJECT = 'code-agent"><img src=x onerror="window.__pwned=1">';
const PAYLOAD_PATH = '</pre><script>window.__pwned=2</script>';

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
  let provider: TestOidcProvider | undefined;

  beforeAll(async () => {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    provider = await startOidcProvider({
      client: { id: CLIENT_ID, secret: CLIENT_SECRET, redirectUri: `${publicUrl}/console/callback` },
      groups: GROUPS,
      groupsInIdToken: true,
    });
    const issuer = provider.issuer;
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
    await provider?.close();
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

  it('replays a decision and opens it in the playground, which evaluates without recording', async () => {
    const denied = await decide(call('replay-agent', '/etc/passwd'));
    const { page, cspViolations } = await newPerson(browser);
    await page.goto(`${verdict.url}/console/decisions/${denied.decision_id}`);
    await signInWithOrganisation(page, 'alice');
    await poll(() => new URL(page.url()).pathname).toBe(`/console/decisions/${denied.decision_id}`);

    await page.getByRole('button', { name: 'Replay' }).click();
    await poll(() => new URL(page.url()).pathname).toBe(`/console/decisions/${denied.decision_id}/replay`);
    const replay = await page.locator('#replay').textContent();
    expect(replay).toContain('On its own revision');
    expect(replay).toContain('On the active revision');
    expect(replay).toContain('the same result as recorded');
    await expectAccessible(page);
    await screenshot(page, 'console-replay');

    await page.goto(`${verdict.url}/console/decisions/${denied.decision_id}`);
    await page.getByRole('button', { name: 'Open in the playground' }).click();
    await poll(() => new URL(page.url()).pathname).toBe('/console/playground');
    expect(await page.getByLabel('Input').inputValue()).toContain('replay-agent');
    const count = async () => {
      const res = await fetch(`${verdict.url}/v1/decisions?limit=1000`, {
        headers: { authorization: `Bearer ${verdict.token('auditor', ['audit:read'])}` },
      });
      return ((await res.json()) as { items: unknown[] }).items.length;
    };
    const before = await count();
    // Keyboard only: the Evaluate button is reached with Tab and pressed with Enter.
    await page.locator('body').focus();
    await tabTo(page, 'form[action="/console/playground"] button[type="submit"]');
    await page.keyboard.press('Enter');
    await page.locator('#result').waitFor({ timeout: 10_000 });
    const result = await page.locator('#result').textContent();
    expect(result).toContain('deny');
    expect(result).toContain('TOOL-005');
    expect(await count()).toBe(before);
    await expectAccessible(page);
    await screenshot(page, 'console-playground');

    // A pasted input, hostile strings included, on the active revision.
    await page.getByLabel('Input').fill(JSON.stringify(call(PAYLOAD_SUBJECT, PAYLOAD_PATH)));
    await page.getByRole('button', { name: 'Evaluate' }).click();
    await poll(() => page.locator('#result').textContent()).toContain('TOOL-001');
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(cspViolations).toEqual([]);
    await page.context().close();
  });

  it('shows the KPIs as charts and the chain status, and downloads an evidence package', async () => {
    await decide(call('kpi-agent', '/workspace/a.txt'));
    const { page, cspViolations } = await newPerson(browser);
    await page.goto(`${verdict.url}/console/kpis`);
    await signInWithOrganisation(page, 'bob');
    await poll(() => new URL(page.url()).pathname).toBe('/console/kpis');
    expect(await page.locator('#kpi-summary').textContent()).toMatch(/Decisions\s*\d+, \d+ denied/);
    expect(await page.locator('svg.chart rect').count()).toBeGreaterThan(0);
    await page.getByLabel('Group by').selectOption('hour');
    await page.getByRole('button', { name: 'Show' }).click();
    await poll(() => new URL(page.url()).searchParams.get('bucket')).toBe('hour');
    await expectAccessible(page);
    // A bar is a bar however few the buckets (one bucket drew a block across the chart), and one
    // bucket's label is written once, under it.
    const bars = page.locator('svg.chart rect.total');
    for (const width of await bars.evaluateAll((rects) =>
      rects.map((r) => r.getBoundingClientRect().width),
    )) {
      expect(width).toBeLessThanOrEqual(48);
    }
    if ((await bars.count()) === 1) expect(await page.locator('svg.chart text.label').count()).toBe(1);
    // The form's fields sit on one line, each under its label (a label beside its select put the
    // select out of line).
    const fields = await page.locator('form.filters input, form.filters select').evaluateAll((elements) =>
      elements.map((f) => {
        const label = document.querySelector(`label[for="${f.id}"]`)?.getBoundingClientRect();
        const box = f.getBoundingClientRect();
        return { bottom: Math.round(box.bottom), under: label !== undefined && label.bottom <= box.top + 1 };
      }),
    );
    expect(fields.map((f) => f.under)).toEqual([true, true, true]);
    expect(new Set(fields.map((f) => f.bottom)).size).toBe(1);
    await screenshot(page, 'console-kpis');

    await page.getByRole('link', { name: 'Evidence' }).click();
    await poll(() => new URL(page.url()).pathname).toBe('/console/evidence');
    expect(await page.locator('#chain-status').textContent()).toContain('intact');
    await expectAccessible(page);
    await page.getByLabel('Resource type').fill('tool');
    await page.getByLabel('Resource', { exact: true }).fill('read_file');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download the evidence package' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('evidence-tool-read_file.tar.gz');
    const file = await download.path();
    expect(readFileSync(file).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    await screenshot(page, 'console-evidence');
    expect(cspViolations).toEqual([]);
    await page.context().close();
  });

  it('shadows and activates an uploaded revision from the policies page; an auditor sees no action', async () => {
    const upload = await fetch(
      // A long reason with no hyphen or space to break at (a path on the uploader's machine): the
      // revisions table must still fit the page (expectAccessible checks the width).
      `${verdict.url}/v1/bundles?reason=${encodeURIComponent(UPLOAD_REASON)}`,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${verdict.token('release-bot', ['bundles:write'])}`,
          'content-type': 'application/gzip',
        },
        body: readFileSync(contractFixtureBundle()),
      },
    );
    expect(upload.status).toBe(201);
    const uploaded = (await upload.json()) as { digest: string; revision: string };

    const auditor = await newPerson(browser);
    await auditor.page.goto(`${verdict.url}/console/policies`);
    await signInWithOrganisation(auditor.page, 'bob');
    await poll(() => new URL(auditor.page.url()).pathname).toBe('/console/policies');
    expect(await auditor.page.getByRole('button', { name: /Activate|Shadow|Roll back/ }).count()).toBe(0);
    await expectAccessible(auditor.page);
    // The action itself is refused, not only hidden: a same-origin POST with a valid CSRF token
    // (the Sign out form's) gets the 403 of the missing scope.
    const refused = await auditor.page.evaluate(async (digest) => {
      const token = (document.querySelector('input[name="_csrf"]') as HTMLInputElement).value;
      const res = await fetch(`/console/policies/${digest}/activate`, {
        method: 'POST',
        headers: { 'x-csrf-token': token, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'expected_active=none',
      });
      return { status: res.status, text: await res.text() };
    }, uploaded.digest);
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('Your sign-in does not allow this.');
    await auditor.context.close();

    // An impact analysis of the candidate on the traffic recorded so far shows on the page (issue 22).
    const impact = await fetch(`${verdict.url}/v1/bundles/${uploaded.digest}/impact`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${verdict.token('release-bot', ['bundles:write'])}`,
        'content-type': 'application/json',
      },
      body: '{}',
    });
    expect(impact.status).toBe(202);
    const run = (await impact.json()) as { id: string };
    await expect
      .poll(async () => (await verdict.verdict.lifecycle!.impact.get(run.id))?.state, { timeout: 30_000 })
      .toBe('done');

    const { page, cspViolations } = await newPerson(browser);
    await page.goto(`${verdict.url}/console/policies`);
    await signInWithOrganisation(page, 'carol');
    await poll(() => new URL(page.url()).pathname).toBe('/console/policies');
    const impactRow = page.locator('#impact-runs tbody tr').first();
    expect(await impactRow.textContent()).toContain('done');
    expect(await impactRow.textContent()).toContain(uploaded.digest.slice(0, 19));
    const row = page.locator(`tr[data-revision="${uploaded.revision}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.textContent()).toContain('inactive');
    await expectAccessible(page);

    await row.getByRole('button', { name: 'Shadow' }).click();
    await poll(() => page.locator('#shadow-revision').textContent()).toContain(uploaded.digest);
    await poll(() => page.locator('.notice.ok').textContent()).toContain('shadow');
    await row.getByRole('button', { name: 'Activate' }).click();
    await poll(() => page.locator('#active-revision').textContent()).toContain(uploaded.digest);
    expect(await page.locator('#shadow-revision').textContent()).toContain('none');
    expect(await row.textContent()).toContain('active');
    await expectAccessible(page);
    expect(await row.textContent()).toContain(UPLOAD_REASON);
    await screenshot(page, 'console-policies');

    // The playground evaluates on any uploaded revision (here the one active before), unrecorded.
    await page.goto(`${verdict.url}/console/playground`);
    await page.getByLabel('Input').fill(JSON.stringify(call('playground-agent', '/workspace/a')));
    const other = page.getByLabel('Revision').locator('option').nth(1);
    await page.getByLabel('Revision').selectOption((await other.getAttribute('value')) as string);
    await page.getByRole('button', { name: 'Evaluate' }).click();
    await poll(() => page.locator('#result').textContent()).toContain('Outcome');
    expect(await page.locator('#result').textContent()).not.toContain(uploaded.digest);
    await expectAccessible(page);
    await page.goto(`${verdict.url}/console/policies`);

    // Roll back: the previously active revision again.
    await page.getByRole('button', { name: 'Roll back' }).click();
    await poll(() => page.locator('.notice.ok').textContent()).toContain('Rolled back');
    expect(await page.locator('#active-revision').textContent()).not.toContain(uploaded.digest);
    expect(cspViolations).toEqual([]);
    await page.context().close();
  }, 60_000); // many steps (an upload, an impact run, three lifecycle actions): slack for a busy host
});
