-- Grants held by the PDP (issue 13): waivers of a control (exceptions) and human approvals of one
-- agent action. Runs unchanged on Postgres 15+ and on embedded PGlite. Every state change is also
-- a chained platform event (kind 'exception' | 'approval'), written in the same transaction.

-- Waivers. `expired` is never stored: an active waiver whose expires_at has passed is listed as
-- expired, and the policy stops applying it at input.now whatever the state says.
CREATE TABLE IF NOT EXISTS exceptions (
  id                     text PRIMARY KEY,               -- exc_<uuidv7>
  control                text NOT NULL,
  severity               text NOT NULL,                  -- from the bundle's catalog at request time
  subject_id             text,
  resource_id            text,
  action                 text,
  reason                 text NOT NULL,
  compensating_controls  jsonb NOT NULL DEFAULT '[]',
  ticket                 jsonb,
  expires_at             timestamptz NOT NULL,
  state                  text NOT NULL CHECK (state IN ('pending', 'active', 'rejected', 'revoked')),
  requested_by           text NOT NULL,
  requested_at           timestamptz NOT NULL,
  approvers_required     integer NOT NULL CHECK (approvers_required >= 1),
  approvals              jsonb NOT NULL DEFAULT '[]',    -- [{by, at, reason}] in order
  closed_by              text,                           -- who rejected or revoked it
  closed_at              timestamptz,
  closed_reason          text,
  updated_at             timestamptz NOT NULL,
  CHECK (subject_id IS NOT NULL OR resource_id IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS exceptions_state_idx ON exceptions (state, expires_at);
CREATE INDEX IF NOT EXISTS exceptions_control_idx ON exceptions (control);
CREATE INDEX IF NOT EXISTS exceptions_subject_idx ON exceptions (subject_id) WHERE subject_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS exceptions_resource_idx ON exceptions (resource_id) WHERE resource_id IS NOT NULL;

-- Human approvals of one agent action, bound to (agent, on_behalf_of, tool, arguments_digest).
-- pending: requested, `expires_at` is when the request lapses; granted: `expires_at` is the end of
-- the approval window and `uses` counts the decisions it allowed (at most `max_uses`).
CREATE TABLE IF NOT EXISTS approvals (
  id                 text PRIMARY KEY,                   -- apr_<uuidv7>
  agent              text NOT NULL,
  on_behalf_of       text,
  tool               text NOT NULL,
  arguments_digest   text NOT NULL,
  controls           text[] NOT NULL DEFAULT '{}',       -- the controls that asked for it
  reasons            jsonb NOT NULL DEFAULT '[]',        -- the obligations' reasons (why)
  decision_id        text,                               -- the deny that requested it
  requested_by       text NOT NULL,                      -- the caller (the agent runtime's token)
  requested_at       timestamptz NOT NULL,
  state              text NOT NULL CHECK (state IN ('pending', 'granted', 'denied', 'expired')),
  expires_at         timestamptz NOT NULL,
  window_minutes     integer NOT NULL,
  max_uses           integer NOT NULL CHECK (max_uses >= 1),
  uses               integer NOT NULL DEFAULT 0,
  decided_by         text,
  decided_at         timestamptz,
  decided_reason     text,
  updated_at         timestamptz NOT NULL
);
-- One pending request per binding: repeated denials reuse it (the insert races on this index).
CREATE UNIQUE INDEX IF NOT EXISTS approvals_pending_binding_idx
  ON approvals (agent, COALESCE(on_behalf_of, ''), tool, arguments_digest) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS approvals_state_idx ON approvals (state, requested_at);

-- GET /v1/decisions?exception=ID: the decisions a waiver allowed.
CREATE INDEX IF NOT EXISTS decision_log_exceptions_idx ON decision_log USING gin (exceptions);
