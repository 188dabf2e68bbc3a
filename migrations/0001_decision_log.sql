-- Decision log, policy revisions and writer chain heads.
-- Runs unchanged on Postgres 15+ and on embedded PGlite.

CREATE TABLE IF NOT EXISTS policy_revisions (
  digest      text PRIMARY KEY,          -- sha256:<hex> of the bundle bytes
  revision    text NOT NULL,             -- the manifest's revision
  manifest    jsonb NOT NULL,
  bundle      bytea NOT NULL,            -- the bundle tarball, so any decision can be replayed
  first_seen  timestamptz NOT NULL DEFAULT now()
);

-- One hash chain per writer (process). A restarted process starts a new writer whose first record
-- links to nothing (prev_hash = 64 zeros); chain_heads keeps each writer's last seq/hash.
CREATE TABLE IF NOT EXISTS chain_heads (
  writer_id   text PRIMARY KEY,
  seq         bigint NOT NULL,
  hash        text NOT NULL,
  started_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Partitioned by decided_at (monthly partitions are created ahead of time by the service).
-- The primary key must contain the partition key; (decided_at, id) is unique per decision and
-- makes spool replay idempotent (ON CONFLICT DO NOTHING).
CREATE TABLE IF NOT EXISTS decision_log (
  id                 uuid NOT NULL,
  decided_at         timestamptz NOT NULL,
  writer_id          text NOT NULL,
  seq                bigint NOT NULL,
  prev_hash          text NOT NULL,
  hash               text NOT NULL,
  surface            text NOT NULL,
  caller_sub         text NOT NULL,
  caller             jsonb NOT NULL,
  entrypoint         text NOT NULL,
  bundle_revision    text NOT NULL,
  bundle_digest      text NOT NULL,
  subject_type       text,
  subject_id         text,
  action_name        text,
  resource_type      text,
  resource_id        text,
  allow              boolean NOT NULL,
  violated_controls  text[] NOT NULL DEFAULT '{}',
  result             jsonb,
  input              jsonb,
  input_sha256       text NOT NULL,
  exceptions         text[] NOT NULL DEFAULT '{}',
  shadow             jsonb,
  eval_micros        integer NOT NULL,
  trace_id           text,
  error              jsonb,
  PRIMARY KEY (decided_at, id)
) PARTITION BY RANGE (decided_at);

-- Catch-all so that no insert ever fails for want of a partition; the service creates monthly
-- partitions ahead of time, and rows only land here if that job has not run.
CREATE TABLE IF NOT EXISTS decision_log_default PARTITION OF decision_log DEFAULT;

-- Set when retention dropped old partitions: chains may then begin after seq 1, at rows no older
-- than this (chain verification anchors on a writer's first surviving row instead of seq 1).
CREATE TABLE IF NOT EXISTS decision_log_retention (
  id              boolean PRIMARY KEY DEFAULT true CHECK (id),
  dropped_before  timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS decision_log_id_idx        ON decision_log (id);
CREATE INDEX IF NOT EXISTS decision_log_caller_idx    ON decision_log (caller_sub, decided_at, id);
CREATE INDEX IF NOT EXISTS decision_log_subject_idx   ON decision_log (subject_type, subject_id, decided_at, id);
CREATE INDEX IF NOT EXISTS decision_log_action_idx    ON decision_log (action_name, decided_at, id);
CREATE INDEX IF NOT EXISTS decision_log_resource_idx  ON decision_log (resource_type, resource_id, decided_at, id);
CREATE INDEX IF NOT EXISTS decision_log_allow_idx     ON decision_log (allow, decided_at, id);
CREATE INDEX IF NOT EXISTS decision_log_entry_idx     ON decision_log (entrypoint, decided_at, id);
CREATE INDEX IF NOT EXISTS decision_log_revision_idx  ON decision_log (bundle_revision, decided_at, id);
CREATE INDEX IF NOT EXISTS decision_log_controls_idx  ON decision_log USING gin (violated_controls);
CREATE INDEX IF NOT EXISTS decision_log_chain_idx     ON decision_log (writer_id, seq);
