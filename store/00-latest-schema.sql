-- v0 -> v1: Patients, inbound webhooks, messages, attachments
-- Patients of a clinic login. The id is an opaque keyed hash of (login, number): it is what
-- Matrix sees. The number itself is only stored sealed (AES-256-GCM).
CREATE TABLE careline_patient (
    id              TEXT    PRIMARY KEY,
    login_id        TEXT    NOT NULL,
    phone_sealed    bytea   NOT NULL,
    phone_last4     TEXT    NOT NULL,
    dob_sealed      bytea,
    opted_out_at    BIGINT,
    consent_at      BIGINT,
    consent_by      TEXT,
    consent_how     TEXT,
    created_at      BIGINT  NOT NULL
);

-- Webhooks from Twilio, written before the webhook is acknowledged and marked once the
-- message is in the Matrix room, so a crash or an outage in between loses nothing.
CREATE TABLE careline_inbound (
    message_sid     TEXT    PRIMARY KEY,
    login_id        TEXT    NOT NULL,
    patient_id      TEXT    NOT NULL,
    params_sealed   bytea   NOT NULL,
    received_at     BIGINT  NOT NULL,
    bridged_at      BIGINT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE INDEX careline_inbound_pending_idx ON careline_inbound (received_at) WHERE bridged_at IS NULL;

-- Every message of a patient's conversation, both ways; the body is sealed.
CREATE TABLE careline_message (
    id              TEXT    PRIMARY KEY,
    patient_id      TEXT    NOT NULL REFERENCES careline_patient (id) ON DELETE CASCADE,
    from_patient    BOOLEAN NOT NULL,
    channel         TEXT    NOT NULL,
    sender_name     TEXT    NOT NULL,
    body_sealed     bytea,
    twilio_sid      TEXT,
    mx_room_id      TEXT,
    mx_event_id     TEXT,
    mx_sender       TEXT,
    status          TEXT    NOT NULL,
    error_code      INTEGER,
    created_at      BIGINT  NOT NULL,
    read_at         BIGINT,
    withdrawn_at    BIGINT
);
CREATE INDEX careline_message_patient_idx ON careline_message (patient_id, created_at);
CREATE UNIQUE INDEX careline_message_twilio_sid_idx ON careline_message (twilio_sid);
CREATE INDEX careline_message_event_idx ON careline_message (mx_event_id);

CREATE TABLE careline_attachment (
    id              TEXT    PRIMARY KEY,
    message_id      TEXT    NOT NULL REFERENCES careline_message (id) ON DELETE CASCADE,
    file_name       TEXT    NOT NULL,
    content_type    TEXT    NOT NULL,
    size            BIGINT  NOT NULL,
    data_sealed     bytea   NOT NULL
);
CREATE INDEX careline_attachment_message_idx ON careline_attachment (message_id);
