-- Impact analysis runs (issue 22): a candidate revision evaluated on a window of recorded decisions.
-- A run belongs to the replica that runs it (`replica_id`); it moves `heartbeat_at` forward while it
-- works, so a run whose replica died is found (its heartbeat older than the lease) and marked failed
-- by whichever replica reads it next. Any replica answers for any run: the state lives here.
-- (0012: branches in flight take 0010 and 0011.)
CREATE TABLE IF NOT EXISTS impact_runs (
  id            uuid PRIMARY KEY,
  digest        text NOT NULL,
  state         text NOT NULL CHECK (state IN ('running', 'done', 'failed', 'cancelled')),
  actor         text NOT NULL,
  replica_id    text NOT NULL,
  window_from   timestamptz NOT NULL,
  window_to     timestamptz NOT NULL,
  filters       jsonb NOT NULL DEFAULT '{}',
  entrypoint    text NOT NULL,
  total         bigint,
  evaluated     bigint NOT NULL DEFAULT 0,
  skipped       bigint NOT NULL DEFAULT 0,
  unchanged     bigint NOT NULL DEFAULT 0,
  -- flips, by_control, errors, skipped reasons, masked counts: the report as the API shows it.
  report        jsonb NOT NULL DEFAULT '{}',
  error         jsonb,
  started_at    timestamptz NOT NULL DEFAULT now(),
  heartbeat_at  timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz
);

CREATE INDEX IF NOT EXISTS impact_runs_digest_idx ON impact_runs (digest, started_at DESC);
CREATE INDEX IF NOT EXISTS impact_runs_running_idx ON impact_runs (replica_id) WHERE state = 'running';
