package bridge

import (
	"context"
	"fmt"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
)

// messageIDField marks every event careline puts in a room for a patient's message, inside the
// encrypted content, so the message can be recognised after a crash.
const messageIDField = "org.careline.message_id"

// partIDField names the part of a multi-part message (text, then each attachment) an event
// carries, so a part found after a crash is recorded under the ID bridgev2 would have used.
const partIDField = "org.careline.part_id"

// recentEventsChecked bounds the room history searched for an interrupted message.
const recentEventsChecked = 100

// alreadyInRoom reports whether a patient's message reached its room although careline
// crashed before recording it: first in bridgev2's records, then in the room's recent
// history (decrypted by the bridge bot). What it finds in the history is recorded in bridgev2's
// message table as bridgev2 would have, so replies and receipts find the event and a later
// check needs no room read.
//
// The homeserver round trip is the window: a message handed to the homeserver that accepted
// it while careline died (or the connection broke) is in the room but not in bridgev2's
// records, and only the room itself can tell.
func (c *Connector) alreadyInRoom(ctx context.Context, client *Client, portal *bridgev2.Portal, messageID string) (bool, error) {
	part, err := c.Bridge.DB.Message.GetFirstPartByID(ctx, client.login.ID, networkid.MessageID(messageID))
	if err != nil {
		return false, err
	} else if part != nil {
		return true, nil
	}
	if portal.MXID == "" {
		return false, nil
	}
	mc, ok := c.Bridge.Matrix.(*matrix.Connector)
	if !ok {
		return false, nil
	}
	resp, err := mc.Bot.Messages(ctx, portal.MXID, "", "", mautrix.DirectionBackward, nil, recentEventsChecked)
	if err != nil {
		return false, fmt.Errorf("reading the room's recent messages: %w", err)
	}
	found := false
	for _, evt := range resp.Chunk {
		evt.RoomID = portal.MXID
		if evt.Type == event.EventEncrypted && mc.Crypto != nil {
			if err := evt.Content.ParseRaw(evt.Type); err != nil {
				continue
			}
			decrypted, err := mc.Crypto.Decrypt(ctx, evt)
			if err != nil {
				continue
			}
			evt = decrypted
		}
		if evt.Content.Raw[messageIDField] != messageID {
			continue
		}
		found = true
		partID, _ := evt.Content.Raw[partIDField].(string)
		err = c.Bridge.DB.Message.Insert(ctx, &database.Message{
			ID:         networkid.MessageID(messageID),
			PartID:     networkid.PartID(partID),
			MXID:       evt.ID,
			Room:       portal.PortalKey,
			SenderID:   networkid.UserID(portal.ID),
			SenderMXID: evt.Sender,
			Timestamp:  time.UnixMilli(evt.Timestamp),
		})
		if err != nil {
			return true, fmt.Errorf("recording the message found in the room: %w", err)
		}
	}
	return found, nil
}
