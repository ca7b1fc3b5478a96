package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/portalremind"
)

// startPortalReminders runs the reminders of unopened secure messages (network.portal.remind_after).
func (c *Connector) startPortalReminders(ctx context.Context) error {
	c.reminders = portalremind.New(c.Bridge.DB.Database, c.Bridge.Log.With().Str("db_section", "careline_portalremind").Logger())
	if err := upgradeSections(ctx, dbSection{"careline_portalremind", c.reminders.Upgrade}); err != nil {
		return err
	}
	go c.runPortalReminders(c.Bridge.Log.With().Str("component", "portalremind").Logger().WithContext(c.backgroundCtx()))
	return nil
}

// runPortalReminders checks for unopened secure messages until the bridge stops: often enough
// that a reminder goes within a sixtieth of remind_after of its time, at most once a minute.
func (c *Connector) runPortalReminders(ctx context.Context) {
	every := min(max(c.Config.Portal.RemindAfter/60, 250*time.Millisecond), time.Minute)
	c.runEvery(ctx, every, c.remindUnopened, "Could not check for unopened secure messages; trying again shortly")
}

// remindUnopened sends the reminders due at now, then tells staff about messages still unopened
// a period after their reminder. A message unopened for more than two periods gets no reminder
// any more (see DueReminders).
func (c *Connector) remindUnopened(ctx context.Context, now time.Time) error {
	after := c.Config.Portal.RemindAfter
	due, err := c.reminders.DueReminders(ctx, now.Add(-2*after), now.Add(-after))
	if err != nil {
		return err
	}
	for _, u := range due {
		if err = c.remindPatient(ctx, u, now); err != nil {
			zerolog.Ctx(ctx).Err(err).Str("message_id", u.MessageID).Msg("Could not remind the patient of an unopened secure message")
		}
	}
	still, err := c.reminders.StillUnopened(ctx, now.Add(-after))
	if err != nil {
		return err
	}
	for _, u := range still {
		taken, err := c.reminders.TakeStaffTold(ctx, u.MessageID, now)
		if err != nil {
			return err
		} else if taken {
			c.tellStillUnopened(ctx, u, now)
		}
	}
	return nil
}

// remindPatient texts the patient once more with a fresh link: the clinic's secure notice, no
// content. A patient who opted out meanwhile gets nothing; the reminder is still taken so it is
// not tried again, and staff hear later that the message stays unopened.
func (c *Connector) remindPatient(ctx context.Context, u portalremind.Unopened, now time.Time) error {
	patient, err := c.Store.GetPatient(ctx, u.PatientID)
	if err != nil || patient == nil {
		return err
	}
	cl := c.clientForLogin(ctx, networkid.UserLoginID(patient.LoginID))
	if cl == nil {
		return fmt.Errorf("the clinic number %s is not connected", patient.LoginID)
	}
	link, err := c.Web.CreateLink(ctx, patient.ID)
	if err != nil {
		return err
	}
	sent := false
	err = c.Store.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		taken, err := c.reminders.TakeReminder(ctx, u, now)
		if err != nil || !taken {
			return err
		}
		// Read inside the transaction: a STOP handled just before must win.
		if p, err := c.Store.GetPatient(ctx, u.PatientID); err != nil || p == nil || !p.OptedOutAt.IsZero() {
			return err
		}
		sent = true
		return cl.queueAutomatic(ctx, patient.ID, c.Config.SecureNotice(link))
	})
	if err != nil || !sent {
		return err
	}
	cl.wakeSender()
	c.audit(ctx, audit.Entry{Actor: "system", Action: "portal.reminded", PatientID: patient.ID, Detail: "unopened message " + u.MessageID})
	c.roomNotice(ctx, u, fmt.Sprintf("🔔 The patient has not opened this secure message in %s, so careline texted them once more with a new link (no content).",
		waitedFor(now.Sub(u.At))), nil)
	return nil
}

// tellStillUnopened tells the owner, or the care team, that a secure message stays unopened
// after its reminder.
func (c *Connector) tellStillUnopened(ctx context.Context, u portalremind.Unopened, now time.Time) {
	var who []id.UserID
	if conv, err := c.team.store.Get(ctx, u.PatientID); err == nil && conv.Assignee != "" {
		who = []id.UserID{id.UserID(conv.Assignee)}
	} else {
		for _, member := range c.Config.CareTeam {
			who = append(who, id.UserID(member))
		}
	}
	text := fmt.Sprintf("📭 The patient has still not opened this secure message, %s after the reminder. Consider calling them.", waitedFor(now.Sub(u.At)))
	if len(who) > 0 {
		text = mentionList(who) + ": " + text
	}
	c.roomNotice(ctx, u, text, who)
	c.audit(ctx, audit.Entry{Actor: "system", Action: "portal.unopened_reported", PatientID: u.PatientID, Detail: "unopened message " + u.MessageID})
}

// roomNotice posts a notice in the message's room, as a reply to the message, mentioning who.
func (c *Connector) roomNotice(ctx context.Context, u portalremind.Unopened, text string, who []id.UserID) {
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: text, Mentions: &event.Mentions{UserIDs: who}}
	if u.EventID != "" {
		content.RelatesTo = (&event.RelatesTo{}).SetReplyTo(id.EventID(u.EventID))
	}
	if _, err := c.Bridge.Bot.SendMessage(ctx, id.RoomID(u.RoomID), event.EventMessage, &event.Content{Parsed: content}, nil); err != nil {
		zerolog.Ctx(ctx).Err(err).Str("room_id", u.RoomID).Msg("Could not tell staff about the portal reminder")
	}
}
