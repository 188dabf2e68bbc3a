-- Signed chain checkpoints (issue 16): every VERDICT_CHECKPOINT_INTERVAL each writer signs its chain
-- head (decision_log) and the platform event heads with an Ed25519 key the database never holds.
-- A rewrite of the chain (heads and every later hash recomputed consistently) no longer verifies:
-- the rewritten hash at a checkpointed position differs from the signed one, and a forged checkpoint
-- needs the private key. Rows are only ever inserted.
CREATE TABLE IF NOT EXISTS chain_checkpoints (
  chain       text NOT NULL,            -- decisions | events
  writer_id   text NOT NULL,
  seq         bigint NOT NULL,
  hash        text NOT NULL,
  signed_at   timestamptz NOT NULL,
  key_id      text NOT NULL,            -- RFC 7638 JWK thumbprint of the public key
  signature   text NOT NULL,            -- base64url Ed25519 signature of the canonical payload
  PRIMARY KEY (chain, writer_id, seq)
);
CREATE INDEX IF NOT EXISTS chain_checkpoints_signed_idx ON chain_checkpoints (signed_at);
