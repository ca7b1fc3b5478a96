package bridge

import (
	"context"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"go.mau.fi/util/ptr"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/phone"
	"github.com/careline/careline/store"
)

// patientName is the masked name shown for a patient in notices, "···????" when the patient
// cannot be read.
func (c *Connector) patientName(ctx context.Context, patientID string) string {
	name, _ := c.displayName(ctx, patientID)
	return name
}

// displayName is the masked name for room names and ghost profiles, which stay until the next
// sync: a failed read returns its error instead of a "···????" that would replace the name.
func (c *Connector) displayName(ctx context.Context, patientID string) (string, error) {
	p, err := c.Store.GetPatient(ctx, patientID)
	if err != nil {
		return c.nameOf(nil), err
	}
	return c.nameOf(p), nil
}

// nameOf is patientName for a patient already read.
func (c *Connector) nameOf(p *store.Patient) string {
	last4 := "????"
	if p != nil {
		last4 = phone.Last4(p.Phone)
	}
	name := strings.ReplaceAll(c.Config.Privacy.PatientName, "{last4}", last4)
	if p != nil && strings.Contains(name, "_name}") {
		name = c.fillRecordedName(name, p.ID)
	}
	return name
}

// GetChatInfo waits for careline's tables: bridgev2 may ask during start (a tombstone, a
// sync command), and a name read without them would be "···????".
func (cl *Client) GetChatInfo(ctx context.Context, portal *bridgev2.Portal) (*bridgev2.ChatInfo, error) {
	if err := cl.connector.waitTablesReady(ctx); err != nil {
		return nil, err
	}
	name, err := cl.connector.displayName(ctx, string(portal.ID))
	if err != nil {
		return nil, err
	}
	return &bridgev2.ChatInfo{
		Name: &name,
		Type: ptr.Ptr(database.RoomTypeDM),
		Members: &bridgev2.ChatMemberList{
			// Not full: the care team are Matrix users the network does not know about, and
			// a full list would make bridgev2 remove them.
			IsFull:      false,
			OtherUserID: networkid.UserID(portal.ID),
			MemberMap: bridgev2.ChatMemberMap{}.
				Set(bridgev2.ChatMember{EventSender: bridgev2.EventSender{IsFromMe: true}, Membership: event.MembershipJoin, PowerLevel: ptr.Ptr(50)}).
				Set(bridgev2.ChatMember{EventSender: bridgev2.EventSender{Sender: networkid.UserID(portal.ID)}, Membership: event.MembershipJoin}),
		},
	}, nil
}

func (cl *Client) GetUserInfo(ctx context.Context, ghost *bridgev2.Ghost) (*bridgev2.UserInfo, error) {
	if err := cl.connector.waitTablesReady(ctx); err != nil {
		return nil, err
	}
	name, err := cl.connector.displayName(ctx, string(ghost.ID))
	if err != nil {
		return nil, err
	}
	return &bridgev2.UserInfo{Name: &name, IsBot: ptr.Ptr(false)}, nil
}

// ensureRoom creates the patient's room if needed, invites the care team and makes the clinic
// login the relay. The care team must be in the room before its first encrypted message,
// or they never receive that message's keys.
func (cl *Client) ensureRoom(ctx context.Context, portal *bridgev2.Portal) error {
	c := cl.connector
	if _, done := c.roomsSetUp.Load(portal.PortalKey); done {
		return nil // every message after the first: no lock
	}
	c.roomSetupLock.Lock()
	defer c.roomSetupLock.Unlock()
	if portal.MXID == "" {
		info, err := cl.GetChatInfo(ctx, portal)
		if err != nil {
			return err
		}
		if err = portal.CreateMatrixRoom(ctx, cl.login, info); err != nil {
			return fmt.Errorf("creating the patient's room: %w", err)
		}
	}
	meta := portal.Metadata.(*PortalMetadata)
	if meta.RoomSetUp {
		c.roomsSetUp.Store(portal.PortalKey, struct{}{})
		return nil
	}
	// The relay first: a care team member who joins at once can write straight away.
	if err := portal.SetRelay(ctx, cl.login); err != nil {
		return fmt.Errorf("making the clinic number the room's relay: %w", err)
	}
	for _, member := range c.Config.CareTeam {
		if err := c.Bridge.Bot.EnsureInvited(ctx, portal.MXID, id.UserID(member)); err != nil {
			return fmt.Errorf("inviting care team member %s: %w", member, err)
		}
	}
	meta.RoomSetUp = true
	if err := portal.Save(ctx); err != nil {
		return err
	}
	c.roomsSetUp.Store(portal.PortalKey, struct{}{})
	zerolog.Ctx(ctx).Info().Stringer("room_id", portal.MXID).Int("care_team", len(c.Config.CareTeam)).
		Msg("Patient room set up")
	return nil
}
