-- Lanyard datastore, version 1 (PostgreSQL).
--
-- Kept column-for-column in step with ../sqlite/0001_initial.sql: the server runs the
-- same SQL text on both. Timestamps are Unix seconds; lists are JSON text (sqlx's Any
-- driver only carries integers, floats, text, bytes and booleans).

-- Registration entries. `entry_key` is the SHA-256 (hex) of the canonical
-- (identity, parent, sorted selectors): the UNIQUE index is what rejects duplicates, so
-- two concurrent creates of the same entry cannot both commit.
CREATE TABLE entries (
    id             TEXT    NOT NULL PRIMARY KEY,
    entry_key      TEXT    NOT NULL UNIQUE,
    spiffe_id      TEXT    NOT NULL,
    parent_id      TEXT    NOT NULL,
    selectors      TEXT    NOT NULL,
    x509_svid_ttl  BIGINT  NOT NULL,
    jwt_svid_ttl   BIGINT  NOT NULL,
    wit_ttl        BIGINT  NOT NULL,
    dns_names      TEXT    NOT NULL,
    federates_with TEXT    NOT NULL,
    admin          BOOLEAN NOT NULL,
    revision       BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL
);

CREATE INDEX entries_parent_id ON entries (parent_id);
CREATE INDEX entries_spiffe_id ON entries (spiffe_id);

-- The entry change log, appended in the same transaction as the change. Writers take
-- an EXCLUSIVE lock on this table first, so sequence numbers are assigned in commit order.
CREATE TABLE entry_events (
    seq       BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id  TEXT    NOT NULL,
    parent_id TEXT    NOT NULL,
    deleted   BOOLEAN NOT NULL
);

-- One-time join tokens, by the SHA-256 hex of the token (never the token itself).
CREATE TABLE join_tokens (
    token_hash TEXT   NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- Attested agents; `selectors` is a JSON array of {"type","value"}.
CREATE TABLE agents (
    id               TEXT    NOT NULL PRIMARY KEY,
    attestation_type TEXT    NOT NULL,
    svid_serial      TEXT    NOT NULL,
    svid_expires_at  BIGINT  NOT NULL,
    selectors        TEXT    NOT NULL,
    banned           BOOLEAN NOT NULL,
    created_at       BIGINT  NOT NULL
);

-- Signing authorities (X.509 CA, JWT and WIT keys) and their lifecycle.
CREATE TABLE authorities (
    id              TEXT   NOT NULL PRIMARY KEY,
    kind            TEXT   NOT NULL CHECK (kind IN ('x509', 'jwt', 'wit')),
    status          TEXT   NOT NULL CHECK (status IN ('prepared', 'active', 'old')),
    public_material BYTEA  NOT NULL,
    private_key     BYTEA  NOT NULL,
    not_before      BIGINT NOT NULL,
    not_after       BIGINT NOT NULL
);

CREATE INDEX authorities_kind_not_before ON authorities (kind, not_before);

-- The trust bundle's spiffe_sequence: exactly one row.
CREATE TABLE bundle_sequence (
    id  INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq BIGINT  NOT NULL
);

INSERT INTO bundle_sequence (id, seq) VALUES (1, 0);

-- Foreign trust domains' bundle documents.
CREATE TABLE federated_bundles (
    trust_domain TEXT   NOT NULL PRIMARY KEY,
    bundle_json  TEXT   NOT NULL,
    fetched_at   BIGINT NOT NULL
);
