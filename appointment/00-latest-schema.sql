-- v0 -> v1: Appointments from the clinic's EHR, their reminders and the patients' answers
-- The id is the EHR's (FHIR logical id), shared by every API token. The resource as the EHR
-- sent it names the patient and their number, so it is sealed (AES-256-GCM).
CREATE TABLE careline_appointment (
    id              TEXT    PRIMARY KEY,
    patient_id      TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    start_at        BIGINT  NOT NULL,
    resource_sealed bytea   NOT NULL,
    answer          TEXT,
    answered_at     BIGINT,
    answered_via    TEXT,
    deleted_at      BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX careline_appointment_patient_idx ON careline_appointment (patient_id, start_at);

-- One row per configured offset before the start. state: scheduled, sent, withdrawn (cancelled
-- or moved away), skipped (already past when the appointment arrived), not_sent (the template
-- needed a value the appointment lacks; staff were told).
CREATE TABLE careline_reminder (
    appointment_id  TEXT    NOT NULL REFERENCES careline_appointment (id) ON DELETE CASCADE,
    offset_ms       BIGINT  NOT NULL,
    due_at          BIGINT  NOT NULL,
    state           TEXT    NOT NULL,
    sent_at         BIGINT,
    message_id      TEXT,
    note            TEXT,
    PRIMARY KEY (appointment_id, offset_ms)
);
CREATE INDEX careline_reminder_due_idx ON careline_reminder (due_at) WHERE state = 'scheduled';

-- Patients the EHR refers to by reference ("Patient/123") once it has sent them contained.
CREATE TABLE careline_patient_reference (
    reference       TEXT    PRIMARY KEY,
    patient_sealed  bytea   NOT NULL,
    updated_at      BIGINT  NOT NULL
);
