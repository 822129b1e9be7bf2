-- Dynamic client registration (RFC 7591) and the ID token's algorithm
-- (docs/oidc.md).
-- * `oidc_clients.self_registered`: 1 for a client that registered itself
--   at `/oauth/register` (a public one, named by whoever registered it):
--   the pages ask the person's consent on every authorization for it.
-- * `oidc_clients.registered_from`: for those, the keyed pseudonym of the
--   network client that registered it, which caps registrations per
--   client and hour; NULL for the operator's clients.
-- * `oidc_clients.id_token_alg`: what the client's ID tokens are signed
--   with (`id_token_signed_response_alg`), RS256 unless it asked for ES256.
-- * `oauth_grants_client_id`: the cron deletes a self-registered client
--   30 days after its registration once no grant of it is left.
-- * `handoffs`: the hand-off codes of releases before the OpenID Provider;
--   no release since reads or writes them.
ALTER TABLE oidc_clients ADD COLUMN self_registered INTEGER NOT NULL DEFAULT 0 CHECK (self_registered IN (0, 1));
ALTER TABLE oidc_clients ADD COLUMN registered_from TEXT;
ALTER TABLE oidc_clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'RS256' CHECK (id_token_alg IN ('RS256', 'ES256'));
CREATE INDEX IF NOT EXISTS oidc_clients_self_registered ON oidc_clients (created_at) WHERE self_registered = 1;
CREATE INDEX IF NOT EXISTS oauth_grants_client_id ON oauth_grants (client_id);
DROP INDEX IF EXISTS handoffs_expires_at;
DROP TABLE IF EXISTS handoffs;
