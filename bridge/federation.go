package bridge

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/audit"
)

// Partner clinics: staff of another clinic, on their own homeserver, in a patient's room.
// Who they are to careline comes only from careline's config (bridge.permissions by user or
// server, network.federation.clinics), never from anything their own server says.

// clinicOf is the clinic a staff member belongs to, as the patient sees it: the clinic's own
// name for its own server, else the partner's clinic name from the config, else the partner's
// server name. The server part of a Matrix ID is the one thing a partner cannot choose freely,
// so a partner cannot pass as the clinic's own staff.
func (c *Connector) clinicOf(sender id.UserID) string {
	server := sender.Homeserver()
	if server == c.Bridge.Matrix.ServerName() {
		return c.Config.ClinicName
	}
	return c.Config.Federation.ClinicOf(server)
}

// isPartner reports whether userID is on another homeserver than the clinic's.
func (c *Connector) isPartner(userID id.UserID) bool {
	return userID.Homeserver() != c.Bridge.Matrix.ServerName()
}

// placeholder matches a {name} in a template.
var placeholder = regexp.MustCompile(`\{[^{}]*\}`)

// patientNameIsMasked reports whether privacy.patient_name shows no more of the patient than
// the last four digits of the number. Room names are unencrypted state that every server in
// the room stores, so anything more (a name from a template placeholder) must not go to a
// partner's server.
func (c *Connector) patientNameIsMasked() bool {
	for _, p := range placeholder.FindAllString(c.Config.Privacy.PatientName, -1) {
		if p != "{last4}" {
			return false
		}
	}
	return true
}

// watchInvites registers refuseUnadmittedInvite for every member event the homeserver sends.
// bridgev2 does not hand invites of Matrix users in a portal room to the connector (it finds
// no login for them), so careline listens where bridgev2 receives them.
func (c *Connector) watchInvites() {
	mx, ok := c.Bridge.Matrix.(*matrix.Connector)
	if !ok || mx.EventProcessor == nil {
		c.Bridge.Log.Warn().Msg("Cannot watch invites into patient rooms: invites of users without bridge permission will not be withdrawn")
		return
	}
	mx.EventProcessor.On(event.StateMember, c.refuseUnadmittedInvite)
}

// refuseUnadmittedInvite withdraws an invite into a patient's room of someone careline would
// not take messages from (no bridge.permissions entry for them or their server): they would
// read what the patient writes, and nothing they wrote would reach the patient. Staff are told
// why in the room. Invites of admitted partners are audited.
func (c *Connector) refuseUnadmittedInvite(ctx context.Context, evt *event.Event) {
	content, ok := evt.Content.Parsed.(*event.MemberEventContent)
	if !ok || content.Membership != event.MembershipInvite {
		return
	}
	invitee, inviter := id.UserID(evt.GetStateKey()), evt.Sender
	bot := c.Bridge.Bot.GetMXID()
	if invitee == bot || inviter == bot || c.Bridge.IsGhostMXID(invitee) || c.Bridge.IsGhostMXID(inviter) {
		return // the bridge's own invites (care team, invite-partner, ghosts)
	}
	portal, err := c.Bridge.GetPortalByMXID(ctx, evt.RoomID)
	if err != nil || portal == nil {
		return
	}
	if c.Bridge.Config.Permissions.Get(invitee).SendEvents {
		if c.isPartner(invitee) {
			c.audit(ctx, audit.Entry{Actor: inviter.String(), Action: "partner.invited", PatientID: string(portal.ID),
				Detail: fmt.Sprintf("%s (%s) by a Matrix invite", invitee, c.clinicOf(invitee))})
		}
		return
	}
	ctx = context.WithoutCancel(ctx)
	go c.withdrawInvite(ctx, portal, evt, invitee)
}

func (c *Connector) withdrawInvite(ctx context.Context, portal *bridgev2.Portal, invite *event.Event, invitee id.UserID) {
	log := zerolog.Ctx(ctx).With().Stringer("room_id", portal.MXID).Stringer("invitee", invitee).Stringer("inviter", invite.Sender).Logger()
	_, err := c.Bridge.Bot.SendState(ctx, portal.MXID, event.StateMember, invitee.String(), &event.Content{
		Parsed: &event.MemberEventContent{Membership: event.MembershipLeave, Reason: "Not admitted by careline (bridge.permissions)"},
	}, time.Time{})
	withdrawn := "I withdrew the invite, so they cannot read this room."
	if err != nil {
		log.Err(err).Msg("Could not withdraw an invite of a user without bridge permission")
		withdrawn = "I could not withdraw the invite: remove them from the room, or they will read what the patient writes."
	} else {
		log.Info().Msg("Withdrew an invite of a user without bridge permission")
	}
	c.audit(ctx, audit.Entry{Actor: invite.Sender.String(), Action: "partner.refused", PatientID: string(portal.ID),
		Detail: fmt.Sprintf("%s: no bridge.permissions entry; invite withdrawn=%t", invitee, err == nil)})
	c.sendNotice(ctx, portal, fmt.Sprintf(
		"%s cannot take part in this patient's conversation: neither they nor their server (%s) has an entry in careline's bridge.permissions, so nothing they wrote would reach the patient. %s An administrator can admit a partner clinic's server (level relay or commands) and then use `invite-partner`.",
		invitee, invitee.Homeserver(), withdrawn), invite.ID)
}

// ensureHistoryVisibility sets the room's history visibility to network.federation.
// history_visibility before a partner is invited, so their server is given no more of the
// room's past than the admin chose. It is changed only when it differs.
func (c *Connector) ensureHistoryVisibility(ctx context.Context, portal *bridgev2.Portal) error {
	want := event.HistoryVisibility(c.Config.Federation.HistoryVisibility)
	if reader, ok := c.Bridge.Matrix.(bridgev2.MatrixConnectorWithArbitraryRoomState); ok {
		current, err := reader.GetStateEvent(ctx, portal.MXID, event.StateHistoryVisibility, "")
		if err == nil && current != nil {
			_ = current.Content.ParseRaw(event.StateHistoryVisibility)
			if hv, ok := current.Content.Parsed.(*event.HistoryVisibilityEventContent); ok && hv.HistoryVisibility == want {
				return nil
			}
		}
	}
	_, err := c.Bridge.Bot.SendState(ctx, portal.MXID, event.StateHistoryVisibility, "",
		&event.Content{Parsed: &event.HistoryVisibilityEventContent{HistoryVisibility: want}}, time.Time{})
	return err
}
