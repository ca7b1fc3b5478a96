-- v1 -> v2: Two index writes less per inbound message
-- Nothing looks a message up by its Matrix event (the index held '' for every inbound
-- message), and an inbound message's Twilio SID is its id, which the primary key already
-- keeps unique: the SID index stays for the texts careline sends, whose SIDs Twilio assigns
-- later. Each index had cost every inbound message ~0.6 and ~1.2 pages written.
DROP INDEX careline_message_event_idx;
DROP INDEX careline_message_twilio_sid_idx;
CREATE UNIQUE INDEX careline_message_twilio_sid_idx ON careline_message (twilio_sid) WHERE twilio_sid <> id;
