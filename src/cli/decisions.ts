/** `verdict decisions search|get|replay`: the recorded decisions (GET /v1/decisions…, audit:read). */
import type { DecisionRecord } from '../../packages/sdk/src/index.ts';
import { type ApiGroup, COMMON_OPTIONS_USAGE, queryOf, segment } from './api-group.ts';

/** The filters of GET /v1/decisions, as flags (`--subject-id` is `subject_id`). */
const FILTERS = [
  'from',
  'to',
  'caller-sub',
  'subject-type',
  'subject-id',
  'action',
  'resource-type',
  'resource-id',
  'allow',
  'entrypoint',
  'revision',
  'control',
  'exception',
  'limit',
  'cursor',
] as const;

interface ReplayOutcome {
  revision: string | null;
  available: boolean;
  allow: boolean | null;
  error: { code: string; message: string } | null;
  matches: boolean | null;
}

const entity = (type: string | null, id: string | null) => (type || id ? `${type ?? '?'}:${id ?? '?'}` : '-');
const line = (r: DecisionRecord) =>
  `${r.id}  ${r.decided_at}  ${r.allow ? 'allow' : 'deny '}  ${entity(r.subject_type, r.subject_id)} ${r.action_name ?? '-'} ${entity(r.resource_type, r.resource_id)}${r.violated_controls.length ? `  [${r.violated_controls.join(', ')}]` : ''}`;

function outcome(o: ReplayOutcome): string {
  if (!o.available) return `not available${o.error ? ` (${o.error.code}: ${o.error.message})` : ''}`;
  if (o.error) return `error ${o.error.code}: ${o.error.message}`;
  return `${o.allow ? 'allow' : 'deny'} — ${o.matches ? 'matches the record' : 'DIFFERS from the record'}`;
}

export const DECISIONS: ApiGroup = {
  name: 'decisions',
  usage: `usage: verdict decisions <command> [options]

commands (scope audit:read):
  search [filters]   recorded decisions, oldest first, one line each; filters as GET /v1/decisions:
                     --from ISO --to ISO --caller-sub S --subject-type T --subject-id ID --action A
                     --resource-type T --resource-id ID --allow true|false --entrypoint E
                     --revision R --control ID --exception WAIVER --limit N --cursor C
  get ID             one recorded decision
  replay ID          re-evaluate it on its own revision and on the active one (not recorded)

${COMMON_OPTIONS_USAGE}`,
  subcommands: {
    search: {
      options: Object.fromEntries(FILTERS.map((f) => [f, { type: 'string' as const }])),
      request: (_, values) => ({ method: 'GET', path: `/v1/decisions${queryOf(values, FILTERS)}` }),
      text: (page: { items: DecisionRecord[]; next_cursor: string | null; has_more: boolean }) =>
        [
          ...(page.items.length === 0 ? ['no decisions'] : page.items.map(line)),
          ...(page.has_more && page.next_cursor ? [`more: --cursor ${page.next_cursor}`] : []),
        ].join('\n'),
    },
    get: {
      args: ['ID'],
      request: ([id]) => ({ method: 'GET', path: `/v1/decisions/${segment(id!)}` }),
      text: (r: DecisionRecord) =>
        [
          line(r),
          `  caller: ${r.caller_sub}`,
          `  policy: revision ${r.bundle_revision} (${r.bundle_digest})`,
          `  violated: ${r.violated_controls.join(', ') || 'none'}`,
          `  waivers applied: ${r.exceptions.join(', ') || 'none'}`,
        ].join('\n'),
    },
    replay: {
      args: ['ID'],
      request: ([id]) => ({ method: 'POST', path: `/v1/decisions/${segment(id!)}/replay` }),
      text: (r: {
        decision_id: string;
        recorded: { allow: boolean; revision: string };
        masked: boolean;
        stored: ReplayOutcome;
        active: ReplayOutcome;
      }) =>
        [
          `decision ${r.decision_id}: recorded ${r.recorded.allow ? 'allow' : 'deny'} on revision ${r.recorded.revision}${r.masked ? ' (replayed on the masked input)' : ''}`,
          `  on its own revision: ${outcome(r.stored)}`,
          `  on the active revision${r.active.revision ? ` ${r.active.revision}` : ''}: ${outcome(r.active)}`,
        ].join('\n'),
    },
  },
};
