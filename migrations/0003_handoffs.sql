-- The hosted pages hand a signed-in browser back to the app that sent it
-- with a one-time code (docs/pages.md); the app trades it at
-- /v1/auth/exchange. Only the code's SHA-256 is kept, for 60 seconds,
-- bound to the browser session that earned it (a sign-out or reset ends
-- it), the app's exact return_to URL and its PKCE challenge.
--
-- The console filters the audit trail by event kind: auth_events_event
-- serves that filter newest first.

CREATE TABLE IF NOT EXISTS handoffs (
  code_hash     TEXT PRIMARY KEY,
  session_hash  TEXT NOT NULL,
  user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  return_to     TEXT NOT NULL,
  challenge     TEXT,
  created_at    INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS handoffs_expires_at ON handoffs (expires_at);

CREATE INDEX IF NOT EXISTS auth_events_event ON auth_events (event, id);
