import type { FastifyReply } from 'fastify';
import type { Static } from 'typebox';
import type { FieldErrorV1 } from './wire/problem.ts';

/**
 * An RFC 9457 problem. `code` is stable and documented (docs/api.md); `detail` is safe to show
 * (never a stack trace or an internal message).
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
  instance?: string;
  errors?: Static<typeof FieldErrorV1>[];
  [extension: string]: unknown;
}

/**
 * An error the HTTP layer itself refuses a request with (auth, body limits, a route's own checks),
 * status and code included; mapped with domain errors in one place (src/http/errors.ts toProblem).
 */
export class ProblemError extends Error {
  readonly status: number;
  readonly code: string;
  readonly extra: Partial<Problem>;
  readonly headers: Record<string, string>;
  constructor(
    status: number,
    code: string,
    detail: string,
    extra: Partial<Problem> = {},
    headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = 'ProblemError';
    this.status = status;
    this.code = code;
    this.extra = extra;
    this.headers = headers;
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function problem(
  status: number,
  code: string,
  detail?: string,
  extra: Partial<Problem> = {},
): Problem {
  return {
    type: `https://verdict.dev/problems/${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    code,
    ...(detail === undefined ? {} : { detail }),
    ...extra,
  };
}

export function sendProblem(reply: FastifyReply, body: Problem): FastifyReply {
  return reply.code(body.status).type('application/problem+json; charset=utf-8').send(body);
}
