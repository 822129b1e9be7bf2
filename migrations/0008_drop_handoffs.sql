-- The pages' hand-off to apps (`/v1/auth/exchange`, `AUTH_RETURN_ORIGINS`)
-- is replaced by the OpenID Provider's authorization code flow
-- (docs/oidc.md): its codes lived 60 seconds, so none is worth keeping.
-- Sessions an exchange made (`issued_to` `key:<id>`) stay valid until
-- they expire.
DROP INDEX IF EXISTS handoffs_expires_at;
DROP TABLE IF EXISTS handoffs;
