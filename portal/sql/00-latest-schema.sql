-- v0 -> v1: Latest portal schema
-- The patient portal's own tables. Only SHA-256 hashes of link tokens, pre-auth tokens,
-- session tokens and one-time codes are stored; timestamps are Unix milliseconds.

-- Secure links sent by SMS: {public_url}/l/{token}.
CREATE TABLE careline_portal_link (
    token_hash  bytea   PRIMARY KEY,
    patient_id  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX careline_portal_link_patient_idx ON careline_portal_link (patient_id);

-- A browser that opened a link and has not yet entered its code (the pre-auth cookie).
CREATE TABLE careline_portal_preauth (
    token_hash  bytea   PRIMARY KEY,
    link_hash   bytea   NOT NULL REFERENCES careline_portal_link (token_hash) ON DELETE CASCADE,
    patient_id  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX careline_portal_preauth_link_idx ON careline_portal_preauth (link_hash);

-- The patient's current one-time code (a new code replaces the old one), bound to the link
-- it was requested from. code_hash is SHA-256(link_hash || code).
CREATE TABLE careline_portal_code (
    patient_id  TEXT    PRIMARY KEY,
    link_hash   bytea   NOT NULL REFERENCES careline_portal_link (token_hash) ON DELETE CASCADE,
    code_hash   bytea   NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT
);
CREATE INDEX careline_portal_code_link_idx ON careline_portal_code (link_hash);

-- Consecutive failed code entries per patient (across resends), the lock, and the resend
-- cool-down.
CREATE TABLE careline_portal_attempts (
    patient_id         TEXT     PRIMARY KEY,
    failures           INTEGER  NOT NULL DEFAULT 0,
    locked_at          BIGINT,
    last_code_sent_at  BIGINT
);

-- Verified browsers (the session cookie).
CREATE TABLE careline_portal_session (
    token_hash    bytea   PRIMARY KEY,
    patient_id    TEXT    NOT NULL,
    link_hash     bytea   NOT NULL,
    created_at    BIGINT  NOT NULL,
    last_seen_at  BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL
);
CREATE INDEX careline_portal_session_patient_idx ON careline_portal_session (patient_id);
