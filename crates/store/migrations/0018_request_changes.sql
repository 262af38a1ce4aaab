-- When the change a request with an Idempotency-Key made was committed: set
-- in the change's own transaction, so that a retry after a crash between
-- that commit and the save of the answer knows the change happened (and
-- does not make it a second time) even though no answer was saved.
ALTER TABLE idempotency_keys ADD COLUMN changed_at BIGINT;
