-- Policy lifecycle (issue 12): uploaded revisions, the fleet's desired state, replica heartbeats and
-- the chained log of platform events. Runs unchanged on Postgres 15+ and on embedded PGlite.

-- Revisions were stored for replay only; they are now also what policy authors upload. One table:
-- first_seen is the upload time, and rows stored before this migration count as uploads by `system`.
ALTER TABLE policy_revisions ADD COLUMN IF NOT EXISTS size         bigint;
ALTER TABLE policy_revisions ADD COLUMN IF NOT EXISTS uploaded_by  text;
ALTER TABLE policy_revisions ADD COLUMN IF NOT EXISTS signed       boolean NOT NULL DEFAULT false;
ALTER TABLE policy_revisions ADD COLUMN IF NOT EXISTS entrypoints  text[] NOT NULL DEFAULT '{}';

UPDATE policy_revisions
   SET size = octet_length(bundle),
       uploaded_by = 'system',
       entrypoints = COALESCE(
         (SELECT array_agg(w->>'entrypoint' ORDER BY w->>'entrypoint')
            FROM jsonb_array_elements(CASE jsonb_typeof(manifest->'wasm') WHEN 'array' THEN manifest->'wasm' ELSE '[]'::jsonb END) AS w),
         '{}')
 WHERE size IS NULL;

ALTER TABLE policy_revisions ALTER COLUMN size SET NOT NULL;
ALTER TABLE policy_revisions ALTER COLUMN uploaded_by SET NOT NULL;

CREATE INDEX IF NOT EXISTS policy_revisions_first_seen_idx ON policy_revisions (first_seen DESC, digest);

-- The state every replica must converge on, one row per topic (`bundles`: the active and shadow
-- digests; later `exceptions`, `approvals`). `version` grows by one on every change: replicas compare
-- it with the version they applied, and a change is a compare-and-set on it.
CREATE TABLE IF NOT EXISTS fleet_state (
  topic       text PRIMARY KEY,
  version     bigint NOT NULL,
  state       jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  text NOT NULL
);

-- One row per live replica (process), upserted at every heartbeat; `state` is what it serves per
-- topic (applied version, digests, since when, the last failure to follow).
CREATE TABLE IF NOT EXISTS replicas (
  id            text PRIMARY KEY,
  host          text NOT NULL,
  pid           integer NOT NULL,
  started_at    timestamptz NOT NULL,
  heartbeat_at  timestamptz NOT NULL,
  state         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS replicas_heartbeat_idx ON replicas (heartbeat_at);

-- Platform events (policy events now; waiver and approval events later), hash-chained per writer
-- like decision_log: hash = SHA-256(prev_hash ‖ canonical JSON of every other column).
CREATE TABLE IF NOT EXISTS platform_events (
  id           uuid PRIMARY KEY,
  occurred_at  timestamptz NOT NULL,
  writer_id    text NOT NULL,
  seq          bigint NOT NULL,
  prev_hash    text NOT NULL,
  hash         text NOT NULL,
  kind         text NOT NULL,           -- policy | exception | approval
  action       text NOT NULL,           -- upload, activate, shadow_set, shadow_clear, refuse, ...
  actor        text NOT NULL,           -- the token's subject, or system / bundle-service
  subject      text,                    -- what the event is about (a digest, a waiver id)
  from_digest  text,
  to_digest    text,
  reason       text,
  payload      jsonb NOT NULL DEFAULT '{}',
  UNIQUE (writer_id, seq)
);
CREATE INDEX IF NOT EXISTS platform_events_kind_idx ON platform_events (kind, occurred_at, id);

CREATE TABLE IF NOT EXISTS platform_event_heads (
  writer_id   text PRIMARY KEY,
  seq         bigint NOT NULL,
  hash        text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
