-- The OAuth authorization server (issue 12), PostgreSQL. Kept in step with
-- ../sqlite/0004_oauth_clients.sql.

-- Registered OAuth clients. `settings` is the JSON registration (OAuthClientSpec);
-- `secret_hash` is an Argon2id PHC string, or '' for a client without a secret.
CREATE TABLE oauth_clients (
    client_id   TEXT   NOT NULL PRIMARY KEY,
    settings    TEXT   NOT NULL,
    secret_hash TEXT   NOT NULL,
    revision    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Used one-time values (client assertion and DPoP proof jtis), shared by every replica:
-- an INSERT that conflicts with a live row is a replay. `jti_key` is a hash of the issuer
-- and the jti, computed by the server.
CREATE TABLE oauth_jti (
    jti_key    TEXT   NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE INDEX oauth_jti_expires_at ON oauth_jti (expires_at);

-- Revoked access tokens (RFC 7009), by jti, kept until the token expires.
CREATE TABLE oauth_revoked (
    jti        TEXT   NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- The access-token signing key is a new authority kind.
ALTER TABLE authorities DROP CONSTRAINT authorities_kind_check;
ALTER TABLE authorities ADD CONSTRAINT authorities_kind_check
    CHECK (kind IN ('x509', 'jwt', 'wit', 'access-token'));
