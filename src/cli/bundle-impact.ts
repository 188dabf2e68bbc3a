import { type AdminApiClient, type CliIo, CliRefusal, CliUsageError } from './client.ts';

/** A run as `GET /v1/bundles/impact/{id}` answers it (docs/api.md). */
interface ImpactRun {
  id: string;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  digest: string;
  from: string;
  to: string;
  entrypoint: string;
  total: number | null;
  evaluated: number;
  skipped: number;
  skipped_reasons: Record<string, number>;
  unchanged: number;
  masked: number;
  flips: { direction: string; count: number; masked: number; sample_ids: string[] }[];
  by_control: { direction: string; control: string; count: number; sample_ids: string[] }[];
  errors: { code: string; message: string; count: number; sample_ids: string[] }[];
  error: { code: string; message: string } | null;
  started_at: string;
  duration_ms: number | null;
}

/** What `verdict bundle impact` and `push --impact` take: the window and `--filter k=v`s. */
export interface ImpactOptions {
  from?: string;
  to?: string;
  filter?: string[];
  json?: boolean;
  /** How often to ask for progress (ms); default 1,000. */
  pollMs?: number;
}

/** `--filter k=v` (repeatable) → the request's `filters` (the names of `GET /v1/decisions`). */
function filtersOf(pairs: readonly string[]): Record<string, string> {
  const filters: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new CliUsageError(`--filter "${pair}": expected NAME=VALUE (e.g. action=tool.call)`);
    filters[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return filters;
}

function progressLine(run: ImpactRun): string {
  const read = run.evaluated + run.skipped;
  const seconds = Math.max(0.001, (Date.now() - Date.parse(run.started_at)) / 1000);
  const rate = read / seconds;
  const left = run.total !== null && rate > 0 ? Math.max(0, (run.total - read) / rate) : null;
  const total = run.total === null ? '' : ` of ${run.total.toLocaleString('en')}`;
  return `impact: ${read.toLocaleString('en')}${total} records (${Math.round(rate).toLocaleString('en')}/s${
    left === null ? '' : `, ~${Math.ceil(left)} s left`
  })`;
}

function summary(run: ImpactRun): string {
  const lines = [
    `impact of ${run.digest} on ${run.entrypoint}, ${run.from} → ${run.to}: ${run.state}${
      run.duration_ms === null ? '' : ` in ${(run.duration_ms / 1000).toFixed(1)} s`
    }`,
    `  records: ${run.total ?? '?'}; evaluated ${run.evaluated}, unchanged ${run.unchanged}, skipped ${run.skipped}${
      Object.keys(run.skipped_reasons).length ? ` (${JSON.stringify(run.skipped_reasons)})` : ''
    }`,
    ...run.flips.map(
      (f) =>
        `  ${f.direction}: ${f.count}${f.masked ? ` (${f.masked} on masked inputs: not certain)` : ''}${
          f.sample_ids.length ? `  e.g. ${f.sample_ids.join(', ')}` : ''
        }`,
    ),
    ...run.by_control.map((c) => `    ${c.direction} ${c.control}: ${c.count}`),
    ...run.errors.map((e) => `  candidate errors ${e.code}: ${e.count} (${e.message}), counted as denies`),
  ];
  if (run.masked) lines.push(`  masked inputs evaluated: ${run.masked} (the candidate saw the masked input)`);
  if (run.error) lines.push(`  ${run.error.code}: ${run.error.message}`);
  return lines.join('\n');
}

/**
 * Starts an impact run of `digest`, shows a progress line on stderr until it ends, prints the
 * report. Exit 0 when it is done; 2 when it failed, was cancelled or could not start.
 */
export async function runImpact(
  client: AdminApiClient,
  io: CliIo,
  digest: string,
  options: ImpactOptions,
): Promise<number> {
  const body = { from: options.from, to: options.to, filters: filtersOf(options.filter ?? []) };
  let run: ImpactRun;
  try {
    const { body: started } = await client.request<{ id: string; status_url: string }>(
      'POST',
      `/v1/bundles/${digest}/impact`,
      { json: body },
    );
    for (;;) {
      ({ body: run } = await client.request<ImpactRun>('GET', started.status_url));
      if (run.state !== 'running') break;
      io.stderr(`\r${progressLine(run)}   `);
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 1_000));
    }
  } catch (err) {
    if (!(err instanceof CliRefusal)) throw err;
    io.stderr(`verdict: impact could not start or be followed: ${err.code}: ${err.message}\n`);
    return 2;
  }
  io.stderr(`\r${progressLine(run)}\n`);
  io.stdout(options.json ? `${JSON.stringify(run, null, 2)}\n` : `${summary(run)}\n`);
  return run.state === 'done' ? 0 : 2;
}
