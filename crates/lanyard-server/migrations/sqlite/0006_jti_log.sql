-- The used one-time values (client assertion, DPoP proof, WPT and grant jtis) of a SQLite
-- store, appended as they are recorded. One process owns a SQLite file, so it decides in
-- memory what is a replay and this log only makes that durable: it is read back when the
-- store opens (src/datastore/sql/live_jtis.rs says why the keyed `oauth_jti` table is not
-- used on SQLite any more). Appends fill the last pages only; no index on the random key.
CREATE TABLE oauth_jti_log (
    jti_key    TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX oauth_jti_log_expires_at ON oauth_jti_log (expires_at);
