-- v0 -> v1: API tokens of integrations (EHR, scheduling systems)
-- Only a keyed hash of each token is stored (HMAC-SHA256 with a key derived from
-- network.privacy.identity_key), so a database dump neither reveals nor lets anyone plant one.
CREATE TABLE careline_api_token (
    name        TEXT    PRIMARY KEY,
    hash        bytea   NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL,
    created_by  TEXT    NOT NULL,
    revoked_at  BIGINT,
    last_used_at BIGINT
);
