-- v0 -> v1: Patients' names
-- Recorded by staff (`name`) or an integration; sealed at rest. The newest record wins.
CREATE TABLE careline_patient_name (
    patient_id      TEXT    PRIMARY KEY,
    login_id        TEXT    NOT NULL,
    first_sealed    bytea   NOT NULL,
    last_sealed     bytea,
    source          TEXT    NOT NULL,
    recorded_by     TEXT    NOT NULL,
    recorded_at     BIGINT  NOT NULL
);
CREATE INDEX careline_patient_name_login_idx ON careline_patient_name (login_id);
