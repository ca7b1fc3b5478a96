package testenv

import (
	"context"
	"fmt"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// WaitForMembership waits until the client has seen userID's membership in roomID become
// membership (e.g. a remote user's join, which arrives over federation).
func (c *StaffClient) WaitForMembership(ctx context.Context, roomID id.RoomID, userID id.UserID, membership event.Membership) error {
	_, err := c.WaitForEvent(ctx, func(evt *event.Event) bool {
		return evt.RoomID == roomID && evt.Type == event.StateMember && evt.GetStateKey() == userID.String() &&
			evt.Content.AsMember().Membership == membership
	})
	return err
}

// WaitForJoinOf waits until the client has seen userID join roomID.
func (c *StaffClient) WaitForJoinOf(ctx context.Context, roomID id.RoomID, userID id.UserID) error {
	return c.WaitForMembership(ctx, roomID, userID, event.MembershipJoin)
}

// Join joins roomID (e.g. one the client was invited to over federation), retrying errors for
// up to 30 s: a server joining a remote room can fail a first attempt it then completes.
func (c *StaffClient) Join(ctx context.Context, roomID id.RoomID) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := c.Client.JoinRoomByID(ctx, roomID)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("joining %s: %w", roomID, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
