-- Which server process claimed an Idempotency-Key, and which processes are
-- alive: each server writes its heartbeat to `server_processes` every
-- second. A key claimed by a process that stopped beating (killed, crashed)
-- is freed at once for the client's retry, instead of after the stale
-- timeout, whatever server the retry reaches.
ALTER TABLE idempotency_keys ADD COLUMN claimed_by TEXT;
CREATE TABLE server_processes (
    id TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);
