-- SD-CWT issuance (issue 14): the claims a registration entry's SD-CWTs carry, with the
-- entry's disclosure policy, as one JSON object ({"claims": {...}, "always_disclosed":
-- [...], "selectively_disclosable": [...]}); '{}' for an entry without claims.
ALTER TABLE entries ADD COLUMN claims TEXT NOT NULL DEFAULT '{}';

-- The SD-CWT signing key is a new authority kind ('access-token' is migration 0004's).
ALTER TABLE authorities DROP CONSTRAINT IF EXISTS authorities_kind_check;
ALTER TABLE authorities ADD CONSTRAINT authorities_kind_check
    CHECK (kind IN ('x509', 'jwt', 'wit', 'access-token', 'sd-cwt'));
