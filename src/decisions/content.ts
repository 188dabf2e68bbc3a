/**
 * What the decision service does for the content actions (`model.prompt`, `model.response`,
 * `tool.result`): scan `resource.properties.content`, attach the findings and the content's digest
 * as server fields of the input, and say what the decision log may keep — the same input with
 * every finding redacted. Every other action passes through untouched, at the cost of one lookup.
 */
import { redactContent } from '../guardrails/redact.ts';
import { CONTENT_ACTIONS, type ContentScanner, contentDigest } from '../guardrails/scan.ts';
import { canonicalJson } from './canonical-json.ts';

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True when the envelope is one of the content actions. */
export function isContentInput(input: unknown): input is Json {
  return isObject(input) && isObject(input.action) && CONTENT_ACTIONS.has(input.action.name as string);
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
