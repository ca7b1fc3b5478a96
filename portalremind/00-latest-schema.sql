-- v0 -> v1: Portal reminders
-- One row per patient's unopened secure message that brought a reminder (the patient's oldest
-- unopened one at the time): when the reminder went, and when staff were told it was still
-- unopened. IDs and times only.
CREATE TABLE careline_portalremind (
    message_id    TEXT    PRIMARY KEY,
    patient_id    TEXT    NOT NULL,
    room_id       TEXT    NOT NULL,
    reminded_at   BIGINT  NOT NULL,
    staff_told_at BIGINT
);
CREATE INDEX careline_portalremind_told_idx ON careline_portalremind (staff_told_at, reminded_at);
