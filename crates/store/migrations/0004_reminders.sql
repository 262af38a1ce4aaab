-- Renewal reminders: the period whose reminder was sent, so that each
-- renewal is announced once.
ALTER TABLE subscriptions ADD COLUMN reminded_period_start BIGINT;
