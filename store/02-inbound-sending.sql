-- v2 -> v3: Remember which incoming messages were being put into their room
-- A crash between the homeserver accepting an event and bridgev2 recording it would
-- otherwise bridge the message twice on restart.
ALTER TABLE careline_inbound ADD COLUMN sending_at BIGINT;
