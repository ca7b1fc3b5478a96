-- v0 -> v1: Team inbox
-- One row per patient conversation: who owns it, whether it is closed, and since when the
-- patient has waited for a staff reply. Only Matrix IDs and times: no names, numbers or content.
CREATE TABLE careline_teaminbox_conversation (
    patient_id      TEXT    PRIMARY KEY,
    room_id         TEXT    NOT NULL,
    assignee        TEXT    NOT NULL DEFAULT '',
    closed_at       BIGINT,
    -- the patient's oldest unanswered message; NULL once staff replied (or closed)
    waiting_since   BIGINT,
    last_patient_at BIGINT,
    -- the nudge for the current wait went out (once per wait)
    nudged_at       BIGINT,
    -- the pinned notice showing the owner and state
    status_event_id TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX careline_teaminbox_waiting_idx ON careline_teaminbox_conversation (waiting_since);

-- First staff reply to each wait, for the first-response report.
CREATE TABLE careline_teaminbox_response (
    patient_id  TEXT    NOT NULL,
    waited_from BIGINT  NOT NULL,
    answered_at BIGINT  NOT NULL,
    responder   TEXT    NOT NULL,
    PRIMARY KEY (patient_id, waited_from)
);
CREATE INDEX careline_teaminbox_response_answered_idx ON careline_teaminbox_response (answered_at);

-- Staff-only threads already told "nothing here goes to the patient".
CREATE TABLE careline_teaminbox_thread (
    room_id       TEXT NOT NULL,
    root_event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, root_event_id)
);

-- The Matrix spaces careline keeps: owner '' is "Needs reply", else a staff member's Matrix ID.
CREATE TABLE careline_teaminbox_space (
    owner    TEXT PRIMARY KEY,
    space_id TEXT NOT NULL
);

-- The patient rooms careline has put in each space (m.space.child sent), so a change removes
-- exactly what it added, across restarts.
CREATE TABLE careline_teaminbox_space_child (
    owner      TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    room_id    TEXT NOT NULL,
    PRIMARY KEY (owner, patient_id)
);
CREATE INDEX careline_teaminbox_space_child_patient_idx ON careline_teaminbox_space_child (patient_id);
