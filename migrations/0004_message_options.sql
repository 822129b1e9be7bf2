-- What apps asked for of their codes (docs/api.md):
-- * per-key message options: the domain of the SMS autofill line
--   (`@domain #code`), an Android SMS Retriever app hash, and whether
--   /v1/otp/send needs a Turnstile token;
-- * test recipients: an address or phone per key whose codes are never
--   sent; their fixed code is kept only as an HMAC under OTP_PEPPER, like
--   every code, and a code filed for one is marked `test`;
-- * delivery status: audit events name the send they are about
--   (`send_id`, the code's id), carry a detail (a provider's error code),
--   and mark test sends.

ALTER TABLE api_keys ADD COLUMN sms_domain TEXT;
ALTER TABLE api_keys ADD COLUMN android_app_hash TEXT;
ALTER TABLE api_keys ADD COLUMN turnstile_required INTEGER NOT NULL DEFAULT 0 CHECK (turnstile_required IN (0, 1));

ALTER TABLE codes ADD COLUMN test INTEGER NOT NULL DEFAULT 0 CHECK (test IN (0, 1));

CREATE TABLE IF NOT EXISTS test_recipients (
  key_id     TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
  channel    TEXT NOT NULL,
  address    TEXT NOT NULL,
  digest     TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (key_id, channel, address)
) WITHOUT ROWID;

ALTER TABLE auth_events ADD COLUMN send_id TEXT;
ALTER TABLE auth_events ADD COLUMN detail TEXT;
ALTER TABLE auth_events ADD COLUMN test INTEGER NOT NULL DEFAULT 0 CHECK (test IN (0, 1));
CREATE INDEX IF NOT EXISTS auth_events_send ON auth_events (send_id, id) WHERE send_id IS NOT NULL;
