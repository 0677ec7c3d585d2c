-- Lanyard datastore, version 1 (SQLite).
--
-- Kept column-for-column in step with ../postgres/0001_initial.sql: the server runs the
-- same SQL text on both. Timestamps are Unix seconds; lists are JSON text; booleans are
-- 0/1 INTEGERs (sqlx's Any driver cannot decode SQLite's BOOLEAN affinity).

-- Registration entries. `entry_key` is the SHA-256 (hex) of the canonical
-- (identity, parent, sorted selectors): the UNIQUE index is what rejects duplicates, so
-- two concurrent creates of the same entry cannot both commit.
CREATE TABLE entries (
    id             TEXT    NOT NULL PRIMARY KEY,
    entry_key      TEXT    NOT NULL UNIQUE,
    spiffe_id      TEXT    NOT NULL,
    parent_id      TEXT    NOT NULL,
    selectors      TEXT    NOT NULL,
    x509_svid_ttl  INTEGER NOT NULL,
    jwt_svid_ttl   INTEGER NOT NULL,
    wit_ttl        INTEGER NOT NULL,
    dns_names      TEXT    NOT NULL,
    federates_with TEXT    NOT NULL,
    admin          INTEGER NOT NULL,
    revision       INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;

CREATE INDEX entries_parent_id ON entries (parent_id);
CREATE INDEX entries_spiffe_id ON entries (spiffe_id);

-- The entry change log, appended in the same transaction as the change. AUTOINCREMENT:
-- a sequence number is never reused, even after the newest rows are deleted.
CREATE TABLE entry_events (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id  TEXT    NOT NULL,
    parent_id TEXT    NOT NULL,
    deleted   INTEGER NOT NULL
) STRICT;

-- One-time join tokens, by the SHA-256 hex of the token (never the token itself).
CREATE TABLE join_tokens (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;

-- Attested agents; `selectors` is a JSON array of {"type","value"}.
CREATE TABLE agents (
    id               TEXT    NOT NULL PRIMARY KEY,
    attestation_type TEXT    NOT NULL,
    svid_serial      TEXT    NOT NULL,
    svid_expires_at  INTEGER NOT NULL,
    selectors        TEXT    NOT NULL,
    banned           INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
) STRICT;

-- Signing authorities (X.509 CA, JWT and WIT keys) and their lifecycle.
CREATE TABLE authorities (
    id              TEXT    NOT NULL PRIMARY KEY,
    kind            TEXT    NOT NULL CHECK (kind IN ('x509', 'jwt', 'wit')),
    status          TEXT    NOT NULL CHECK (status IN ('prepared', 'active', 'old')),
    public_material BLOB    NOT NULL,
    private_key     BLOB    NOT NULL,
    not_before      INTEGER NOT NULL,
    not_after       INTEGER NOT NULL
) STRICT;

CREATE INDEX authorities_kind_not_before ON authorities (kind, not_before);

-- The trust bundle's spiffe_sequence: exactly one row.
CREATE TABLE bundle_sequence (
    id  INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
) STRICT;

INSERT INTO bundle_sequence (id, seq) VALUES (1, 0);

-- Foreign trust domains' bundle documents.
CREATE TABLE federated_bundles (
    trust_domain TEXT    NOT NULL PRIMARY KEY,
    bundle_json  TEXT    NOT NULL,
    fetched_at   INTEGER NOT NULL
) STRICT;
