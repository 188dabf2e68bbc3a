/**
 * The audit batch's parameter, text against bytes (src/audit/decision-log.ts storeBatchSql), timed
 * alone: real rows from the audit `Chain` (10 KB `model.response` records, their content redacted as
 * the record keeps it, or tool calls), the statement's parameter made either way and written by
 * `pg-protocol`'s `bind` as `pg` does. Interleaved rounds; per decision, medians. A batch whose
 * rows are all under 4 Ki characters (tool calls) goes to `pg` as text too: both arms then match.
 *
 *   node bench/batch-bytes.ts [--rows 1,4,16] [--kind model-response|tool-call] [--rounds 6]
 */
import { parseArgs } from 'node:util';
import { serialize } from 'pg-protocol';
import { Chain } from '../src/audit/chain.ts';
import { storeBatchSql } from '../src/audit/decision-log.ts';
import type { DecisionRecord } from '../src/decisions/types.ts';
import { decisionRecord } from '../test/audit/records.support.ts';
import { response, responseEnvelope } from './guardrails.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1,4,16' },
    kind: { type: 'string', default: 'model-response' },
    rounds: { type: 'string', default: '6' },
  },
});
if (values.kind !== 'model-response' && values.kind !== 'tool-call') {
  throw new Error('--kind is model-response or tool-call');
}

const input =
  values.kind === 'model-response'
    ? responseEnvelope(response(10 * 1024).replace('AKIAQWERTYUIOPASDFGH', '[REDACTED:secret]'))
    : {
        subject: { type: 'agent', id: 'code-agent' },
        action: { name: 'tool.call' },
        resource: {
          type: 'tool',
          id: 'read_file',
          properties: { arguments: { path: '/workspace/src/main.ts' } },
        },
        context: { session: { untrusted_content: false, tool_calls: 3 }, data_classification: 'internal' },
      };

/** A record of `input` as the service makes one (test/audit/records.support.ts), allowed. */
const record = (): DecisionRecord =>
  decisionRecord(0, {
    subjectType: input.subject.type,
    subjectId: input.subject.id,
    actionName: input.action.name,
    resourceType: input.resource.type,
    resourceId: input.resource.id,
    allow: true,
    result: { allow: true, violations: [], obligations: [], exceptions: [] },
    input,
  });

/** Microseconds per call of `f`, after a warm-up. */
function time(f: () => void, calls = 300): number {
  for (let i = 0; i < 20; i++) f();
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) f();
  return Number(process.hrtime.bigint() - start) / calls / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const size of values.rows.split(',').map(Number)) {
  const chain = new Chain('bench');
  const batch = () => chain.appendJson(Array.from({ length: size }, record));
  const arms: Record<string, () => void> = {
    rows: () => void batch(),
    text: () => {
      const { rows, json } = batch();
      serialize.bind({ statement: 's', values: [storeBatchSql(rows, json, false).values![0]] as never });
    },
    bytes: () => {
      const { rows, json } = batch();
      serialize.bind({ statement: 's', values: [storeBatchSql(rows, json, true).values![0]] as never });
    },
  };
  const results: Record<string, number[]> = {};
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const [arm, f] of Object.entries(arms)) {
      results[arm] ??= [];
      results[arm].push(time(f) / size);
    }
  }
  const [rows, text, bytes] = [results.rows!, results.text!, results.bytes!].map(median);
  const sample = batch();
  const sent = Buffer.isBuffer(storeBatchSql(sample.rows, sample.json, true).values![0]) ? 'bytes' : 'text';
  console.log(
    `${values.kind}, batches of ${size}: per decision, the chain's rows ${rows!.toFixed(1)} µs; with the parameter as text ${text!.toFixed(1)} µs, for pg ${bytes!.toFixed(1)} µs (sent as ${sent}; ÷ text ${(bytes! / text!).toFixed(2)}×)`,
  );
}
