/**
 * The CLI's commands for what people do, against a running Verdict: `bundle push --quiet` prints
 * only the digest; `bundle list|events|shadow-report`, `decisions search|get|replay`, `waivers
 * list|show|request|approve|reject|revoke` and `approvals list|show|approve|deny` — with --json, the
 * API's filters as flags, and the API's scopes (a token without them is refused, exit 1).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Scope } from '../../src/auth/caller.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

const CLI = path.resolve(import.meta.dirname, '../../src/cli/verdict.ts');
const inDays = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString();

let verdict: TestVerdict;
beforeAll(async () => {
  verdict = await startTestVerdict('cli_records');
}, 60_000);
afterAll(async () => {
  await verdict?.close();
});

/** `verdict …` as `sub` with `scopes` (the token and URL from the environment, as a user sets them). */
function cli(args: string[], as: { sub?: string; scopes: Scope[]; human?: boolean }) {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    VERDICT_URL: verdict.url,
    VERDICT_TOKEN: verdict.token(as.sub ?? 'cli-user', as.scopes, as.human),
  };
  return new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env, encoding: 'utf8' }, (error, stdout, stderr) =>
      resolve({ status: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function decide(
  envelope: object,
): Promise<{ decision_id: string; allow: boolean; approval_request?: { id: string } }> {
  const response = await fetch(`${verdict.url}/v1/decisions`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${verdict.token('agent-runtime', ['decisions:evaluate'])}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify(envelope),
  });
  expect(response.status).toBe(200);
  return response.json() as never;
}

describe('verdict bundle', () => {
  it('push --quiet prints only the digest; list, events and shadow-report read the lifecycle', async () => {
    const push = await cli(['bundle', 'push', DEFAULT_BUNDLE, '--quiet'], { scopes: ['bundles:write'] });
    expect(push.stderr).toBe('');
    expect(push.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const digest = push.stdout.trim();

    const list = await cli(['bundle', 'list', '--limit', '5'], { scopes: ['bundles:read'] });
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^${digest}  active `, 'm'));
    const listed = JSON.parse((await cli(['bundle', 'list', '--json'], { scopes: ['bundles:read'] })).stdout);
    expect(listed.revisions.map((r: { digest: string }) => r.digest)).toContain(digest);

    const events = await cli(['bundle', 'events', '--action', 'upload', '--json'], {
      scopes: ['bundles:read'],
    });
    expect(events.status).toBe(0);
    const { events: uploads } = JSON.parse(events.stdout) as { events: { action: string }[] };
    expect(uploads.every((e) => e.action === 'upload')).toBe(true);

    const report = await cli(['bundle', 'shadow-report'], { scopes: ['audit:read'] });
    expect(report.status).toBe(0);
    expect(report.stdout).toMatch(/^shadow report .* → .*: 0 decisions compared/);
    // shadow-report needs audit:read, as the API does.
    const refused = await cli(['bundle', 'shadow-report'], { scopes: ['bundles:read'] });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^verdict: refused \(403\)/);
  });
});

describe('verdict decisions', () => {
  it('search with the API’s filters as flags, get, and replay', async () => {
    const denied = await decide({
      subject: { type: 'agent', id: 'cli-search-bot' },
      action: { name: 'tool.call' },
      resource: { type: 'tool', id: 'shell', properties: { arguments: { command: 'rm -rf /' } } },
      context: { session: { tool_calls: 1 }, data_classification: 'internal' },
    });
    expect(denied.allow).toBe(false);
    const audit = { scopes: ['audit:read'] as Scope[] };

    const search = await cli(
      ['decisions', 'search', '--subject-id', 'cli-search-bot', '--allow', 'false'],
      audit,
    );
    expect(search.status).toBe(0);
    expect(search.stdout).toMatch(
      new RegExp(`^${denied.decision_id}  \\S+  deny   agent:cli-search-bot tool.call tool:shell  \\[`),
    );
    const page = JSON.parse(
      (await cli(['decisions', 'search', '--subject-id', 'cli-search-bot', '--json'], audit)).stdout,
    );
    expect(page.items.map((r: { id: string }) => r.id)).toEqual([denied.decision_id]);
    expect((await cli(['decisions', 'search', '--subject-id', 'nobody-at-all'], audit)).stdout).toBe(
      'no decisions\n',
    );

    const get = await cli(['decisions', 'get', denied.decision_id], audit);
    expect(get.stdout).toContain(`${denied.decision_id}  `);
    expect(get.stdout).toContain('  caller: agent-runtime');

    const replay = await cli(['decisions', 'replay', denied.decision_id], audit);
    expect(replay.status).toBe(0);
    expect(replay.stdout).toContain('on its own revision: deny — matches the record');

    // The same scope as the API, and a usage error for a missing ID.
    expect((await cli(['decisions', 'search'], { scopes: ['decisions:evaluate'] })).status).toBe(1);
    expect((await cli(['decisions', 'get'], audit)).status).toBe(2);
  });
});

describe('verdict waivers and approvals', () => {
  it('requests, lists, approves, revokes and rejects waivers with their scopes', async () => {
    const requester = { sub: 'lead', scopes: ['exceptions:request'] as Scope[] };
    const approver = { sub: 'security', scopes: ['exceptions:approve'] as Scope[] };
    const request = (subject: string) =>
      cli(
        [
          'waivers',
          'request',
          '--control',
          'TOOL-006',
          '--subject-id',
          subject,
          '--reason',
          'migration in progress',
          '--expires-at',
          inDays(10),
          '--compensating-control',
          'sandboxed runner',
          '--ticket-system',
          'jira',
          '--ticket-key',
          'SEC-42',
          '--json',
        ],
        requester,
      );
    const created = await request('cli-agent');
    expect(created.stderr).toBe('');
    const waiver = JSON.parse(created.stdout) as { id: string; state: string };
    expect(waiver.state).toBe('pending');

    const pending = await cli(
      ['waivers', 'list', '--state', 'pending', '--subject-id', 'cli-agent'],
      requester,
    );
    expect(pending.stdout).toMatch(new RegExp(`^${waiver.id}  pending   TOOL-006  subject cli-agent`, 'm'));
    // The requester cannot approve (no exceptions:approve), and not their own waiver anyway.
    expect((await cli(['waivers', 'approve', waiver.id], requester)).status).toBe(1);

    const approved = await cli(['waivers', 'approve', waiver.id, '--reason', 'reviewed'], approver);
    expect(approved.stdout).toBe(`waiver ${waiver.id}: active\n`);
    expect((await cli(['waivers', 'revoke', waiver.id], approver)).status).toBe(2); // --reason is required
    expect((await cli(['waivers', 'revoke', waiver.id, '--reason', 'done'], approver)).stdout).toBe(
      `waiver ${waiver.id}: revoked\n`,
    );
    const shown = await cli(['waivers', 'show', waiver.id], requester);
    expect(shown.stdout).toMatch(/history: [3-9] events/);

    const other = JSON.parse((await request('cli-agent-2')).stdout) as { id: string };
    expect((await cli(['waivers', 'reject', other.id, '--reason', 'no'], approver)).stdout).toBe(
      `waiver ${other.id}: rejected\n`,
    );
  });

  it('lists, shows, approves and denies approval requests as a human', async () => {
    const call = (path: string) => ({
      subject: { type: 'agent', id: 'code-agent', properties: { on_behalf_of: 'user:42' } },
      action: { name: 'tool.call' },
      resource: { type: 'tool', id: 'read_file', properties: { risk: 'high', arguments: { path } } },
      context: { session: { untrusted_content: false, tool_calls: 1 }, data_classification: 'internal' },
    });
    const first = (await decide(call('/workspace/deploy.yaml'))).approval_request!.id;
    const second = (await decide(call('/workspace/other.yaml'))).approval_request!.id;
    const human = { sub: 'alice', scopes: ['approvals:grant'] as Scope[], human: true };

    const list = await cli(['approvals', 'list', '--state', 'pending'], human);
    expect(list.stdout).toMatch(new RegExp(`^${first}  pending   code-agent for user:42 → read_file`, 'm'));
    expect(list.stdout).toMatch(new RegExp(`^${second}  pending `, 'm'));

    // Not a human principal: refused, as by the API.
    const machine = await cli(['approvals', 'approve', first], { sub: 'bot', scopes: ['approvals:grant'] });
    expect(machine.status).toBe(1);
    expect(machine.stderr).toMatch(/^verdict: refused \(403\)/);

    expect((await cli(['approvals', 'approve', first, '--reason', 'expected'], human)).stdout).toBe(
      `approval ${first}: granted\n`,
    );
    expect((await cli(['approvals', 'deny', second], human)).stdout).toBe(`approval ${second}: denied\n`);
    const shown = await cli(['approvals', 'show', first, '--json'], { scopes: ['decisions:evaluate'] });
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: first, state: 'granted' });
  });
});
