-- The OpenID Connect clients the operator registers (docs/oidc.md): an
-- app that signs its users in through the hosted pages with the OIDC
-- client its framework already has.
-- * `id` is the public `client_id`; `secret_hash` the SHA-256 of a
--   confidential client's secret (NULL for a public client, which uses
--   PKCE instead). The secret itself is shown once and never stored.
-- * `redirect_uris` and `post_logout_redirect_uris` are JSON arrays of
--   URIs, each compared exactly with the one a request names.
-- * `api_key_id` names the API key of the app the client is, if any.
CREATE TABLE IF NOT EXISTS oidc_clients (
  id                         TEXT PRIMARY KEY,
  name                       TEXT NOT NULL,
  kind                       TEXT NOT NULL CHECK (kind IN ('confidential', 'public')),
  secret_hash                TEXT UNIQUE,
  redirect_uris              TEXT NOT NULL,
  post_logout_redirect_uris  TEXT NOT NULL DEFAULT '[]',
  api_key_id                 TEXT REFERENCES api_keys (id),
  created_at                 INTEGER NOT NULL,
  CHECK ((kind = 'confidential') = (secret_hash IS NOT NULL))
);
