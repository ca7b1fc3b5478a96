package bridge

import (
	"context"
	"fmt"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
)

// messageIDField marks every event careline puts in a room for a patient's message, inside the
// encrypted content, so the message can be recognised after a crash.
const messageIDField = "org.careline.message_id"

// recentEventsChecked bounds the room history searched for an interrupted message.
const recentEventsChecked = 100

// alreadyInRoom reports whether a patient's message reached its room although careline
// crashed before recording it: first in bridgev2's records, then in the room's recent
// history (decrypted by the bridge bot).
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
		if evt.Content.Raw[messageIDField] == messageID {
			return true, nil
		}
	}
	return false, nil
}
