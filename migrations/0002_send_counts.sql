-- Hourly send caps move from KV to D1, counted in the transaction that
-- files a code (exact under bursts; KV allows one write per second per
-- key and has no atomic increment). Unverified accounts expire from their
-- creation, which re-registering does not move, so the cleanup's index
-- is on created_at.
--
-- IF NOT EXISTS / IF EXISTS throughout: databases set up with schema.sql
-- by a release that already had these changes apply it as a no-op.

CREATE TABLE IF NOT EXISTS send_counts (
  counter TEXT NOT NULL,
  hour    INTEGER NOT NULL,
  sent    INTEGER NOT NULL,
  PRIMARY KEY (counter, hour)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS send_counts_hour ON send_counts (hour);

DROP INDEX IF EXISTS users_unverified_updated;
CREATE INDEX IF NOT EXISTS users_unverified_created ON users (verified, created_at);
