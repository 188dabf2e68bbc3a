-- The SIEM forwarder (issue 16): where it stopped, per sink and per writer chain. It sends each
-- writer's records in seq order and moves the cursor only after the receiver answered 2xx, so a
-- restart or an outage of the receiver resumes here: at least once, in order per writer. Seq order
-- per writer is commit order (one writer loop commits in seq order, a spool replays in order), so a
-- record committed late (a replayed spool) is never behind a cursor, unlike a time-based cursor.
CREATE TABLE IF NOT EXISTS siem_cursors (
  sink        text NOT NULL,
  writer_id   text NOT NULL,
  seq         bigint NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sink, writer_id)
);

-- One forwarder per sink across replicas: a lease row, taken when free or expired, renewed by its holder.
CREATE TABLE IF NOT EXISTS siem_leases (
  sink        text PRIMARY KEY,
  holder      text NOT NULL,
  expires_at  timestamptz NOT NULL
);
