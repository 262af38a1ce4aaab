-- Disputes: a guardian's complaint, where it stands and its deadlines.
-- `description`, `contact_email` and the texts of messages are the
-- family's personal data: minimised with the rest of it (the receipt of
-- the filing keeps the description's SHA-256). `deadlines_missed` counts
-- every deadline missed at any level, for the compliance report.
CREATE TABLE disputes (
    id TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES families(id),
    kind TEXT NOT NULL,
    subscription_id TEXT,
    ledger_entry_id TEXT,
    cancellation_id TEXT,
    receipt_number TEXT,
    tracking_number TEXT,
    description TEXT NOT NULL,
    contact_email TEXT,
    locale TEXT NOT NULL,
    channel TEXT NOT NULL,
    filed_by TEXT NOT NULL,
    forwarded_by TEXT,
    level TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT,
    settled_automatically BIGINT NOT NULL,
    level_since BIGINT NOT NULL,
    first_response_due BIGINT NOT NULL,
    resolution_due BIGINT NOT NULL,
    first_responded_at BIGINT,
    deadlines_missed BIGINT NOT NULL,
    receipt_id TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    resolved_at BIGINT
);
CREATE INDEX disputes_family ON disputes(family_id, opened_at);
CREATE INDEX disputes_open ON disputes(status, resolution_due);
CREATE INDEX disputes_opened ON disputes(opened_at);

-- Every step of a dispute, in order: what the records showed, refunds,
-- messages both ways, escalations, missed deadlines, the outcome. `facts`
-- is JSON of ids and statuses (no personal data); `text` a person's words.
CREATE TABLE dispute_events (
    seq {serial_primary_key},
    dispute_id TEXT NOT NULL REFERENCES disputes(id),
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    facts TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX dispute_events_dispute ON dispute_events(dispute_id, seq);

-- Evidence files of a dispute, stored sealed under the family's evidence
-- key and named by SHA-256 (services/evidence.rs). `removed_at` is set
-- when the family's personal data went: the hash stays, the file does not.
CREATE TABLE dispute_evidence (
    dispute_id TEXT NOT NULL REFERENCES disputes(id),
    sha256 TEXT NOT NULL,
    family_id TEXT NOT NULL,
    content_type TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    added_by TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    removed_at BIGINT,
    PRIMARY KEY (dispute_id, sha256)
);
CREATE INDEX dispute_evidence_family ON dispute_evidence(family_id);
