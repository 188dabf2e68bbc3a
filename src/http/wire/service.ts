import { Type } from 'typebox';

/** `GET /`: where to start (no token needed). */
export const ServiceIndexV1 = Type.Object({
  service: Type.Literal('verdict'),
  docs: Type.String({ description: 'The interactive API description' }),
  openapi: Type.String({ description: 'The OpenAPI 3.1 document' }),
  health: Type.String({ description: 'Readiness, as OPA answers it' }),
  console: Type.Optional(Type.String({ description: 'The console for people, where it is served' })),
});

/** `GET /health/live`: the process runs. */
export const LivenessV1 = Type.Object({ status: Type.Literal('ok') });

/** `GET /health/ready`: 200 ready or 503 not_ready, with the check behind each part. */
export const ReadinessV1 = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  checks: Type.Record(Type.String(), Type.Boolean()),
});

/** `GET /metrics`: the Prometheus text exposition. */
export const MetricsResponseV1 = {
  description: 'Prometheus text exposition format',
  content: { 'text/plain': { schema: Type.String() } },
};

/** `GET /openapi.json`: this document. */
export const OpenApiDocumentV1 = Type.Object({}, { additionalProperties: true });
