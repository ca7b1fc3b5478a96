package bridge

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/store"
)

// messageIDField marks every event careline puts in a room for a patient's message, inside the
// encrypted content. The crash check does not need it (see alreadyInRoom); it ties an event to
// careline's records for whoever reads the room decrypted.
const messageIDField = "org.careline.message_id"

// partIDField names the part of a multi-part message (text, then each attachment) an event
// carries, inside the encrypted content, next to messageIDField.
const partIDField = "org.careline.part_id"

// recentEventsChecked bounds the patient's ghost's history searched for an interrupted message.
const recentEventsChecked = 100

// textPartID is the part ID of a message's text; bridgev2 uses "" for a single-part message.
const textPartID networkid.PartID = ""

// mediaPartID is the part ID of a message's attachment i.
func mediaPartID(i int) networkid.PartID { return networkid.PartID("media" + strconv.Itoa(i)) }

// hasTextPart: a message's text is a part of its own unless it is empty and there are
// attachments.
func hasTextPart(msg *store.Message, attachments []*store.Attachment) bool {
	return strings.TrimSpace(msg.Body) != "" || len(attachments) == 0
}

// messageParts lists the parts convertPatientMessage makes of a message, in the order bridgev2
// sends them: the text, then each attachment.
func messageParts(msg *store.Message, attachments []*store.Attachment) []networkid.PartID {
	var parts []networkid.PartID
	if hasTextPart(msg, attachments) {
		parts = append(parts, textPartID)
	}
	for i := range attachments {
		parts = append(parts, mediaPartID(i))
	}
	return parts
}

// missingParts is want without the parts in have, in want's order.
func missingParts(want []networkid.PartID, have map[networkid.PartID]bool) []networkid.PartID {
	var missing []networkid.PartID
	for _, part := range want {
		if !have[part] {
			missing = append(missing, part)
		}
	}
	return missing
}

// alreadyInRoom reports whether every part of a patient's message is in its room although an
// attempt to send it was interrupted (careline crashed, or a send failed half-way). It
// records in bridgev2's message table, as bridgev2 would have, any part it finds in the room
// that bridgev2 has no record of; the parts still missing are then sent by queuePatientMessage
// (as an upsert, so bridgev2 sends only those).
//
// The window: bridgev2 sends the parts one by one and records each right after the
// homeserver answers. A part the homeserver accepted while careline died is in the room but
// not in bridgev2's records. It is found without decrypting anything: bridgev2 sends a
// patient's message as the patient's ghost with the appservice `ts` set to when careline
// received it, so the event's sender and origin_server_ts, both outside the encryption, say
// which message it is. Such an event bridgev2 has no record of can only be this message's:
// the patient's earlier messages are all recorded (one patient's messages go in order, see
// inbox.behind), their later ones wait behind this one, and careline sends nothing else as
// the ghost (bridgev2's own error notice is suppressed, see queuePatientMessage). Several
// patient messages in the same millisecond are told apart the same way, by what is recorded.
func (c *Connector) alreadyInRoom(ctx context.Context, client *Client, portal *bridgev2.Portal, msg *store.Message, attachments []*store.Attachment) (bool, error) {
	var history roomHistory
	if mc, ok := c.Bridge.Matrix.(*matrix.Connector); ok && portal.MXID != "" {
		history = func(ctx context.Context, sender id.UserID) ([]*event.Event, error) {
			resp, err := mc.Bot.Messages(ctx, portal.MXID, "", "", mautrix.DirectionBackward,
				&mautrix.FilterPart{Senders: []id.UserID{sender}}, recentEventsChecked)
			if err != nil {
				return nil, fmt.Errorf("reading the patient's recent events in the room: %w", err)
			}
			return resp.Chunk, nil
		}
	}
	ghost := c.Bridge.Matrix.FormatGhostMXID(networkid.UserID(msg.PatientID))
	return recoverParts(ctx, c.Bridge.DB.Message, portal.PortalKey, msg, attachments, ghost, history)
}

// roomHistory returns a sender's recent events in a room, newest first (as /messages does).
type roomHistory func(ctx context.Context, sender id.UserID) ([]*event.Event, error)

// recoverParts is alreadyInRoom on bridgev2's message table and the room's history (nil if
// the room cannot be read).
func recoverParts(ctx context.Context, messages *database.MessageQuery, room networkid.PortalKey, msg *store.Message,
	attachments []*store.Attachment, ghost id.UserID, history roomHistory) (bool, error) {
	existing, err := messages.GetAllPartsByID(ctx, room.Receiver, networkid.MessageID(msg.ID))
	if err != nil {
		return false, err
	}
	missing := missingParts(messageParts(msg, attachments), partSet(existing))
	if len(missing) == 0 {
		return true, nil
	} else if history == nil {
		return false, nil
	}
	events, err := history(ctx, ghost)
	if err != nil {
		return false, err
	}
	var unrecorded []*event.Event
	for i := len(events) - 1; i >= 0; i-- { // oldest first: the order bridgev2 sent them
		evt := events[i]
		if !sentAs(evt, ghost, msg.CreatedAt) {
			continue
		}
		if part, err := messages.GetPartByMXID(ctx, evt.ID); err != nil {
			return false, err
		} else if part == nil {
			unrecorded = append(unrecorded, evt)
		}
	}
	found := matchInterrupted(missing, unrecorded)
	for _, f := range found {
		err = messages.Insert(ctx, &database.Message{
			ID:         networkid.MessageID(msg.ID),
			PartID:     f.part,
			MXID:       f.evt.ID,
			Room:       room,
			SenderID:   networkid.UserID(msg.PatientID),
			SenderMXID: f.evt.Sender,
			Timestamp:  time.UnixMilli(f.evt.Timestamp),
		})
		if err != nil {
			return false, fmt.Errorf("recording a part found in the room: %w", err)
		}
	}
	if len(unrecorded) > len(missing) {
		zerolog.Ctx(ctx).Warn().Int("unrecorded", len(unrecorded)).Int("missing", len(missing)).
			Msg("More unrecorded events of the patient at this message's time than parts missing")
	}
	return len(found) == len(missing), nil
}

// partSet is the set of part IDs of a message's recorded parts.
func partSet(parts []*database.Message) map[networkid.PartID]bool {
	set := make(map[networkid.PartID]bool, len(parts))
	for _, part := range parts {
		set[part.PartID] = true
	}
	return set
}

// sentAs reports whether evt could be a part of a patient message sent by ghost at ts: a
// message event (encrypted or not) of that sender with that origin_server_ts.
func sentAs(evt *event.Event, ghost id.UserID, ts time.Time) bool {
	return evt.Sender == ghost && evt.Timestamp == ts.UnixMilli() && evt.StateKey == nil &&
		(evt.Type == event.EventEncrypted || evt.Type == event.EventMessage)
}

type foundPart struct {
	part networkid.PartID
	evt  *event.Event
}

// matchInterrupted pairs the parts missing from bridgev2's records with the room's events of
// this message that bridgev2 has no record of, both in the order bridgev2 sends parts: an
// attempt sends the parts missing when it started, in order, recording each as it goes, so
// what it left unrecorded are the first of the parts missing now.
func matchInterrupted(missing []networkid.PartID, unrecorded []*event.Event) []foundPart {
	found := make([]foundPart, 0, min(len(missing), len(unrecorded)))
	for i := range min(len(missing), len(unrecorded)) {
		found = append(found, foundPart{part: missing[i], evt: unrecorded[i]})
	}
	return found
}
