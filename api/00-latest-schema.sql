-- v0 -> v1: What each API token created, and idempotent retries
-- A token sees only the messages and broadcasts it created.
CREATE TABLE careline_api_object (
    kind        TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    token_name  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (kind, id)
);

-- A request with an Idempotency-Key: the object it creates is named before it is created, so
-- a retry after a crash finds it; the answer is kept to be replayed. Kept for a day.
CREATE TABLE careline_api_idempotency (
    token_name      TEXT    NOT NULL,
    idem_key        TEXT    NOT NULL,
    request_hash    bytea   NOT NULL,
    object_id       TEXT    NOT NULL,
    status          INTEGER NOT NULL,
    response        TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    PRIMARY KEY (token_name, idem_key)
);
CREATE INDEX careline_api_idempotency_created_idx ON careline_api_idempotency (created_at);
