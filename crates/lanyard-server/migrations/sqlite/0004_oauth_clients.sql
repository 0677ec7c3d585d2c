-- The OAuth authorization server (issue 12), SQLite. Kept in step with
-- ../postgres/0004_oauth_clients.sql.

-- Registered OAuth clients. `settings` is the JSON registration (OAuthClientSpec);
-- `secret_hash` is an Argon2id PHC string, or '' for a client without a secret.
CREATE TABLE oauth_clients (
    client_id   TEXT    NOT NULL PRIMARY KEY,
    settings    TEXT    NOT NULL,
    secret_hash TEXT    NOT NULL,
    revision    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- Used one-time values (client assertion and DPoP proof jtis), shared by every replica:
-- an INSERT that conflicts with a live row is a replay. `jti_key` is a hash of the issuer
-- and the jti, computed by the server.
CREATE TABLE oauth_jti (
    jti_key    TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX oauth_jti_expires_at ON oauth_jti (expires_at);

-- Revoked access tokens (RFC 7009), by jti, kept until the token expires.
CREATE TABLE oauth_revoked (
    jti        TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;

-- The access-token signing key is a new authority kind: SQLite cannot alter a CHECK
-- constraint, so the table is rebuilt with the same columns.
CREATE TABLE authorities_v4 (
    id              TEXT    NOT NULL PRIMARY KEY,
    kind            TEXT    NOT NULL CHECK (kind IN ('x509', 'jwt', 'wit', 'access-token')),
    status          TEXT    NOT NULL CHECK (status IN ('prepared', 'active', 'old')),
    public_material BLOB    NOT NULL,
    private_key     BLOB    NOT NULL,
    not_before      INTEGER NOT NULL,
    not_after       INTEGER NOT NULL
) STRICT;

INSERT INTO authorities_v4 (id, kind, status, public_material, private_key, not_before, not_after)
    SELECT id, kind, status, public_material, private_key, not_before, not_after FROM authorities;
DROP TABLE authorities;
ALTER TABLE authorities_v4 RENAME TO authorities;
CREATE INDEX authorities_kind_not_before ON authorities (kind, not_before);
