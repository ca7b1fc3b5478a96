-- v3 -> v4: Delivery statuses that arrive before careline recorded the text's SID
-- Twilio can post a status callback before its answer to the send call reaches careline;
-- the status is held here and applied once the SID is recorded.
CREATE TABLE careline_early_status (
    twilio_sid  TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    error_code  INTEGER,
    received_at BIGINT  NOT NULL,
    PRIMARY KEY (twilio_sid, status)
);
CREATE INDEX careline_outbox_sid_idx ON careline_outbox (twilio_sid);
