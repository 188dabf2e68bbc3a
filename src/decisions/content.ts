/**
 * What the decision service does for the content actions (`model.prompt`, `model.response`,
 * `tool.result`): scan `resource.properties.content`, attach the findings and the content's digest
 * as server fields of the input, and say what the decision log may keep — the same input with
 * every finding redacted. Every other action passes through untouched, at the cost of one lookup.
 */

import { hash, randomBytes } from 'node:crypto';
import { PII_REGIONS } from '../guardrails/detectors.ts';
import { redactContent } from '../guardrails/redact.ts';
import { CONTENT_ACTIONS, ContentScanner } from '../guardrails/scan.ts';
import { canonicalJson } from './canonical-json.ts';

type Json = Record<string, unknown>;

/** Hex SHA-256 of a text's UTF-8 (one-shot: no Hash object). */
function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True when the envelope is one of the content actions. */
export function isContentInput(input: unknown): input is Json {
  return isObject(input) && isObject(input.action) && CONTENT_ACTIONS.has(input.action.name as string);
}

/**
 * The scanner for a policy revision: national identifiers are configured per region in the
 * bundle's data (`verdict_data.content.pii.regions`, e.g. `["us", "gb"]`; absent → every region
 * Verdict knows), so a bundle activation changes them with the policy that reads them. One scanner
 * per distinct region list, compiled once.
 */
export class ContentScanners {
  private readonly byData = new WeakMap<object, ContentScanner>();
  private readonly byRegions = new Map<string, ContentScanner>();

  for(data: unknown): ContentScanner {
    const key = isObject(data) ? data : null;
    const cached = key ? this.byData.get(key) : undefined;
    if (cached) return cached;
    const regions = regionsOf(data);
    const id = regions.join(',');
    let scanner = this.byRegions.get(id);
    if (!scanner) {
      scanner = new ContentScanner({ regions });
      this.byRegions.set(id, scanner);
    }
    if (key) this.byData.set(key, scanner);
    return scanner;
  }
}

/**
 * Whether the policy reads the content's text: `verdict_data.content.policy_reads_text` in the
 * bundle's data (absent or not `false` → true). A bundle whose policy reads the findings and never
 * the text (the default bundle: policies/content.rego) says `false`, and its policy input carries
 * the content with each text emptied — the wasm no longer parses every character of it (a 10 KB
 * response: the largest single cost of its decision, bench/README.md).
 */
export function policyReadsText(data: unknown): boolean {
  return contentData(data).policy_reads_text !== false;
}

/** The bundle's `verdict_data.content` settings, `{}` when it has none. */
function contentData(data: unknown): Record<string, unknown> {
  const verdictData = isObject(data) && isObject(data.verdict_data) ? data.verdict_data : {};
  return isObject(verdictData.content) ? verdictData.content : {};
}

function regionsOf(data: unknown): readonly string[] {
  const content = contentData(data);
  const pii = isObject(content.pii) ? content.pii : {};
  const regions = pii.regions;
  return Array.isArray(regions) ? regions.filter((r): r is string => typeof r === 'string') : PII_REGIONS;
}

/** A content envelope as the policy sees it, and as the log keeps it, with their JSON texts. */
export interface ScannedInput {
  /** The envelope with `findings` and `content_sha256` (the server's: a client's are replaced). */
  input: Json;
  /**
   * What the engine reads and the input digest hashes: the canonical JSON (RFC 8785) of `input`,
   * or, when the policy does not read the text (policyReadsText), of `input` with each text of
   * the content emptied.
   */
  inputJson: string;
  /** `input` with every finding's span of the content replaced by `[REDACTED:<kind>]`. */
  logged: Json;
  /** The canonical JSON of `logged` (the record's input when the mask leaves it unchanged). */
  loggedJson: string;
  /**
   * The `system/log/mask` event's JSON, `{"input": …}`: `input` with each text of the content
   * emptied (a string content becomes `""`, each part's `text` `""`; roles and other keys stay).
   * The log keeps the content redacted, not as the mask saw it, so the mask has no need of the
   * text, and the wasm would parse every character of it a second time (bench/README.md).
   */
  maskEventJson: string;
}

// A per-process random marker stands in for the content in a skeleton of the input: its canonical
// JSON is serialised once, and the content's (raw, redacted, emptied) JSON spliced in where the
// marker is. A canonical object's text is its sorted members' texts, so the splice is the same text
// canonicalJson gives the whole input (test/guardrails/decisions.test.ts checks it).
const MARK = `verdict-content-${randomBytes(16).toString('hex')}`;
const MARK_JSON = `"${MARK}"`;

/** The content with each text emptied, as the mask sees it. */
function emptied(content: unknown): unknown {
  if (typeof content === 'string') return '';
  if (!Array.isArray(content)) return content;
  return content.map((part) =>
    isObject(part) && typeof part.text === 'string' ? { ...part, text: '' } : part,
  );
}

/**
 * Scans a content envelope (see isContentInput). `policyReadsText: false` (see policyReadsText):
 * the policy input's content has each text emptied.
 */
export function scanContentInput(
  envelope: Json,
  scanner: ContentScanner,
  options: { policyReadsText?: boolean } = {},
): ScannedInput {
  const withheld = options.policyReadsText === false;
  const resource = isObject(envelope.resource) ? envelope.resource : undefined;
  const properties = resource && isObject(resource.properties) ? resource.properties : undefined;
  const content = properties?.content;
  // Injections matter in text from outside (a tool's result, a prompt's parts), not in a model's
  // own response (CONTENT-003): the response path skips those detectors.
  const findings = scanner.scan(content, { injection: (envelope.action as Json).name !== 'model.response' });
  // The content's own JSON: the digest's text when the content is not a string, and the policy's
  // input (then the record's too) unless the policy reads the text emptied and something was
  // redacted. Not made when neither needs it: a 10 KB string's JSON.stringify is ~20 µs.
  const rawNeeded = !withheld || findings.length === 0;
  const contentJson = typeof content === 'string' && !rawNeeded ? undefined : canonicalJson(content);
  // NOTE: findings and the digest are trusted like caller and now: a client-sent value never survives.
  const content_sha256 = sha256Hex(typeof content === 'string' ? content : (contentJson ?? 'null'));
  const input: Json = { ...envelope, findings, content_sha256 };
  const redacted = findings.length === 0 ? content : redactContent(content, findings);
  const logged: Json =
    findings.length === 0
      ? input
      : { ...input, resource: { ...resource, properties: { ...properties, content: redacted } } };
  const serialisable = typeof content === 'string' || contentJson !== undefined;
  const skeleton =
    resource && properties && serialisable
      ? canonicalJson({ ...input, resource: { ...resource, properties: { ...properties, content: MARK } } })
      : undefined;
  const at = skeleton?.indexOf(MARK_JSON) ?? -1;
  if (skeleton === undefined || at < 0 || skeleton.indexOf(MARK_JSON, at + 1) >= 0) {
    // No content to splice (or the marker is not where it must be): serialise each whole.
    // (A content that is neither a string nor an array has no text to withhold: emptied() keeps it.)
    const rawJson = canonicalJson(input)!;
    const loggedJson = logged === input ? rawJson : canonicalJson(logged)!;
    return { input, inputJson: rawJson, logged, loggedJson, maskEventJson: `{"input":${rawJson}}` };
  }
  const before = skeleton.slice(0, at);
  const after = skeleton.slice(at + MARK_JSON.length);
  const emptiedJson = before + canonicalJson(emptied(content)) + after;
  const rawJson = rawNeeded ? before + contentJson + after : undefined;
  const inputJson = withheld ? emptiedJson : rawJson!;
  const loggedJson = logged === input ? rawJson! : before + canonicalJson(redacted) + after;
  return { input, inputJson, logged, loggedJson, maskEventJson: `{"input":${emptiedJson}}` };
}
