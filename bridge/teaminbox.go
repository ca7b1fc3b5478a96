package bridge

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/store"
	"github.com/careline/careline/teaminbox"
)

// teamInbox is the care team's shared inbox: who owns each conversation, which await a reply,
// and the staff-only threads already announced. Its state lives in package teaminbox.
type teamInbox struct {
	store *teaminbox.Store
	// now is the inbox's clock; tests replace it.
	now func() time.Time
	// spaces keeps the "Needs reply" and per-staff Matrix spaces (spaces.go).
	spaces inboxSpaces
}

func (c *Connector) startTeamInbox(ctx context.Context) error {
	log := c.Bridge.Log.With().Str("db_section", "careline_teaminbox").Logger()
	c.team.store = teaminbox.New(c.Bridge.DB.Database, log)
	if c.team.now == nil {
		c.team.now = time.Now
	}
	if err := upgradeSections(ctx, dbSection{"careline_teaminbox", c.team.store.Upgrade}); err != nil {
		return err
	}
	c.team.spaces.wake = make(chan struct{}, 1)
	teamCtx := c.Bridge.Log.With().Str("component", "teaminbox").Logger().WithContext(c.backgroundCtx())
	go c.runNudges(teamCtx)
	go c.runSpaces(teamCtx)
	return c.startPortalReminders(ctx)
}

// patientWrote puts a conversation in the queue after a missed call from the patient. A closed
// conversation opens again and its owner is told. (A patient's message does the same in the
// inbox's finisher: recordAwaitingReply.)
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
	c.spacesChanged(conv.PatientID)
	if !reopened {
		return
	}
	c.audit(ctx, audit.Entry{Actor: patientActor(conv.PatientID), Action: "conversation.reopened", PatientID: conv.PatientID,
		Detail: "reopened by a new message from the patient"})
	c.showReopened(ctx, portal, conv)
}

// showReopened shows in the room that the patient's message opened the conversation again,
// and tells its owner.
func (c *Connector) showReopened(ctx context.Context, portal *bridgev2.Portal, conv *teaminbox.Conversation) {
	change := "The patient wrote again: the conversation is open again."
	if conv.Assignee != "" {
		change = fmt.Sprintf("%s: the patient wrote again, so the conversation is open again.", conv.Assignee)
	}
	c.showConversation(ctx, portal, conv, change, conv.Assignee)
}

// recordAwaitingReply records, in the caller's transaction, that the patients of the jobs
// that await a reply wrote (one read and one write of the team inbox for the batch), and
// tells which of the patients who texted have scheduled sends staff were not reminded of yet
// (one read for the batch; almost always none).
func (c *Connector) recordAwaitingReply(ctx context.Context, jobs []*inboundJob) (wrote []teaminbox.Wrote, remind map[string]bool, err error) {
	var msgs []teaminbox.Message
	var texted []string
	now := time.Time{}
	for _, job := range jobs {
		if !job.awaitsReply {
			continue
		}
		if job.in.Channel == store.ChannelSMS {
			texted = append(texted, job.msg.PatientID)
		}
		if c.team.store == nil {
			continue
		} else if job.portal.MXID == "" {
			job.log.Error().Msg("No room to record the patient's message in the team inbox")
			continue
		}
		if now.IsZero() {
			now = c.team.now()
		}
		msgs = append(msgs, teaminbox.Message{PatientID: string(job.portal.ID), RoomID: job.portal.MXID.String(), At: now})
	}
	if c.team.store != nil && len(msgs) > 0 {
		if wrote, err = c.team.store.PatientsWrote(ctx, msgs); err != nil {
			return nil, nil, err
		}
	}
	if c.wf.schedule != nil && len(texted) > 0 {
		if remind, err = c.wf.schedule.Unreminded(ctx, texted); err != nil {
			return nil, nil, fmt.Errorf("looking for scheduled sends to remind staff of: %w", err)
		}
	}
	return wrote, remind, nil
}

// afterAwaitingReply does, once recordAwaitingReply's changes are committed, what they call
// for outside the database: the spaces follow, a reopened conversation is shown in its room
// and its owner told, and staff are reminded of the scheduled sends still pending.
func (c *Connector) afterAwaitingReply(ctx context.Context, jobs []*inboundJob, wrote []teaminbox.Wrote, remind map[string]bool) {
	if len(wrote) == 0 && len(remind) == 0 {
		return
	}
	byPatient := make(map[string]*inboundJob, len(jobs))
	for _, job := range jobs {
		if job.awaitsReply {
			byPatient[job.msg.PatientID] = job
		}
	}
	for _, w := range wrote {
		if w.SpacesChanged {
			c.spacesChanged(w.Conv.PatientID)
		}
		if job := byPatient[w.Conv.PatientID]; w.Reopened && job != nil {
			c.showReopened(job.log.WithContext(ctx), job.portal, w.Conv)
		}
	}
	for patientID := range remind {
		if job := byPatient[patientID]; job != nil {
			c.remindScheduled(job.log.WithContext(ctx), job.portal, patientID)
		}
	}
}

// staffReplied takes a conversation out of the queue after a staff message went to the patient.
func (c *Connector) staffReplied(ctx context.Context, portal *bridgev2.Portal, staff id.UserID) {
	c.replied(ctx, string(portal.ID), portal.MXID.String(), staff.String())
}

// replied ends the patient's wait after a text to them that answers it: a staff message, or a
// template, scheduled or API send; responder is the staff member's Matrix ID, or "api:NAME".
// It counts for the queue, the spaces, nudges and first-response times.
func (c *Connector) replied(ctx context.Context, patientID, roomID, responder string) {
	if c.team.store == nil {
		return
	}
	answered, err := c.team.store.StaffReplied(ctx, patientID, roomID, responder, c.team.now())
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not record the staff reply in the team inbox")
	} else if answered {
		c.spacesChanged(patientID)
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

// runNudges mentions the owner (or the care team) once in each conversation whose patient has
// waited network.inbox.nudge_after for a reply, until the bridge stops.
func (c *Connector) runNudges(ctx context.Context) {
	every := min(max(c.Config.Inbox.NudgeAfter/4, 250*time.Millisecond), time.Minute)
	c.runEvery(ctx, every, c.nudgeDue, "Could not check for unanswered conversations; trying again shortly")
}

// runEvery calls check with the team inbox's clock every interval until the bridge stops; a
// failed check is logged with failed and tried again at the next tick.
func (c *Connector) runEvery(ctx context.Context, every time.Duration, check func(context.Context, time.Time) error, failed string) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if err := check(ctx, c.team.now()); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg(failed)
		}
	}
}

// nudgeDue sends the nudges due at now.
func (c *Connector) nudgeDue(ctx context.Context, now time.Time) error {
	var open func(time.Time) bool
	if hours := c.Config.Hours(); hours != nil {
		open = hours.Open
	}
	waiting, err := c.team.store.Unnudged(ctx)
	if err != nil {
		return err
	}
	for _, conv := range waiting {
		if !teaminbox.NudgeDue(conv.WaitingSince, now, c.Config.Inbox.NudgeAfter, open) {
			continue
		}
		taken, err := c.team.store.MarkNudged(ctx, conv.PatientID, conv.WaitingSince, now)
		if err != nil {
			return err
		} else if !taken {
			continue
		}
		c.nudge(ctx, conv, now)
	}
	return nil
}

// mentionList writes Matrix IDs to mention, comma-separated.
func mentionList(who []id.UserID) string {
	names := make([]string, len(who))
	for i, u := range who {
		names[i] = u.String()
	}
	return strings.Join(names, ", ")
}

// nudge mentions the conversation's owner, or the care team when nobody owns it, in its room.
func (c *Connector) nudge(ctx context.Context, conv *teaminbox.Conversation, now time.Time) {
	var who []id.UserID
	if conv.Assignee != "" {
		who = []id.UserID{id.UserID(conv.Assignee)}
	} else {
		for _, member := range c.Config.CareTeam {
			who = append(who, id.UserID(member))
		}
	}
	body := fmt.Sprintf("⏰ %s: the patient has waited %s for a reply.", mentionList(who), waitedFor(now.Sub(conv.WaitingSince)))
	if len(who) == 0 {
		body = fmt.Sprintf("⏰ The patient has waited %s for a reply.", waitedFor(now.Sub(conv.WaitingSince)))
	}
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: body, Mentions: &event.Mentions{UserIDs: who}}
	if _, err := c.Bridge.Bot.SendMessage(ctx, id.RoomID(conv.RoomID), event.EventMessage, &event.Content{Parsed: content}, nil); err != nil {
		zerolog.Ctx(ctx).Err(err).Str("room_id", conv.RoomID).Msg("Could not post the reminder about an unanswered patient")
		return
	}
	c.audit(ctx, audit.Entry{Actor: "system", Action: "conversation.nudged", PatientID: conv.PatientID,
		Detail: "unanswered since " + conv.WaitingSince.UTC().Format(time.RFC3339)})
}
