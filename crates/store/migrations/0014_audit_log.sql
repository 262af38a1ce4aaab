-- The audit trail becomes an append-only Merkle log (RFC 9162): every
-- entry is leaf `leaf_index` (dense from 0: taken from `audit_log.size`
-- under that row's lock, in the transaction of the change), with its leaf
-- hash and the SHA-256 of the signed document it produced; `audit_nodes`
-- keeps the hash of every complete subtree (level 0: the leaves), so that
-- any root or proof is a few lookups; `tree_heads` the signed heads.
-- Entries written before this migration are appended, in order, by
-- `Store::migrate`.
ALTER TABLE audit_entries ADD COLUMN leaf_index BIGINT;
ALTER TABLE audit_entries ADD COLUMN leaf_hash TEXT;
ALTER TABLE audit_entries ADD COLUMN document_sha256 TEXT;
CREATE UNIQUE INDEX audit_entries_leaf ON audit_entries(leaf_index);
CREATE INDEX audit_entries_document ON audit_entries(document_sha256);
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, size BIGINT NOT NULL);
INSERT INTO audit_log (id, size) VALUES (1, 0);
CREATE TABLE audit_nodes (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE tree_heads (
    tree_size BIGINT PRIMARY KEY,
    root_hash TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    signature TEXT NOT NULL
);
