-- v0 -> v1: Scheduled sends
-- One row per text to send later. What to send is sealed (it may be a message's content);
-- the row leaves "pending" in the same transaction that hands the text to the outbox, so a
-- crash at any point sends it once or not yet, never twice.
CREATE TABLE careline_scheduled_send (
    id              TEXT    PRIMARY KEY,
    login_id        TEXT    NOT NULL,
    patient_id      TEXT    NOT NULL,
    due_at          BIGINT  NOT NULL,
    payload_sealed  bytea   NOT NULL,
    purpose         TEXT    NOT NULL,
    ref             TEXT,
    created_by      TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    state           TEXT    NOT NULL,
    done_at         BIGINT,
    outcome         TEXT,
    reminded_at     BIGINT
);
CREATE INDEX careline_scheduled_send_due_idx ON careline_scheduled_send (state, due_at);
CREATE INDEX careline_scheduled_send_patient_idx ON careline_scheduled_send (patient_id, state, due_at);
CREATE INDEX careline_scheduled_send_ref_idx ON careline_scheduled_send (purpose, ref);
