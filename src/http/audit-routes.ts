import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { CheckpointReport } from '../audit/checkpoints.ts';
import type { EventVerifyReport } from '../audit/event-log.ts';
import { EXPORT_CONTENT_TYPES, EXPORT_EXTENSIONS, exportDecisions } from '../audit/export.ts';
import type { KpiBucket, KpiReport } from '../audit/kpis.ts';
import { type DecisionLogReader, isUuid, parseFilter, parsePage } from '../audit/queries.ts';
import type { DecisionReplayer } from '../audit/replay.ts';
import type { VerifyReport } from '../audit/verify.ts';
import { ProblemError } from './problem.ts';
import {
  DecisionIdParamsV1,
  DecisionPageV1,
  DecisionRecordV1,
  DecisionSearchQueryV1,
  ExportQueryV1,
  ExportResponseV1,
  KpiQueryV1,
  KpiReportV1,
  ProblemResponses,
  ReplayReportV1,
  VerifyQueryV1,
  VerifyReportV1,
} from './wire/index.ts';

/**
 * Hash-chain verification over a time range; the report is returned as-is. With the platform event
 * log (policy events…), `events` is its own report; `checkpoints` is the signed-checkpoint report (a
 * rewritten chain shows there); `ok` covers all.
 */
export type ChainVerifier = (range: {
  from?: Date;
  to?: Date;
}) => Promise<VerifyReport & { events?: EventVerifyReport; checkpoints?: CheckpointReport }>;

/** What the auditor API needs (constructed by the composition root, src/create-verdict.ts). */
export interface AuditDeps {
  log: DecisionLogReader;
  replayer: DecisionReplayer;
  /** audit-core's verifyChains bound to the database; absent → 503 verify_unavailable. */
  verify?: ChainVerifier;
  /** Governance KPIs (src/audit/kpis.ts computeKpis on the database); absent → 503 kpis_unavailable. */
  kpis?: (range: { from: Date; to: Date; bucket: KpiBucket }) => Promise<KpiReport>;
}

/** The longest KPI window: a year (and a day for leap years). */
const KPI_MAX_WINDOW_MS = 366 * 86_400_000;
const KPI_DEFAULT_WINDOW_MS = 30 * 86_400_000;

function decisionId(raw: string): string {
  if (!isUuid(raw)) throw new ProblemError(400, 'invalid_decision_id', 'the decision id must be a UUID');
  return raw.toLowerCase();
}

function notFound(id: string): never {
  throw new ProblemError(404, 'decision_not_found', `no decision ${id}`);
}

/** A KPI window: `from` before `to`, at most KPI_MAX_WINDOW_MS; 30 days before `to` by default. */
function kpiWindow(filter: { from?: string; to?: string }): { from: Date; to: Date } {
  const to = filter.to ? new Date(filter.to) : new Date();
  const from = filter.from ? new Date(filter.from) : new Date(to.getTime() - KPI_DEFAULT_WINDOW_MS);
  const refuse = (message: string) =>
    new ProblemError(400, 'invalid_time_range', message, { errors: [{ path: '/from', message }] });
  if (from.getTime() >= to.getTime()) throw refuse('`from` must be before `to`');
  if (to.getTime() - from.getTime() > KPI_MAX_WINDOW_MS) throw refuse('the KPI window is at most 366 days');
  return { from, to };
}

/**
 * The auditor API: search, one record, export, replay, chain verification, KPIs. All need
 * audit:read. A refused filter is the query parser's AuditQueryError (a code and the parameter).
 */
export const auditRoutes: FastifyPluginAsyncTypebox<AuditDeps> = async (app, deps) => {
  const { log, replayer, verify, kpis } = deps;

  app.get(
    '/v1/decisions',
    {
      config: { scope: 'audit:read' },
      schema: {
        summary: 'Search recorded decisions (oldest first, keyset pagination)',
        tags: ['audit'],
        querystring: DecisionSearchQueryV1,
        response: { 200: DecisionPageV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const filter = parseFilter(request.query);
      const page = parsePage(request.query);
      const result = await log.search(filter, page);
      return { items: result.items, next_cursor: result.nextCursor, has_more: result.hasMore };
    },
  );

  app.get(
    '/v1/decisions/:id',
    {
      config: { scope: 'audit:read' },
      schema: {
        summary: 'One recorded decision',
        tags: ['audit'],
        params: DecisionIdParamsV1,
        response: { 200: DecisionRecordV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const id = decisionId(request.params.id);
      return (await log.get(id)) ?? notFound(id);
    },
  );

  app.post(
    '/v1/decisions/:id/replay',
    {
      config: { scope: 'audit:read' },
      schema: {
        summary: 'Re-evaluate a recorded decision on its own revision and on the active one (not recorded)',
        tags: ['audit'],
        params: DecisionIdParamsV1,
        response: { 200: ReplayReportV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const id = decisionId(request.params.id);
      const report = (await replayer.replay(id)) ?? notFound(id);
      return {
        decision_id: report.decisionId,
        surface: report.surface,
        entrypoint: report.entrypoint,
        recorded: report.recorded,
        masked: report.masked,
        stored: report.stored,
        active: report.active,
      };
    },
  );

  app.get(
    '/v1/audit/export',
    {
      config: { scope: 'audit:read' },
      schema: {
        summary: 'Stream every matching decision as NDJSON or CSV (oldest first)',
        description:
          'Without `to`, the export ends at the time of the request, so it terminates while decisions keep arriving.',
        tags: ['audit'],
        querystring: ExportQueryV1,
        response: { 200: ExportResponseV1, ...ProblemResponses },
      },
    },
    async (request, reply) => {
      const filter = parseFilter(request.query);
      filter.to ??= new Date().toISOString();
      const format = request.query.format ?? 'ndjson';
      return reply
        .type(EXPORT_CONTENT_TYPES[format])
        .header('content-disposition', `attachment; filename="decisions.${EXPORT_EXTENSIONS[format]}"`)
        .send(exportDecisions(log, filter, format));
    },
  );

  app.get(
    '/v1/audit/verify',
    {
      config: { scope: 'audit:read' },
      schema: {
        summary: 'Verify the hash chains of the decision log (a report: ok false is not an error)',
        tags: ['audit'],
        querystring: VerifyQueryV1,
        response: { 200: VerifyReportV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const filter = parseFilter(request.query);
      if (!verify) throw new ProblemError(503, 'verify_unavailable', 'chain verification is not available');
      return verify({
        from: filter.from ? new Date(filter.from) : undefined,
        to: filter.to ? new Date(filter.to) : undefined,
      });
    },
  );

  app.get(
    '/v1/kpis',
    {
      config: { scope: 'audit:read' },
      schema: {
        summary: 'Governance KPIs from the decision log, waivers and approvals (a window of whole UTC hours)',
        tags: ['audit'],
        querystring: KpiQueryV1,
        response: { 200: KpiReportV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const filter = parseFilter({ from: request.query.from, to: request.query.to });
      if (!kpis) throw new ProblemError(503, 'kpis_unavailable', 'KPIs need the decision log database');
      return kpis({ ...kpiWindow(filter), bucket: request.query.bucket ?? 'day' });
    },
  );
};
