-- v1 -> v2: Authenticated purge anchor
-- The anchor the remaining chain is verified from carries the retention cutoff it was purged
-- at and an HMAC over seq, hash and cutoff, so a database writer cannot delete more of the
-- oldest entries and move the anchor to match.
ALTER TABLE careline_audit_head ADD COLUMN purged_cutoff BIGINT NOT NULL DEFAULT 0;
-- only: postgres
ALTER TABLE careline_audit_head ADD COLUMN purged_mac bytea NOT NULL DEFAULT ''::bytea;
-- only: sqlite (line commented)
-- ALTER TABLE careline_audit_head ADD COLUMN purged_mac bytea NOT NULL DEFAULT X'';
