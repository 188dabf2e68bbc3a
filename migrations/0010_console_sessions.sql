-- The console's sessions (issue 24): server side, so that signing out (or an operator) ends one for
-- good — a copied cookie stops working. The cookie holds a random id; only its SHA-256 is stored.
-- Read and written only by src/sessions/sessions-sql.ts.
CREATE TABLE IF NOT EXISTS console_sessions (
  id_hash       text PRIMARY KEY,
  -- The verified caller the session acts as (sub, iss, client id, scopes, principal type).
  caller        jsonb NOT NULL,
  -- How the person signed in: 'token', 'link' (the embedded banner's one-time link), 'oidc'.
  method        text NOT NULL,
  created_at    timestamptz NOT NULL,
  last_seen_at  timestamptz NOT NULL,
  -- The absolute end: sign-in + the absolute limit, never past the sign-in token's own expiry.
  expires_at    timestamptz NOT NULL,
  revoked_at    timestamptz
);
CREATE INDEX IF NOT EXISTS console_sessions_expires_at ON console_sessions (expires_at);

-- One-time sign-in links (the embedded start banner's): only the code's SHA-256 is stored; a link
-- signs in once, before expires_at.
CREATE TABLE IF NOT EXISTS console_sign_in_links (
  code_hash   text PRIMARY KEY,
  caller      jsonb NOT NULL,
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz
);
