-- SD-CWT issuance (issue 14): the claims a registration entry's SD-CWTs carry, with the
-- entry's disclosure policy, as one JSON object ({"claims": {...}, "always_disclosed":
-- [...], "selectively_disclosable": [...]}); '{}' for an entry without claims.
ALTER TABLE entries ADD COLUMN claims TEXT NOT NULL DEFAULT '{}';

-- The SD-CWT signing key is a new authority kind. SQLite cannot alter a CHECK constraint,
-- so the table is rebuilt with the same columns. 'access-token' is listed too: migration
-- 0004 (the OAuth server's access-token key) adds that kind, and this rebuild must keep it.
CREATE TABLE authorities_v5 (
    id              TEXT    NOT NULL PRIMARY KEY,
    kind            TEXT    NOT NULL CHECK (kind IN ('x509', 'jwt', 'wit', 'access-token', 'sd-cwt')),
    status          TEXT    NOT NULL CHECK (status IN ('prepared', 'active', 'old')),
    public_material BLOB    NOT NULL,
    private_key     BLOB    NOT NULL,
    not_before      INTEGER NOT NULL,
    not_after       INTEGER NOT NULL
) STRICT;

INSERT INTO authorities_v5 (id, kind, status, public_material, private_key, not_before, not_after)
    SELECT id, kind, status, public_material, private_key, not_before, not_after FROM authorities;
DROP TABLE authorities;
ALTER TABLE authorities_v5 RENAME TO authorities;
CREATE INDEX authorities_kind_not_before ON authorities (kind, not_before);
