/**
 * What the decision service does for the content actions (`model.prompt`, `model.response`,
 * `tool.result`): scan `resource.properties.content`, attach the findings and the content's digest
 * as server fields of the input, and say what the decision log may keep — the same input with
 * every finding redacted. Every other action passes through untouched, at the cost of one lookup.
 */

import { PII_REGIONS } from '../guardrails/detectors.ts';
import { redactContent } from '../guardrails/redact.ts';
import { CONTENT_ACTIONS, ContentScanner, contentDigest } from '../guardrails/scan.ts';
import { canonicalJson } from './canonical-json.ts';

type Json = Record<string, unknown>;

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

function regionsOf(data: unknown): readonly string[] {
  const verdictData = isObject(data) && isObject(data.verdict_data) ? data.verdict_data : {};
  const content = isObject(verdictData.content) ? verdictData.content : {};
  const pii = isObject(content.pii) ? content.pii : {};
  const regions = pii.regions;
  return Array.isArray(regions) ? regions.filter((r): r is string => typeof r === 'string') : PII_REGIONS;
}

/** A content envelope as the policy sees it, and as the log keeps it. */
export interface ScannedInput {
  /** The envelope with `findings` and `content_sha256` (the server's: a client's are replaced). */
  input: Json;
  /** `input` with every finding's span of the content replaced by `[REDACTED:<kind>]`. */
  logged: Json;
}

/** Scans a content envelope (see isContentInput). */
export function scanContentInput(envelope: Json, scanner: ContentScanner): ScannedInput {
  const resource = isObject(envelope.resource) ? envelope.resource : {};
  const properties = isObject(resource.properties) ? resource.properties : {};
  const content = properties.content;
  // Injections matter in text from outside (a tool's result, a prompt's parts), not in a model's
  // own response (CONTENT-003): the response path skips those detectors.
  const findings = scanner.scan(content, { injection: (envelope.action as Json).name !== 'model.response' });
  // NOTE: findings and the digest are trusted like caller and now: a client-sent value never survives.
  const input: Json = { ...envelope, findings, content_sha256: contentDigest(content, canonicalJson) };
  if (findings.length === 0) return { input, logged: input };
  const redacted = redactContent(content, findings);
  const logged: Json = {
    ...input,
    resource: { ...resource, properties: { ...properties, content: redacted } },
  };
  return { input, logged };
}
