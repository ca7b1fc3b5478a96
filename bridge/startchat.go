package bridge

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/careline/careline/phone"
)

// roomCreateTimeout bounds how long a new room's setup waits for bridgev2 to create it.
const roomCreateTimeout = 2 * time.Minute

// ResolveIdentifier opens (or finds) a patient's room from a phone number, for `start-chat`
// and the provisioning API's create_dm.
func (cl *Client) ResolveIdentifier(ctx context.Context, identifier string, createChat bool) (*bridgev2.ResolveIdentifierResponse, error) {
	c := cl.connector
	// The provisioning API, start-chat and a Matrix invite of a patient's ghost can come
	// before Start has created careline's tables.
	if err := c.waitTablesReady(ctx); err != nil {
		return nil, stillStartingResp(err)
	}
	number, err := phone.Normalize(identifier, c.Config.DefaultRegion)
	if err != nil {
		return nil, bridgev2.WrapRespErr(err, mautrix.MInvalidParam)
	}
	patientID := c.patientID(cl.login.ID, number)
	if _, err = c.Store.GetOrCreatePatient(ctx, patientID, string(cl.login.ID), number); err != nil {
		return nil, err
	}
	ghost, err := c.Bridge.GetGhostByID(ctx, networkid.UserID(patientID))
	if err != nil {
		return nil, err
	}
	key := portalKey(cl.login.ID, patientID)
	portal, err := c.Bridge.GetPortalByKey(ctx, key)
	if err != nil {
		return nil, err
	}
	userInfo, err := cl.GetUserInfo(ctx, ghost)
	if err != nil {
		return nil, err
	}
	chatInfo, err := cl.GetChatInfo(ctx, portal)
	if err != nil {
		return nil, err
	}
	if createChat && portal.MXID == "" {
		// bridgev2 creates the room after this returns (and so tells staff it is new); the care
		// team and relay are set up as soon as it exists. An incoming text that races this
		// sets the room up itself first, under the same lock.
		go cl.setUpWhenCreated(zerolog.Ctx(ctx).WithContext(c.Bridge.BackgroundCtx), portal)
	} else if createChat {
		if err = cl.ensureRoom(ctx, portal); err != nil {
			return nil, errors.Join(errors.New("the patient's room could not be set up"), err)
		}
	}
	return &bridgev2.ResolveIdentifierResponse{
		Ghost:    ghost,
		UserID:   networkid.UserID(patientID),
		UserInfo: userInfo,
		Chat:     &bridgev2.CreateChatResponse{Portal: portal, PortalKey: key, PortalInfo: chatInfo},
	}, nil
}

// setUpWhenCreated invites the care team and sets the relay once bridgev2 has created the room.
func (cl *Client) setUpWhenCreated(ctx context.Context, portal *bridgev2.Portal) {
	if err := portal.RoomCreated.WaitTimeoutCtx(ctx, roomCreateTimeout); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("The patient's room was not created; nothing to set up")
		return
	}
	if err := cl.ensureRoom(ctx, portal); err != nil {
		zerolog.Ctx(ctx).Err(err).Stringer("room_id", portal.MXID).Msg("Could not invite the care team to the new patient room")
	}
}
