-- The subscription lifecycle: accounts, plans and policies, subscriptions,
-- quotes, cancellations, the ledger, receipts, the audit trail,
-- idempotency and billing runs. Instants are BIGINT microseconds since the
-- Unix epoch (UTC); money is BIGINT minor units with a currency column.
-- One file for both engines: `{serial_primary_key}` is the only thing their
-- DDL spells differently, and the migration runner fills it in.

CREATE TABLE families (
    id TEXT PRIMARY KEY,
    time_zone TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE guardians (
    id TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES families(id),
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    locale TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT guardians_email_key UNIQUE (email)
);
CREATE INDEX guardians_family ON guardians(family_id);

CREATE TABLE children (
    id TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES families(id),
    name TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    consent_by TEXT NOT NULL REFERENCES guardians(id),
    consent_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX children_family ON children(family_id);

CREATE TABLE staff (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT staff_email_key UNIQUE (email)
);

CREATE TABLE sessions (
    token_sha256 TEXT PRIMARY KEY,
    principal_kind TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE plans (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    name_zh_cn TEXT NOT NULL,
    name_en TEXT NOT NULL,
    current_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE policies (
    plan_id TEXT NOT NULL REFERENCES plans(id),
    version BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    terms TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (plan_id, version)
);

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES families(id),
    plan_id TEXT NOT NULL REFERENCES plans(id),
    policy_version BIGINT NOT NULL,
    policy_sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    signed_up_at BIGINT NOT NULL,
    anchor_at BIGINT NOT NULL,
    current_position BIGINT NOT NULL,
    current_period_start BIGINT NOT NULL,
    current_period_end BIGINT NOT NULL,
    current_period_paid BIGINT NOT NULL,
    last_charge_attempt_at BIGINT,
    pending_cancellation_id TEXT,
    effective_at BIGINT,
    ended_at BIGINT,
    due_at BIGINT,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (plan_id, policy_version) REFERENCES policies(plan_id, version)
);
CREATE INDEX subscriptions_family ON subscriptions(family_id);
-- The billing run reads only what is due: live subscriptions have a due_at.
CREATE INDEX subscriptions_due ON subscriptions(due_at, id) WHERE due_at IS NOT NULL;

CREATE TABLE quotes (
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    received_at BIGINT NOT NULL,
    valid_until BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX quotes_subscription ON quotes(subscription_id);

CREATE TABLE cancellations (
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    family_id TEXT NOT NULL REFERENCES families(id),
    channel TEXT NOT NULL,
    option_kind TEXT NOT NULL,
    status TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    effective_at BIGINT NOT NULL,
    refund_minor BIGINT NOT NULL,
    fee_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    quote_id TEXT REFERENCES quotes(id),
    reason_category TEXT,
    reason_text TEXT,
    receipt_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    withdrawn_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX cancellations_subscription ON cancellations(subscription_id);
-- At most one cancellation in flight per subscription.
CREATE UNIQUE INDEX cancellations_one_open ON cancellations(subscription_id)
    WHERE status IN ('received', 'scheduled');

CREATE TABLE ledger_entries (
    id TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES families(id),
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    kind TEXT NOT NULL CHECK (kind IN ('charge', 'refund', 'fee', 'credit')),
    amount_minor BIGINT NOT NULL CHECK (amount_minor >= 0),
    currency TEXT NOT NULL,
    period_start BIGINT,
    period_end BIGINT,
    entry_key TEXT NOT NULL,
    gateway_reference TEXT,
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT ledger_entries_entry_key UNIQUE (entry_key)
);
CREATE INDEX ledger_entries_family ON ledger_entries(family_id, created_at);
-- At most one charge per (subscription, period), whatever the code does.
CREATE UNIQUE INDEX ledger_one_charge_per_period ON ledger_entries(subscription_id, period_start)
    WHERE kind = 'charge';

CREATE TABLE receipts (
    id TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES families(id),
    number TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT receipts_number_key UNIQUE (number)
);
CREATE INDEX receipts_family ON receipts(family_id, created_at);

CREATE TABLE audit_entries (
    seq {serial_primary_key},
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject_ids TEXT NOT NULL,
    details TEXT NOT NULL
);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    response_status BIGINT,
    response_body TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);

CREATE TABLE billing_runs (
    id TEXT PRIMARY KEY,
    run_at BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    summary TEXT
);

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
