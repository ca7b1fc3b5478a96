-- v0 -> v1: Hash-chained audit trail
-- One row per event that touched a patient's data: who, what, when, never message content.
-- Rows are only ever inserted (and, after the retention period, deleted from the oldest end).
-- Each hash is HMAC-SHA256 over the previous hash and the row's fields, so an edited, removed
-- or moved row breaks the chain, and without the key the chain cannot be rebuilt.
CREATE TABLE careline_audit (
    seq         BIGINT  PRIMARY KEY,
    at          BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    patient_id  TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    twilio_sid  TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    prev_hash   bytea   NOT NULL,
    hash        bytea   NOT NULL
);
CREATE INDEX careline_audit_at_idx ON careline_audit (at);
CREATE INDEX careline_audit_patient_idx ON careline_audit (patient_id, seq);

-- Exactly one row. Appends lock it, which serialises writers across processes; it also
-- remembers the newest entry (so a cut-off tail is noticed) and the newest purged entry (the
-- anchor the remaining chain starts from).
CREATE TABLE careline_audit_head (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq    BIGINT  NOT NULL,
    last_hash   bytea   NOT NULL,
    purged_seq  BIGINT  NOT NULL,
    purged_hash bytea   NOT NULL
);
-- only: postgres
INSERT INTO careline_audit_head (id, last_seq, last_hash, purged_seq, purged_hash) VALUES (1, 0, ''::bytea, 0, ''::bytea);
-- only: sqlite (line commented)
-- INSERT INTO careline_audit_head (id, last_seq, last_hash, purged_seq, purged_hash) VALUES (1, 0, X'', 0, X'');
