/**
 * `verdict waivers …` (/v1/exceptions) and `verdict approvals …` (/v1/approvals): the grants, with
 * the API's scopes — exceptions:request to request and list, exceptions:approve to approve, reject and
 * revoke; approvals:grant with a human token to list, approve and deny.
 */
import {
  type ApiGroup,
  COMMON_OPTIONS_USAGE,
  type OptionValues,
  queryOf,
  required,
  segment,
} from './api-group.ts';

/** A waiver as the API answers it (the fields the summaries print). */
interface Waiver {
  id: string;
  state: string;
  control?: string;
  subject_id?: string | null;
  resource_id?: string | null;
  expires_at?: string;
  history?: unknown[];
}

/** An approval request as the API answers it. */
interface Approval {
  id: string;
  state: string;
  agent?: string;
  on_behalf_of?: string | null;
  tool?: string;
  controls?: string[];
  expires_at?: string;
  history?: unknown[];
}

const waiverLine = (w: Waiver) =>
  `${w.id}  ${w.state.padEnd(8)}  ${w.control ?? '-'}  subject ${w.subject_id ?? 'any'}, resource ${w.resource_id ?? 'any'}${w.expires_at ? `, expires ${w.expires_at}` : ''}`;
const approvalLine = (a: Approval) =>
  `${a.id}  ${a.state.padEnd(8)}  ${a.agent ?? '-'}${a.on_behalf_of ? ` for ${a.on_behalf_of}` : ''} → ${a.tool ?? '-'}${a.controls?.length ? ` [${a.controls.join(', ')}]` : ''}${a.expires_at ? `, expires ${a.expires_at}` : ''}`;

const reason = { reason: { type: 'string' as const } };
/** `{reason}` when given: approve may give one. */
const optionalReason = (values: OptionValues) =>
  typeof values.reason === 'string' ? { reason: values.reason } : {};

/** approve/reject/revoke of a waiver, approve/deny of an approval: POST …/ID/verb. */
function settle(base: string, verb: string, reasonRequired: boolean, print: (body: never) => string) {
  return {
    args: ['ID'] as const,
    options: reason,
    request: ([id]: string[], values: OptionValues) => ({
      method: 'POST',
      path: `${base}/${segment(id!)}/${verb}`,
      body: reasonRequired ? { reason: required(values, 'reason', verb) } : optionalReason(values),
    }),
    text: print,
  };
}

const WAIVER_FILTERS = ['state', 'control', 'subject-id', 'resource-id', 'expiring-within', 'limit'] as const;

export const WAIVERS: ApiGroup = {
  name: 'waivers',
  usage: `usage: verdict waivers <command> [options]

commands:
  list [filters]        waivers (exceptions:request); --state pending|active|expired|revoked|rejected
                        --control ID --subject-id ID --resource-id ID --expiring-within P7D --limit N
  show ID               one waiver with its history (exceptions:request)
  request --control ID --reason TEXT --expires-at ISO [--subject-id ID] [--resource-id ID]
          [--action NAME] [--compensating-control TEXT …] [--ticket-system S --ticket-key K [--ticket-url U]]
                        request a waiver (exceptions:request); pending until approved
  approve ID [--reason TEXT]   approve a pending waiver (exceptions:approve; not its requester)
  reject ID --reason TEXT      reject a pending waiver (exceptions:approve)
  revoke ID --reason TEXT      revoke an active waiver (exceptions:approve)

${COMMON_OPTIONS_USAGE}`,
  subcommands: {
    list: {
      options: Object.fromEntries(WAIVER_FILTERS.map((f) => [f, { type: 'string' as const }])),
      request: (_, values) => ({ method: 'GET', path: `/v1/exceptions${queryOf(values, WAIVER_FILTERS)}` }),
      text: (body: { exceptions: Waiver[] }) =>
        body.exceptions.length === 0 ? 'no waivers' : body.exceptions.map(waiverLine).join('\n'),
    },
    show: {
      args: ['ID'],
      request: ([id]) => ({ method: 'GET', path: `/v1/exceptions/${segment(id!)}` }),
      text: (w: Waiver) => `${waiverLine(w)}\n  history: ${w.history?.length ?? 0} events`,
    },
    request: {
      options: {
        control: { type: 'string' },
        reason: { type: 'string' },
        'expires-at': { type: 'string' },
        'subject-id': { type: 'string' },
        'resource-id': { type: 'string' },
        action: { type: 'string' },
        'compensating-control': { type: 'string', multiple: true },
        'ticket-system': { type: 'string' },
        'ticket-key': { type: 'string' },
        'ticket-url': { type: 'string' },
      },
      request: (_, values) => {
        const text = (name: string) =>
          typeof values[name] === 'string' ? (values[name] as string) : undefined;
        const ticketSystem = text('ticket-system');
        const ticketKey = text('ticket-key');
        if ((ticketSystem === undefined) !== (ticketKey === undefined))
          required(
            values,
            ticketSystem === undefined ? 'ticket-system' : 'ticket-key',
            'request with a ticket',
          );
        return {
          method: 'POST',
          path: '/v1/exceptions',
          body: {
            control: required(values, 'control', 'request'),
            reason: required(values, 'reason', 'request'),
            expires_at: required(values, 'expires-at', 'request'),
            subject_id: text('subject-id'),
            resource_id: text('resource-id'),
            action: text('action'),
            compensating_controls: values['compensating-control'] as string[] | undefined,
            ticket:
              ticketSystem === undefined
                ? undefined
                : { system: ticketSystem, key: ticketKey!, url: text('ticket-url') },
          },
        };
      },
      text: (w: Waiver) => `requested ${w.id}: ${w.state}\n${waiverLine(w)}`,
    },
    approve: settle('/v1/exceptions', 'approve', false, (w: Waiver) => `waiver ${w.id}: ${w.state}`),
    reject: settle('/v1/exceptions', 'reject', true, (w: Waiver) => `waiver ${w.id}: ${w.state}`),
    revoke: settle('/v1/exceptions', 'revoke', true, (w: Waiver) => `waiver ${w.id}: ${w.state}`),
  },
};

export const APPROVALS: ApiGroup = {
  name: 'approvals',
  usage: `usage: verdict approvals <command> [options]

commands:
  list [--state pending|granted|denied|expired] [--limit N]
                             approval requests of agent actions (approvals:grant)
  show ID                    one request and its history (decisions:evaluate: what a deny's status_url names)
  approve ID [--reason TEXT] grant it (approvals:grant, a human token: verdict token --human …)
  deny ID [--reason TEXT]    deny it (approvals:grant, a human token)

${COMMON_OPTIONS_USAGE}`,
  subcommands: {
    list: {
      options: { state: { type: 'string' }, limit: { type: 'string' } },
      request: (_, values) => ({
        method: 'GET',
        path: `/v1/approvals${queryOf(values, ['state', 'limit'])}`,
      }),
      text: (body: { approvals: Approval[] }) =>
        body.approvals.length === 0 ? 'no approval requests' : body.approvals.map(approvalLine).join('\n'),
    },
    show: {
      args: ['ID'],
      request: ([id]) => ({ method: 'GET', path: `/v1/approvals/${segment(id!)}` }),
      text: (a: Approval) => `${approvalLine(a)}\n  history: ${a.history?.length ?? 0} events`,
    },
    approve: settle('/v1/approvals', 'approve', false, (a: Approval) => `approval ${a.id}: ${a.state}`),
    deny: settle('/v1/approvals', 'deny', false, (a: Approval) => `approval ${a.id}: ${a.state}`),
  },
};
