-- The audit log gets a single appender: a change's transaction writes its
-- entry without a leaf index, and the appender (one at a time, under the
-- `audit_log` row's lock) gives the entries committed since its last turn
-- their indexes, in `seq` order, with their subtrees. The pending entries
-- are found by this index.
CREATE INDEX audit_entries_pending ON audit_entries(seq) WHERE leaf_index IS NULL;
-- The leaves' hashes are the entries' own `leaf_hash`: `audit_nodes` keeps
-- only the subtrees above them.
DELETE FROM audit_nodes WHERE level = 0;
