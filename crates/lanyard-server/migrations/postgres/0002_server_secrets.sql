-- Server secrets shared by every replica on this datastore (e.g. the x509pop challenge MAC
-- key). The first replica to insert a name wins; the others read its value.
-- Kept in step with ../sqlite/0002_server_secrets.sql.
CREATE TABLE server_secrets (
    name  TEXT  NOT NULL PRIMARY KEY,
    value BYTEA NOT NULL
);
