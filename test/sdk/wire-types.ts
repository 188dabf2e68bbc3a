/**
 * Compile-time contract between the SDK's wire types (packages/sdk/src/wire.ts) and the server's
 * TypeBox schemas (src/http/wire/). `tsc --noEmit` (the type check of npm test) fails when a server change
 * breaks the client: what the client sends must be accepted by the server's request schema, and
 * what the server answers must be readable as the client's response type.
 */
import type { Static, TSchema } from 'typebox';
import { Type } from 'typebox';
import type * as Sdk from '../../packages/sdk/src/index.ts';
import type {
  BatchRequestV1,
  BundleRevisionV1,
  BundlesStateV1,
  DecisionPageV1,
  DecisionRecordV1,
  DecisionRequestV1,
  DecisionResponseV1,
  DecisionSearchQueryV1,
  ExceptionListQueryV1,
  ExceptionRequestV1,
  ExportQueryV1,
  PolicyEventV1,
  ProblemV1,
} from '../../src/http/wire/index.ts';

/** True when every A is a B. */
type Fits<A, B> = [A] extends [B] ? true : false;
function expect<T extends true>(): T | undefined {
  return undefined;
}
type Wire<S extends TSchema> = Static<S>;

// Requests: the client's shape fits the server's schema.
expect<Fits<Sdk.DecisionRequest, Wire<typeof DecisionRequestV1>>>();
expect<Fits<{ items: Sdk.BatchItem[]; defaults?: Sdk.BatchItem }, Wire<typeof BatchRequestV1>>>();
expect<Fits<Sdk.DecisionSearchQuery, Wire<typeof DecisionSearchQueryV1>>>();
expect<Fits<Sdk.AuditFilter & { format?: 'ndjson' | 'csv' }, Wire<typeof ExportQueryV1>>>();
expect<Fits<Sdk.ExceptionRequest, Wire<typeof ExceptionRequestV1>>>();
expect<Fits<Sdk.ExceptionListQuery, Wire<typeof ExceptionListQueryV1>>>();

// Answers: the server's answer fits the client's type.
expect<Fits<Wire<typeof DecisionResponseV1>, Sdk.DecisionResponse>>();
expect<Fits<Wire<typeof ProblemV1>, Sdk.Problem>>();
expect<Fits<Wire<typeof DecisionRecordV1>, Sdk.DecisionRecord>>();
expect<Fits<Wire<typeof DecisionPageV1>, Sdk.DecisionPage>>();
expect<Fits<Wire<typeof BundleRevisionV1>, Sdk.BundleRevision>>();
expect<Fits<Wire<typeof BundlesStateV1>, Sdk.BundlesState>>();
expect<Fits<Wire<typeof PolicyEventV1>, Sdk.PolicyEvent>>();

// The check bites: a server answer without `violations` would not fit the client.
const Broken = Type.Object({ decision_id: Type.String(), allow: Type.Boolean() });
// @ts-expect-error the client needs violations, obligations, exceptions, policy, evaluated_at
expect<Fits<Wire<typeof Broken>, Sdk.DecisionResponse>>();
