-- v0 -> v1: Once-per-window records
-- When an automatic text last went to someone (after-hours reply, missed-call text), so it
-- goes at most once per window whatever the restarts.
CREATE TABLE careline_throttle (
    key         TEXT    PRIMARY KEY,
    last_at     BIGINT  NOT NULL
);
