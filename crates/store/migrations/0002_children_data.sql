-- Children's data: integrators' API keys, child records (ciphertext only:
-- the data keys live in the key vault outside the database, so a backup of
-- this database can never decrypt a record whose key was destroyed),
-- exports and deletions.

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    key_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    CONSTRAINT api_keys_key_sha256 UNIQUE (key_sha256)
);

CREATE TABLE child_records (
    id TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES families(id),
    child_id TEXT NOT NULL REFERENCES children(id),
    service TEXT NOT NULL,
    kind TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    nonce TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX child_records_child ON child_records(child_id, recorded_at, id);
CREATE INDEX child_records_family_service ON child_records(family_id, service, child_id, kind, recorded_at, id);

CREATE TABLE exports (
    id TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES families(id),
    status TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    file_sha256 TEXT,
    size_bytes BIGINT,
    error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX exports_family ON exports(family_id, created_at);

CREATE TABLE deletions (
    id TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES families(id),
    service TEXT NOT NULL,
    cause TEXT NOT NULL,
    status TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    key_destroyed_at BIGINT,
    certificate_id TEXT,
    completed_at BIGINT
);
-- One deletion in flight per (family, service); `*` is every service.
CREATE UNIQUE INDEX deletions_one_pending ON deletions(family_id, service) WHERE status = 'pending';
CREATE INDEX deletions_due ON deletions(due_at, id) WHERE status = 'pending';
