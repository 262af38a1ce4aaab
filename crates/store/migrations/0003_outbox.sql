-- The transactional outbox: a message is written in the same transaction
-- as the change that causes it, and delivered by a worker with retries.
-- `event_key` makes one message per event, however often the change is
-- retried. The recipient is erased once the message is delivered.

CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    event_key TEXT NOT NULL,
    family_id TEXT,
    recipient TEXT NOT NULL,
    locale TEXT NOT NULL,
    template TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    CONSTRAINT outbox_event_key UNIQUE (event_key)
);
CREATE INDEX outbox_due ON outbox(next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_family ON outbox(family_id, created_at);
