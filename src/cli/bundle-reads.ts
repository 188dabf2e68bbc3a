/**
 * `verdict bundle list|events|shadow-report`: the lifecycle's reads, as data for the API group
 * runner (api-group.ts); `verdict bundle` (bundle.ts) hands these subcommands to it.
 */
import { type ApiSubcommand, queryOf } from './api-group.ts';

interface Revision {
  digest: string;
  revision: string;
  state: string;
  size: number;
  signed: boolean;
  uploaded_by: string;
  uploaded_at: string;
}

interface PolicyEvent {
  occurred_at: string;
  action: string;
  actor: string;
  from_digest: string | null;
  to_digest: string | null;
  reason: string | null;
}

interface Flip {
  direction: string;
  count: number;
  sample_ids: string[];
}

const short = (digest: string | null) =>
  digest ? `sha256:${digest.replace(/^sha256:/, '').slice(0, 12)}` : 'none';

export const BUNDLE_READS: Record<string, ApiSubcommand> = {
  list: {
    options: { limit: { type: 'string' }, before: { type: 'string' } },
    request: (_, values) => ({ method: 'GET', path: `/v1/bundles${queryOf(values, ['limit', 'before'])}` }),
    text: (body: { revisions: Revision[] }) =>
      body.revisions.length === 0
        ? 'no revisions'
        : body.revisions
            .map(
              (r) =>
                `${r.digest}  ${r.state.padEnd(8)}  revision ${r.revision}, ${r.size} bytes${r.signed ? ', signed' : ''}, uploaded ${r.uploaded_at} by ${r.uploaded_by}`,
            )
            .join('\n'),
  },
  events: {
    options: { action: { type: 'string' }, limit: { type: 'string' }, before: { type: 'string' } },
    request: (_, values) => ({
      method: 'GET',
      path: `/v1/bundles/events${queryOf(values, ['action', 'limit', 'before'])}`,
    }),
    text: (body: { events: PolicyEvent[] }) =>
      body.events.length === 0
        ? 'no policy events'
        : body.events
            .map(
              (e) =>
                `${e.occurred_at}  ${e.action.padEnd(12)}  ${short(e.from_digest)} → ${short(e.to_digest)}  by ${e.actor}${e.reason ? `: ${e.reason}` : ''}`,
            )
            .join('\n'),
  },
  'shadow-report': {
    options: { from: { type: 'string' }, to: { type: 'string' }, digest: { type: 'string' } },
    request: (_, values) => ({
      method: 'GET',
      path: `/v1/bundles/shadow/report${queryOf(values, ['from', 'to', 'digest'])}`,
    }),
    text: (r: {
      from: string;
      to: string;
      compared: number;
      shadow_digests: string[];
      flips: Flip[];
      by_control: (Flip & { control: string })[];
    }) =>
      [
        `shadow report ${r.from} → ${r.to}: ${r.compared} decisions compared (shadow ${r.shadow_digests.map(short).join(', ') || 'none'})`,
        ...(r.flips.length === 0 ? ['  no flips'] : r.flips.map((f) => `  ${f.direction}: ${f.count}`)),
        ...r.by_control.map((f) => `  ${f.control} ${f.direction}: ${f.count}`),
      ].join('\n'),
  },
};
