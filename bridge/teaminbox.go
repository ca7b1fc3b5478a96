package bridge

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/teaminbox"
)

// teamInbox is the care team's shared inbox: who owns each conversation, which await a reply,
// and the staff-only threads already announced. Its state lives in package teaminbox.
type teamInbox struct {
	store *teaminbox.Store
	// now is the inbox's clock; tests replace it.
	now func() time.Time
}

func (c *Connector) startTeamInbox(ctx context.Context) error {
	log := c.Bridge.Log.With().Str("db_section", "careline_teaminbox").Logger()
	c.team.store = teaminbox.New(c.Bridge.DB.Database, log)
	if c.team.now == nil {
		c.team.now = time.Now
	}
	return c.team.store.Upgrade(ctx)
}

// patientWrote puts a conversation in the queue after a message from the patient (not a
// keyword, not an appointment answer). A closed conversation opens again and its owner is told.
func (c *Connector) patientWrote(ctx context.Context, cl *Client, patientID string) {
	if c.team.store == nil {
		return
	}
	portal, err := c.Bridge.GetPortalByKey(ctx, portalKey(cl.login.ID, patientID))
	if err != nil || portal.MXID == "" {
		zerolog.Ctx(ctx).Err(err).Msg("No room to record the patient's message in the team inbox")
		return
	}
	conv, reopened, err := c.team.store.PatientWrote(ctx, string(portal.ID), portal.MXID.String(), c.team.now())
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not record the patient's message in the team inbox")
		return
	}
	if !reopened {
		return
	}
	c.audit(ctx, audit.Entry{Actor: patientActor(conv.PatientID), Action: "conversation.reopened", PatientID: conv.PatientID,
		Detail: "reopened by a new message from the patient"})
	change := "The patient wrote again: the conversation is open again."
	if conv.Assignee != "" {
		change = fmt.Sprintf("%s: the patient wrote again, so the conversation is open again.", conv.Assignee)
	}
	c.showConversation(ctx, portal, conv, change, conv.Assignee)
}

// staffReplied takes a conversation out of the queue after a staff message went to the patient.
func (c *Connector) staffReplied(ctx context.Context, portal *bridgev2.Portal, staff id.UserID) {
	if c.team.store == nil {
		return
	}
	if _, err := c.team.store.StaffReplied(ctx, string(portal.ID), portal.MXID.String(), staff.String(), c.team.now()); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not record the staff reply in the team inbox")
	}
}

// conversationSummary is the one line that shows a conversation's state: Matrix IDs only.
func conversationSummary(conv *teaminbox.Conversation) string {
	state := "open"
	if !conv.Open() {
		state = "closed"
	}
	owner := "nobody (use `!careline claim` or `!careline assign @user:server`)"
	if conv.Assignee != "" {
		owner = conv.Assignee
	}
	return fmt.Sprintf("📋 Conversation %s · owner: %s", state, owner)
}

// showConversation posts what changed and the current state, mentioning notify if set, and
// pins that notice in place of the previous one, so the room shows the state without a command.
// The notice is an encrypted message; the only state event is m.room.pinned_events, which holds
// event IDs. The room topic would be unencrypted and is left alone.
func (c *Connector) showConversation(ctx context.Context, portal *bridgev2.Portal, conv *teaminbox.Conversation, change, notify string) {
	log := zerolog.Ctx(ctx)
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: change + "\n" + conversationSummary(conv),
		Mentions: &event.Mentions{}}
	if notify != "" {
		content.Mentions.UserIDs = []id.UserID{id.UserID(notify)}
	}
	resp, err := c.Bridge.Bot.SendMessage(ctx, portal.MXID, event.EventMessage, &event.Content{Parsed: content}, nil)
	if err != nil {
		log.Err(err).Msg("Could not post the conversation's state in the room")
		return
	}
	pinned := []id.EventID{resp.EventID}
	if reader, ok := c.Bridge.Matrix.(bridgev2.MatrixConnectorWithArbitraryRoomState); ok {
		if evt, err := reader.GetStateEvent(ctx, portal.MXID, event.StatePinnedEvents, ""); err == nil && evt != nil {
			if old, ok := evt.Content.Parsed.(*event.PinnedEventsEventContent); ok {
				for _, pin := range old.Pinned {
					if pin.String() != conv.StatusEventID && !slices.Contains(pinned, pin) {
						pinned = append(pinned, pin)
					}
				}
			}
		}
	}
	_, err = c.Bridge.Bot.SendState(ctx, portal.MXID, event.StatePinnedEvents, "",
		&event.Content{Parsed: &event.PinnedEventsEventContent{Pinned: pinned}}, time.Time{})
	if err != nil {
		log.Err(err).Msg("Could not pin the conversation's state")
	}
	if err = c.team.store.SetStatusEvent(ctx, conv.PatientID, resp.EventID.String()); err != nil {
		log.Err(err).Msg("Could not remember the conversation's pinned notice")
	}
}

// teaminboxPeriod reads a report's --since and --until in the clinic's time zone.
func teaminboxPeriod(args []string, c *Connector) (since, until time.Time, err error) {
	return teaminbox.ParsePeriod(args, c.Config.Location(), c.team.now())
}
