package bridge

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/teaminbox"
)

// inboxSpaces keeps the team inbox's Matrix spaces in step with the conversations: "Needs
// reply" holds the rooms whose patient waits for an answer, and each staff member's space the
// open conversations assigned to them, so the room list in Element is the queue. Only room IDs
// go into a space (m.space.child state keys); the spaces are created by the bridge bot, like
// bridgev2's personal filtering spaces.
//
// Changes are queued by patient ID and applied by one goroutine, so the inbound path only
// marks a conversation and the homeserver round trips happen after it.
type inboxSpaces struct {
	mu      sync.Mutex
	pending map[string]struct{}
	wake    chan struct{}
}

// spacesRetryEvery is how often conversations whose space update failed are tried again.
const spacesRetryEvery = 30 * time.Second

// spacesChanged marks a conversation whose spaces may have changed.
func (c *Connector) spacesChanged(patientIDs ...string) {
	s := &c.team.spaces
	s.mu.Lock()
	if s.pending == nil {
		s.pending = map[string]struct{}{}
	}
	for _, p := range patientIDs {
		s.pending[p] = struct{}{}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *inboxSpaces) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.pending))
	for p := range s.pending {
		out = append(out, p)
	}
	clear(s.pending)
	slices.Sort(out)
	return out
}

// runSpaces brings every conversation's spaces up to date at start (the state may have changed
// while careline was down, or a change may have failed), then applies changes as they come.
func (c *Connector) runSpaces(ctx context.Context) {
	log := zerolog.Ctx(ctx)
	if err := c.inviteCareTeamToSpaces(ctx); err != nil {
		log.Err(err).Msg("Could not invite the care team to the Needs reply space")
	}
	all, err := c.team.store.PatientIDs(ctx)
	if err != nil {
		log.Err(err).Msg("Could not list the conversations for the team inbox spaces")
	}
	c.spacesChanged(all...)
	retry := time.NewTicker(spacesRetryEvery)
	defer retry.Stop()
	var failed []string
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.team.spaces.wake:
		case <-retry.C:
			c.spacesChanged(failed...)
			failed = nil
			continue
		}
		for _, patientID := range c.team.spaces.take() {
			if err := c.updateSpaces(ctx, patientID); err != nil {
				log.Err(err).Str("patient_id", patientID).Msg("Could not update the team inbox spaces; trying again shortly")
				failed = append(failed, patientID)
			}
		}
	}
}

// updateSpaces puts a conversation's room in the spaces it belongs in and takes it out of the
// others careline put it in.
func (c *Connector) updateSpaces(ctx context.Context, patientID string) error {
	conv, err := c.team.store.Get(ctx, patientID)
	if err != nil {
		return err
	}
	var want []string
	if conv.RoomID != "" {
		want = conv.Spaces()
	}
	have, err := c.team.store.SpaceChildren(ctx, patientID)
	if err != nil {
		return err
	}
	for _, child := range have {
		if slices.Contains(want, child.Owner) && child.RoomID == conv.RoomID {
			want = slices.DeleteFunc(want, func(o string) bool { return o == child.Owner })
			continue
		}
		spaceID, err := c.team.store.SpaceID(ctx, child.Owner)
		if err != nil {
			return err
		}
		// Empty content removes a child (Matrix spec, m.space.child).
		if _, err = c.Bridge.Bot.SendState(ctx, id.RoomID(spaceID), event.StateSpaceChild, child.RoomID,
			&event.Content{Parsed: &event.SpaceChildEventContent{}}, time.Time{}); err != nil {
			return fmt.Errorf("taking the room out of a space: %w", err)
		}
		if err = c.team.store.RemovedFromSpace(ctx, child.Owner, patientID); err != nil {
			return err
		}
	}
	for _, owner := range want {
		spaceID, err := c.inboxSpace(ctx, owner, id.RoomID(conv.RoomID))
		if err != nil {
			return err
		}
		if _, err = c.Bridge.Bot.SendState(ctx, spaceID, event.StateSpaceChild, conv.RoomID,
			&event.Content{Parsed: &event.SpaceChildEventContent{Via: []string{c.Bridge.Matrix.ServerName()}}}, time.Time{}); err != nil {
			return fmt.Errorf("putting the room in a space: %w", err)
		}
		if err = c.team.store.AddedToSpace(ctx, owner, patientID, conv.RoomID); err != nil {
			return err
		}
	}
	return nil
}

// inboxSpace returns owner's space, creating it the first time: "Needs reply" with the care
// team invited, or "Assigned to NAME" with that staff member invited (NAME read from their
// membership in room).
func (c *Connector) inboxSpace(ctx context.Context, owner string, room id.RoomID) (id.RoomID, error) {
	if spaceID, err := c.team.store.SpaceID(ctx, owner); err != nil || spaceID != "" {
		return id.RoomID(spaceID), err
	}
	name, topic := "Needs reply", "Patient conversations waiting for a staff reply (kept by careline)"
	var invite []id.UserID
	for _, member := range c.Config.CareTeam {
		invite = append(invite, id.UserID(member))
	}
	if owner != teaminbox.NeedsReply {
		staff := id.UserID(owner)
		who := staff.String()
		if member, err := c.Bridge.Matrix.GetMemberInfo(ctx, room, staff); err == nil && member != nil && member.Displayname != "" {
			who = member.Displayname
		}
		name, topic = "Assigned to "+who, "Open patient conversations assigned to "+staff.String()+" (kept by careline)"
		invite = []id.UserID{staff}
	}
	spaceID, err := c.Bridge.Bot.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Visibility:      "private",
		Preset:          "private_chat",
		Name:            name,
		Topic:           topic,
		Invite:          invite,
		CreationContent: map[string]any{"type": event.RoomTypeSpace},
		// Only the bot changes what is in the space.
		PowerLevelOverride: &event.PowerLevelsEventContent{Users: map[id.UserID]int{c.Bridge.Bot.GetMXID(): 9001}},
	})
	if err != nil {
		return "", fmt.Errorf("creating the %q space: %w", name, err)
	}
	if err = c.team.store.SaveSpace(ctx, owner, spaceID.String()); err != nil {
		return "", err
	}
	zerolog.Ctx(ctx).Info().Stringer("space_id", spaceID).Str("owner", owner).Msg("Team inbox space created")
	return spaceID, nil
}

// inviteCareTeamToSpaces invites care team members added to the config since "Needs reply" was
// created. The space itself is created with its first room, so the care team's first invitation
// from careline is a patient's room, not an empty space.
func (c *Connector) inviteCareTeamToSpaces(ctx context.Context) error {
	spaceID, err := c.team.store.SpaceID(ctx, teaminbox.NeedsReply)
	if err != nil || spaceID == "" {
		return err
	}
	for _, member := range c.Config.CareTeam {
		if err = c.Bridge.Bot.EnsureInvited(ctx, id.RoomID(spaceID), id.UserID(member)); err != nil {
			return fmt.Errorf("inviting %s to the Needs reply space: %w", member, err)
		}
	}
	return nil
}
