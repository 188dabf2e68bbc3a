/**
 * The release envelope from the files a pipeline already has: a model card (YAML or JSON), evaluation
 * results, approvals, licenses, lineage and open incidents. The fields are the ones the release
 * controls read (policies/release.rego, policies/CONTROLS.md): they are the public contract.
 */
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { isObject } from '../json/values.ts';

/** A mistake in the gate's input: the gate cannot decide (exit 2). */
export class GateInputError extends Error {}

/** Where the release's facts come from. */
export interface ReleaseSources {
  modelCard?: string;
  evals?: string;
  approvals?: string;
  licenses?: string;
  lineage?: string;
  incidents?: string;
}

/** What the pipeline says about the release besides its files. */
export interface ReleaseFacts {
  release?: string;
  riskTier?: string;
  author?: string;
  pipeline?: string;
  environment?: string;
}

/** The envelope of `release.deploy`, ready for POST /v1/decisions. */
export interface ReleaseEnvelope {
  subject: { type: string; id: string; [key: string]: unknown };
  action: { name: string; [key: string]: unknown };
  resource: { type: string; id: string; properties?: Record<string, unknown>; [key: string]: unknown };
  context?: Record<string, unknown>;
}

/** The file each release control reads its facts from (for annotations and SARIF locations). */
export const CONTROL_SOURCES: Record<string, keyof ReleaseSources> = {
  'REL-001': 'modelCard',
  'REL-002': 'evals',
  'REL-003': 'approvals',
  'REL-004': 'licenses',
  'REL-005': 'lineage',
  'REL-006': 'incidents',
};

type ReadFile = (file: string) => Promise<string>;

async function load(read: ReadFile, file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await read(file);
  } catch (err) {
    throw new GateInputError(
      `cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
  const yaml = /\.ya?ml$/i.test(path.extname(file));
  try {
    return yaml ? parseYaml(text, { maxAliasCount: 100 }) : JSON.parse(text);
  } catch (err) {
    throw new GateInputError(
      `the ${what} ${file} is not valid ${yaml ? 'YAML' : 'JSON'}: ${(err as Error).message}`,
    );
  }
}

/**
 * Evaluation results as `{metric: number}`. Accepted: that map; `{metrics: {...}}` or
 * `{results: {...}}`; or a list of `{name|metric, value|score}` (lm-eval-harness-style exports).
 */
export function evalsOf(raw: unknown, file: string): Record<string, unknown> {
  const inner = isObject(raw) ? (raw.metrics ?? raw.results ?? raw) : raw;
  if (isObject(inner)) return inner;
  if (Array.isArray(inner)) {
    const out: Record<string, unknown> = {};
    for (const item of inner) {
      const name = isObject(item) ? (item.name ?? item.metric) : undefined;
      if (typeof name !== 'string') throw new GateInputError(`${file}: every evaluation result needs a name`);
      out[name] = isObject(item) ? (item.value ?? item.score) : undefined;
    }
    return out;
  }
  throw new GateInputError(`${file}: evaluation results must be an object or a list`);
}

/** A list from a JSON array or an object holding one under `key`. */
function listOf(raw: unknown, key: string, file: string): unknown[] {
  const inner = isObject(raw) ? raw[key] : raw;
  if (!Array.isArray(inner)) throw new GateInputError(`${file}: expected a list (or {"${key}": [...]})`);
  return inner;
}

/** Builds the release envelope from the pipeline's files. */
export async function buildReleaseEnvelope(
  sources: ReleaseSources,
  facts: ReleaseFacts,
  read: ReadFile,
): Promise<ReleaseEnvelope> {
  const properties: Record<string, unknown> = {};
  let card: Record<string, unknown> = {};
  if (sources.modelCard) {
    const raw = await load(read, sources.modelCard, 'model card');
    if (!isObject(raw)) throw new GateInputError(`${sources.modelCard}: the model card must be a mapping`);
    card = raw;
    properties.model_card = raw;
  }
  if (sources.evals)
    properties.evals = evalsOf(await load(read, sources.evals, 'evaluation results'), sources.evals);
  if (sources.approvals) {
    properties.approvals = listOf(
      await load(read, sources.approvals, 'approvals'),
      'approvals',
      sources.approvals,
    );
  }
  if (sources.licenses) {
    properties.licenses = listOf(
      await load(read, sources.licenses, 'licenses'),
      'licenses',
      sources.licenses,
    );
  }
  if (sources.lineage) {
    const raw = await load(read, sources.lineage, 'lineage');
    if (!isObject(raw)) throw new GateInputError(`${sources.lineage}: lineage must be an object`);
    properties.lineage = raw;
  }
  if (sources.incidents) {
    properties.open_incidents = listOf(
      await load(read, sources.incidents, 'open incidents'),
      'open_incidents',
      sources.incidents,
    );
  }
  const tier = facts.riskTier ?? card.risk_tier;
  if (tier !== undefined) {
    const n = typeof tier === 'number' ? tier : Number(tier);
    // An unparseable tier is passed as it is: REL-002 denies an unknown tier, the gate does not guess.
    properties.risk_tier = Number.isFinite(n) && String(tier).trim() !== '' ? n : tier;
  }
  const author = facts.author ?? card.author;
  if (author !== undefined) properties.author = author;

  const named =
    typeof card.name === 'string' ? `${card.name}${card.version ? `@${card.version}` : ''}` : undefined;
  const release = facts.release ?? named ?? (typeof card.id === 'string' ? card.id : undefined);
  if (!release)
    throw new GateInputError('the release has no id: pass --release or give the model card a name');
  return {
    subject: { type: 'pipeline', id: facts.pipeline ?? 'ci' },
    action: { name: 'release.deploy' },
    resource: { type: 'model_release', id: release, properties },
    context: facts.environment ? { environment: facts.environment } : {},
  };
}

/** A ready envelope (`--input FILE`), checked for its shape; `--environment` overrides its context's. */
export async function readEnvelope(file: string, environment: string | undefined, read: ReadFile) {
  const raw = await load(read, file, 'envelope');
  const entity = (v: unknown) => isObject(v) && typeof v.type === 'string' && typeof v.id === 'string';
  if (
    !isObject(raw) ||
    !entity(raw.subject) ||
    !entity(raw.resource) ||
    !isObject(raw.action) ||
    typeof raw.action.name !== 'string' ||
    (raw.context !== undefined && !isObject(raw.context))
  ) {
    throw new GateInputError(
      `${file}: an envelope needs subject {type, id}, action {name}, resource {type, id}`,
    );
  }
  const envelope = raw as unknown as ReleaseEnvelope;
  if (environment) envelope.context = { ...envelope.context, environment };
  return envelope;
}
