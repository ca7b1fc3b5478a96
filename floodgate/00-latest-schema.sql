-- v0 -> v1: New patient rooms per clinic number
-- Which unknown numbers opened a new patient room by texting, and when, so that at most
-- network.inbound.max_new_patients_per_hour do so per clinic number per hour, across restarts.
CREATE TABLE careline_new_room (
    login_id    TEXT    NOT NULL,
    patient_id  TEXT    NOT NULL,
    opened_at   BIGINT  NOT NULL,
    PRIMARY KEY (login_id, patient_id)
);
CREATE INDEX careline_new_room_login_time_idx ON careline_new_room (login_id, opened_at);
