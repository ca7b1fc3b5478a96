package bridge

import (
	"context"
	"errors"
	"fmt"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// exportRoomProblem says why a room is not private enough for the audit trail, or "" if it
// is: the room must be end-to-end encrypted (or the file would sit readable on the homeserver)
// and invite-only (or anyone could join later and read the history).
func (c *Connector) exportRoomProblem(ctx context.Context, roomID id.RoomID) (string, error) {
	mx, ok := c.Bridge.Matrix.(bridgev2.MatrixConnectorWithArbitraryRoomState)
	if !ok {
		return "", errors.New("the Matrix connector cannot read room state")
	}
	enc, err := mx.GetStateEvent(ctx, roomID, event.StateEncryption, "")
	if err != nil && !errors.Is(err, mautrix.MNotFound) {
		return "", fmt.Errorf("reading the room's encryption: %w", err)
	}
	if enc == nil {
		return "this room is not end-to-end encrypted, so the file would be readable on the homeserver", nil
	}
	rules, err := mx.GetStateEvent(ctx, roomID, event.StateJoinRules, "")
	if err != nil && !errors.Is(err, mautrix.MNotFound) {
		return "", fmt.Errorf("reading the room's join rules: %w", err)
	}
	joinRule := event.JoinRuleInvite // a room without join rules is invite-only
	if rules != nil {
		_ = rules.Content.ParseRaw(event.StateJoinRules)
		joinRule = rules.Content.AsJoinRules().JoinRule
	}
	if joinRule != event.JoinRuleInvite && joinRule != event.JoinRulePrivate {
		return fmt.Sprintf("anyone may join this room (join rule %q), and would read the history", joinRule), nil
	}
	return "", nil
}
