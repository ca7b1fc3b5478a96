-- v0 -> v1: Broadcasts
-- One template to many patients. Every target is written before the first send; each
-- leaves "pending" in the transaction that hands its text to the outbox, so a broadcast
-- resumed after a crash sends nobody twice.
CREATE TABLE careline_broadcast (
    id              TEXT    PRIMARY KEY,
    login_id        TEXT    NOT NULL,
    template        TEXT    NOT NULL,
    values_sealed   bytea   NOT NULL,
    created_by      TEXT    NOT NULL,
    origin          TEXT    NOT NULL,
    report_room     TEXT,
    created_at      BIGINT  NOT NULL,
    done_at         BIGINT
);

CREATE TABLE careline_broadcast_target (
    broadcast_id    TEXT    NOT NULL REFERENCES careline_broadcast (id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    number_sealed   bytea   NOT NULL,
    patient_id      TEXT,
    state           TEXT    NOT NULL,
    detail          TEXT,
    message_id      TEXT,
    done_at         BIGINT,
    PRIMARY KEY (broadcast_id, position)
);
CREATE INDEX careline_broadcast_target_state_idx ON careline_broadcast_target (broadcast_id, state, position);
