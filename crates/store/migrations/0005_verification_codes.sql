-- One-time codes that prove to a support agent that the caller is the
-- guardian: sent to the guardian's email, stored hashed, single use,
-- short-lived, with a bounded number of tries.
CREATE TABLE verification_codes (
    id TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES families(id),
    code_sha256 TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX verification_codes_family ON verification_codes(family_id, created_at);
