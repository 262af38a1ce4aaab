-- A guardian removes one child (or withdraws consent for one): that
-- child's data is deleted with a certificate of its own. `child_id` names
-- the child; one deletion in flight per (family, service, child).
ALTER TABLE deletions ADD COLUMN child_id TEXT;
DROP INDEX deletions_one_pending;
CREATE UNIQUE INDEX deletions_one_pending ON deletions(family_id, service, COALESCE(child_id, '')) WHERE status = 'pending';
