import path from 'node:path';
import { parseArgs } from 'node:util';
import { runApiGroup } from './api-group.ts';
import { runImpact } from './bundle-impact.ts';
import { BUNDLE_READS } from './bundle-reads.ts';
import { AdminApiClient, type CliIo, CliRefusal, CliUsageError } from './client.ts';

export const BUNDLE_USAGE = `usage: verdict bundle <command> [options]

commands:
  push FILE [--activate] [--reason TEXT]   upload an OPA wasm bundle (opa build -t wasm …); with
                                           --activate, make it the active revision too; with
                                           --impact, run \`impact\` on it right after the upload
  impact DIGEST [--from T] [--to T] [--filter NAME=VALUE …]
                                           what DIGEST would have changed on the recorded decisions
                                           of a window (default the last 7 days); filters are those
                                           of GET /v1/decisions (action=tool.call, subject_id=…);
                                           exit 0 when done, 2 when it failed or could not start
  activate DIGEST [--reason TEXT] [--expect DIGEST]
                                           make a stored revision active on every replica
                                           (--expect: refuse unless DIGEST is active now)
  rollback [--reason TEXT]                 re-activate the revision that was active before this one
  shadow DIGEST [--reason TEXT]            evaluate DIGEST beside the active revision on every decision
  shadow --off [--reason TEXT]             stop shadowing
  status                                   the active and shadow revisions and what each replica serves
  list [--limit N] [--before DIGEST]       stored revisions, newest first, each with its state
  events [--action A] [--limit N] [--before ID]
                                           policy events (upload, activate, shadow_set, shadow_clear, refuse)
  shadow-report [--from ISO] [--to ISO] [--digest DIGEST]
                                           decisions whose outcome the shadow revision flips (audit:read)

options (every command):
  --url URL      the Verdict API (default $VERDICT_URL)
  --token TOKEN  a bearer token with bundles:write / bundles:read (default $VERDICT_TOKEN)
  --json         print the API's JSON answer instead of a summary
  --quiet        push: print only the digest (DIGEST=$(verdict bundle push FILE --quiet))

Any refusal (a bad bundle, a conflict, a missing scope) exits 1 with the reason on stderr.`;

interface Revision {
  digest: string;
  revision: string;
  entrypoints: string[];
  size: number;
  signed: boolean;
  uploaded_by: string;
  uploaded_at: string;
  state: string;
}

interface Change {
  changed: boolean;
  state: { version: number; active: string | null; shadow: string | null };
}

interface Status {
  desired: { version: number; active: string | null; shadow: string | null; active_since: string | null };
  replicas: {
    id: string;
    host: string;
    pid: number;
    active: string | null;
    shadow: string | null;
    since: string | null;
    heartbeat_at: string;
    failure: { message: string } | null;
  }[];
}

const hex = (digest: string) => digest.replace(/^sha256:/, '');
const short = (digest: string | null) => (digest ? `sha256:${hex(digest).slice(0, 12)}` : 'none');

function digestArg(value: string | undefined, what: string): string {
  if (!value) throw new CliUsageError(`${what}: a digest is needed`);
  const h = hex(value.trim().toLowerCase());
  if (!/^[0-9a-f]{64}$/.test(h))
    throw new CliUsageError(`${what}: "${value}" is not a sha256 digest (64 hex digits)`);
  return h;
}

/** `verdict bundle …`: returns the exit code. */
export async function bundleCommand(argv: string[], io: CliIo): Promise<number> {
  if (argv[0] !== undefined && Object.hasOwn(BUNDLE_READS, argv[0]))
    return runApiGroup({ name: 'bundle', usage: BUNDLE_USAGE, subcommands: BUNDLE_READS }, argv, io);
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      json: { type: 'boolean' },
      activate: { type: 'boolean' },
      reason: { type: 'string' },
      expect: { type: 'string' },
      off: { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
      impact: { type: 'boolean' },
      from: { type: 'string' },
      to: { type: 'string' },
      filter: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || command === 'help') {
    io.stdout(`${BUNDLE_USAGE}\n`);
    return command === undefined && !values.help ? 2 : 0;
  }
  const url = values.url ?? io.env.VERDICT_URL;
  const token = values.token ?? io.env.VERDICT_TOKEN;
  if (!url) throw new CliUsageError('no API URL: pass --url or set VERDICT_URL');
  if (!token)
    throw new CliUsageError(
      'no token: pass --token or set VERDICT_TOKEN (npm run token -- --scope bundles:write)',
    );
  const client = new AdminApiClient({ url, token, fetch: io.fetch });
  const print = (json: unknown, summary: string) =>
    io.stdout(values.json ? `${JSON.stringify(json, null, 2)}\n` : `${summary}\n`);
  const reason = values.reason;

  switch (command) {
    case 'push': {
      const file = rest[0];
      if (!file || rest.length > 1) throw new CliUsageError('push: one bundle FILE is needed');
      let bytes: Buffer;
      try {
        bytes = await io.readFile(path.resolve(io.cwd ?? process.cwd(), file));
      } catch (err) {
        throw new CliRefusal(
          0,
          'unreadable_file',
          `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`,
        );
      }
      const query = new URLSearchParams();
      if (values.activate) query.set('activate', 'true');
      if (reason) query.set('reason', reason);
      const { status, body } = await client.request<Revision>(
        'POST',
        `/v1/bundles${query.size ? `?${query}` : ''}`,
        {
          bytes,
          type: 'application/gzip',
        },
      );
      if (values.quiet) {
        io.stdout(`${body.digest}\n`);
        return 0;
      }
      print(
        body,
        `${status === 201 ? 'uploaded' : 'already stored'} ${body.digest} (revision ${body.revision}, ${body.size} bytes${body.signed ? ', signed' : ''}); state: ${body.state}`,
      );
      // Upload → impact → shadow → activate: the impact of what was just uploaded.
      if (values.impact) return runImpact(client, io, hex(body.digest), { ...values, json: false });
      return 0;
    }
    case 'impact':
      if (rest.length > 1) throw new CliUsageError('impact: one DIGEST is needed');
      return runImpact(client, io, digestArg(rest[0], 'impact'), values);
    case 'activate': {
      const digest = digestArg(rest[0], 'activate');
      const expected =
        values.expect === undefined ? undefined : `sha256:${digestArg(values.expect, '--expect')}`;
      const { body } = await client.request<Change>('POST', `/v1/bundles/${digest}/activate`, {
        json: { reason, expected_active: expected },
      });
      print(
        body,
        body.changed
          ? `active: sha256:${digest} (version ${body.state.version})`
          : `sha256:${digest} was already active`,
      );
      return 0;
    }
    case 'rollback': {
      if (rest.length > 0) throw new CliUsageError('rollback takes no argument');
      const { body: status } = await client.request<Status>('GET', '/v1/bundles/status');
      const active = status.desired.active;
      if (!active)
        throw new CliRefusal(409, 'nothing_active', 'there is no active revision to roll back from');
      const { body: events } = await client.request<{
        events: { to_digest: string | null; from_digest: string | null }[];
      }>('GET', '/v1/bundles/events?action=activate&limit=1000');
      const previous = events.events.find((event) => event.to_digest === active)?.from_digest;
      if (!previous)
        throw new CliRefusal(409, 'no_previous_revision', `no revision was active before ${active}`);
      const { body } = await client.request<Change>('POST', `/v1/bundles/${hex(previous)}/activate`, {
        json: { reason: reason ?? `rollback from ${active}`, expected_active: active },
      });
      print(body, `rolled back: ${short(active)} → ${previous} (version ${body.state.version})`);
      return 0;
    }
    case 'shadow': {
      if (values.off) {
        if (rest.length > 0) throw new CliUsageError('shadow --off takes no digest');
        const query = reason ? `?${new URLSearchParams({ reason })}` : '';
        const { body } = await client.request<Change>('DELETE', `/v1/bundles/shadow${query}`);
        print(body, body.changed ? 'shadow: off' : 'shadow was already off');
        return 0;
      }
      const digest = digestArg(rest[0], 'shadow');
      const { body } = await client.request<Change>('POST', `/v1/bundles/${digest}/shadow`, {
        json: { reason },
      });
      print(
        body,
        body.changed ? `shadow: sha256:${digest}` : `sha256:${digest} was already the shadow revision`,
      );
      return 0;
    }
    case 'status': {
      const { body } = await client.request<Status>('GET', '/v1/bundles/status');
      const lines = [
        `active: ${body.desired.active ?? 'none'}${body.desired.active_since ? ` since ${body.desired.active_since}` : ''}`,
        `shadow: ${body.desired.shadow ?? 'none'}`,
        `replicas: ${body.replicas.length}`,
        ...body.replicas.map(
          (r) =>
            `  ${r.id} (${r.host}, pid ${r.pid}): active ${short(r.active)}, shadow ${short(r.shadow)}, heartbeat ${r.heartbeat_at}${
              r.active !== body.desired.active ? '  [not on the active revision]' : ''
            }${r.failure ? `  [failing: ${r.failure.message}]` : ''}`,
        ),
      ];
      print(body, lines.join('\n'));
      return 0;
    }
    default:
      throw new CliUsageError(`unknown bundle command "${command}"`);
  }
}
