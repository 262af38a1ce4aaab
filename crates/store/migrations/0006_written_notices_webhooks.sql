-- Written notices: a letter or email an agent registers on a guardian's
-- behalf. The evidence file lives in the data directory, named by its
-- SHA-256; the row keeps the hash, so the record proves what was received
-- even after the file itself is deleted with the family's personal data.
CREATE TABLE written_notices (
    id TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES families(id),
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    cancellation_id TEXT NOT NULL REFERENCES cancellations(id),
    received_at BIGINT NOT NULL,
    sender TEXT NOT NULL,
    tracking_number TEXT,
    evidence_sha256 TEXT NOT NULL,
    evidence_type TEXT NOT NULL,
    evidence_bytes BIGINT NOT NULL,
    late_charges_refunded BIGINT NOT NULL,
    registered_by TEXT NOT NULL,
    registered_at BIGINT NOT NULL
);
CREATE INDEX written_notices_registered ON written_notices(registered_at, id);
CREATE INDEX written_notices_family ON written_notices(family_id);
CREATE INDEX written_notices_evidence ON written_notices(evidence_sha256);

-- Integrators' endpoints for webhook events of their service. The secret
-- signs each delivery (HMAC-SHA256); it is shown once when created.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
);
CREATE INDEX webhook_endpoints_service ON webhook_endpoints(service);

-- Webhook deliveries are outbox messages whose recipient is an endpoint id
-- (not personal data, so kept after delivery for the delivery log).
CREATE INDEX outbox_recipient ON outbox(channel, recipient, created_at);
