import os from 'node:os';
import type { DecisionRow } from './decision-log.ts';

/**
 * Decision records in the shapes SIEMs ingest: OCSF API Activity (class 6003) and Splunk HTTP Event
 * Collector events. Facts only: every field is taken from the stored record; what the record does
 * not know (the client's IP, a model's provider) is left out rather than guessed.
 */

/**
 * The OCSF schema version the events follow, profiles included (see docs/api-audit.md, "SIEM
 * formats"); test/audit/siem.test.ts validates them against its definitions.
 */
export const OCSF_VERSION = '1.9.0';

/** Where the events say they come from. */
export interface SiemSource {
  /** Verdict's version (package.json). */
  productVersion: string;
  /** Splunk `host`; default: this machine's host name. */
  host?: string;
  /** Splunk `index`; omitted when not set (the HEC token's default index applies). */
  index?: string;
}

const object = (value: unknown): Record<string, unknown> | undefined =>
  value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;

/** An `ai_model` object only when the input names both the model and its provider (both required by OCSF). */
function aiModel(input: Record<string, unknown> | undefined, side: 'subject' | 'resource') {
  const model = object(object(object(input?.[side])?.properties)?.model);
  if (typeof model?.name !== 'string' || typeof model?.provider !== 'string') return undefined;
  return {
    name: model.name,
    ai_provider: model.provider,
    ...(typeof model.version === 'string' ? { version: model.version } : {}),
  };
}

/**
 * One decision as an OCSF API Activity event. The decision is `actor.authorizations[0]`:
 * `{decision: "allow" | "deny", policy: {name: entrypoint, uid: bundle digest, version: revision}}`;
 * `action_id` (1 Allowed, 2 Denied) and `disposition_id` (1 Allowed, 2 Blocked) say the same in
 * OCSF's enumerations (security_control profile). An agent subject is `ai_agent` (ai_operation
 * profile); `ai_model` only when the input names model and provider. The record's chain hash is its
 * integrity proof (record_integrity profile): one attestation whose fingerprint is the hash, in the
 * chain of its writer.
 */
export function toOcsf(record: DecisionRow, source: SiemSource): Record<string, unknown> {
  const input = object(record.input);
  const decision = record.allow ? 'allow' : 'deny';
  const agent =
    record.subject_type === 'agent' && record.subject_id
      ? { uid: record.subject_id, name: record.subject_id }
      : undefined;
  const model = aiModel(input, 'resource') ?? aiModel(input, 'subject');
  const operation = record.action_name ?? record.entrypoint;
  const target = record.resource_type ? `${record.resource_type}/${record.resource_id ?? ''}` : 'no resource';
  const event: Record<string, unknown> = {
    activity_id: 99,
    activity_name: 'Other',
    category_uid: 6,
    category_name: 'Application Activity',
    class_uid: 6003,
    class_name: 'API Activity',
    type_uid: 600399,
    type_name: 'API Activity: Other',
    severity_id: 1,
    severity: 'Informational',
    status_id: 1,
    status: 'Success',
    // security_control profile: the outcome of the control, in both of its enumerations.
    action_id: record.allow ? 1 : 2,
    action: record.allow ? 'Allowed' : 'Denied',
    disposition_id: record.allow ? 1 : 2,
    disposition: record.allow ? 'Allowed' : 'Blocked',
    time: Date.parse(record.decided_at),
    message: `${decision} ${operation} on ${target}${record.violated_controls.length ? ` (${record.violated_controls.join(', ')})` : ''}`,
    metadata: {
      version: OCSF_VERSION,
      uid: record.id,
      product: { name: 'Verdict', vendor_name: 'Verdict', version: source.productVersion },
      log_name: 'decision_log',
      log_provider: 'verdict',
      sequence: record.seq,
      ...(record.trace_id ? { correlation_uid: record.trace_id } : {}),
      profiles: ['security_control', 'record_integrity', ...(agent || model ? ['ai_operation'] : [])],
    },
    actor: {
      user: { uid: record.caller_sub, name: record.caller_sub },
      authorizations: [
        {
          decision,
          policy: { name: record.entrypoint, uid: record.bundle_digest, version: record.bundle_revision },
        },
      ],
    },
    api: {
      operation,
      service: { name: 'verdict' },
      request: { uid: record.id },
    },
    src_endpoint: { name: record.caller_sub },
    ...(record.resource_type
      ? { resources: [{ type: record.resource_type, uid: record.resource_id ?? undefined }] }
      : {}),
    ...(agent
      ? { ai_agent: model ? { ...agent, ai_model: model } : agent }
      : model
        ? { ai_model: model }
        : {}),
    // NOTE: the hash is SHA-256 over the previous hash and the record's RFC 8785 canonical JSON (see
    // src/audit/chain.ts), not over this event's serialization: verify it with the decision log's
    // verification (GET /v1/audit/verify, `verdict audit verify`), not by hashing the event.
    attestation_list: [
      {
        uid: `${record.writer_id}:${record.seq}`,
        chain_uid: record.writer_id,
        fingerprint: {
          algorithm_id: 3,
          algorithm: 'SHA-256',
          encoding_id: 1,
          encoding: 'Hex',
          value: record.hash,
        },
      },
    ],
    unmapped: {
      verdict: {
        surface: record.surface,
        subject: { type: record.subject_type, id: record.subject_id },
        violated_controls: record.violated_controls,
        exceptions: record.exceptions,
        input_sha256: record.input_sha256,
        writer_id: record.writer_id,
        seq: record.seq,
        hash: record.hash,
        error: record.error,
      },
    },
  };
  return event;
}

/**
 * One decision as a Splunk HEC event: `{time, host, source, sourcetype, index?, event, fields}`.
 * `event` is the whole record (as the NDJSON export has it); `fields` are indexed fields, flat
 * strings, for fast filtering.
 */
export function toSplunkHec(record: DecisionRow, source: SiemSource): Record<string, unknown> {
  return {
    time: Date.parse(record.decided_at) / 1000,
    host: source.host ?? os.hostname(),
    source: 'verdict',
    sourcetype: 'verdict:decision',
    ...(source.index ? { index: source.index } : {}),
    event: record,
    fields: {
      decision_id: record.id,
      allow: String(record.allow),
      entrypoint: record.entrypoint,
      caller_sub: record.caller_sub,
      ...(record.action_name ? { action: record.action_name } : {}),
      ...(record.resource_type ? { resource_type: record.resource_type } : {}),
      ...(record.resource_id ? { resource_id: record.resource_id } : {}),
      bundle_revision: record.bundle_revision,
    },
  };
}
