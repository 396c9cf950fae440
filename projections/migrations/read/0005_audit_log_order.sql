-- The audit log is read newest first in (position, aggregate_type, aggregate_id,
-- sequence) order, and a page starts after a cursor compared as one row value: this
-- index answers both, so a page reads 50 rows however long the log (the one on
-- position alone left the tie-breaking columns to a sort of every earlier row).
CREATE INDEX audit_log_in_order ON audit_log (position, aggregate_type, aggregate_id, sequence);
DROP INDEX audit_log_by_position;
