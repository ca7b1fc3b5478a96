-- v1 -> v2: Keyed hashes, code-send log, per-link throttle
-- Tokens and codes are now stored as keyed hashes (HMAC, key derived from the identity key);
-- the unkeyed hashes stored before match nothing any more, so they go: open links, codes and
-- sessions end, and patients ask the clinic for a new link.
DELETE FROM careline_portal_session;
DELETE FROM careline_portal_code;
DELETE FROM careline_portal_preauth;
DELETE FROM careline_portal_link;

-- One row per code text, for the per-patient caps per hour and per day.
CREATE TABLE careline_portal_code_send (
    patient_id  TEXT    NOT NULL,
    sent_at     BIGINT  NOT NULL
);
CREATE INDEX careline_portal_code_send_idx ON careline_portal_code_send (patient_id, sent_at);

-- Wrong codes entered through one link, and when the last one was (the per-link throttle).
ALTER TABLE careline_portal_link ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE careline_portal_link ADD COLUMN last_failure_at BIGINT NOT NULL DEFAULT 0;
