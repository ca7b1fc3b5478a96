package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/schedule"
	"github.com/careline/careline/template"
)

// maxScheduleAhead bounds how far ahead a send may be scheduled.
const maxScheduleAhead = 366 * 24 * time.Hour

// parseWhen reads +Nm, +Nh, +Nd (N ≥ 1) or YYYY-MM-DDTHH:MM in the clinic's time zone.
func parseWhen(text string, now time.Time, loc *time.Location) (time.Time, error) {
	if rest, ok := strings.CutPrefix(text, "+"); ok && len(rest) >= 2 {
		n, err := strconv.Atoi(rest[:len(rest)-1])
		unit := map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[rest[len(rest)-1]]
		if err == nil && n >= 1 && unit != 0 && time.Duration(n) <= maxScheduleAhead/unit {
			if unit == 24*time.Hour {
				// Days on the clinic's calendar: "+1d" at 9:00 is 9:00 tomorrow across a clock change.
				local := now.In(loc)
				return local.AddDate(0, 0, n), nil
			}
			return now.Add(time.Duration(n) * unit), nil
		}
	}
	at, err := time.ParseInLocation("2006-01-02T15:04", text, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time: write +30m, +2h, +1d or a date and time like %s (%s)",
			text, now.In(loc).Add(24*time.Hour).Format("2006-01-02T15:04"), loc)
	}
	if !at.After(now) {
		return time.Time{}, fmt.Errorf("%s is in the past (now it is %s, %s)", text, now.In(loc).Format("2006-01-02T15:04"), loc)
	}
	if at.Sub(now) > maxScheduleAhead {
		return time.Time{}, fmt.Errorf("%s is more than a year ahead", text)
	}
	return at, nil
}

// whenInWords is a time as the clinic reads it: "Tue, Dec 1 at 9:30 AM EST".
func whenInWords(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("Mon, Jan 2 at 3:04 PM MST")
}

func (c *Connector) cmdSchedule(ce *commands.Event) {
	if len(ce.Args) < 2 {
		ce.Reply("Write when and what: `schedule +2h Your forms are ready`, `schedule 2026-12-01T09:00 template lab_ready`. Times are in %s.", c.Config.Location())
		return
	}
	loc := c.Config.Location()
	due, err := parseWhen(ce.Args[0], time.Now(), loc)
	if err != nil {
		ce.Reply("Nothing was scheduled: %v.", err)
		return
	}
	p := c.commandPatient(ce)
	if p == nil {
		return
	}
	rest := strings.TrimSpace(strings.TrimPrefix(ce.RawArgs, ce.Args[0]))
	payload := schedule.Payload{From: c.commandSenderName(ce)}
	what := ""
	if ce.Args[1] == "template" {
		if len(ce.Args) < 3 {
			ce.Reply("Say which template: `schedule %s template NAME key=value …`.", ce.Args[0])
			return
		}
		t := c.Config.TemplateSet().Get(ce.Args[2])
		if t == nil {
			ce.Reply("Nothing was scheduled: there is no template %q. `templates` lists them.", ce.Args[2])
			return
		}
		given, err := template.ParseArgs(strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(rest, "template"), " "+ce.Args[2])))
		if err != nil {
			ce.Reply("Nothing was scheduled: %v.", err)
			return
		}
		// Checked now so staff learn of a missing value while they are here; rendered again
		// when it goes, with the name as recorded then.
		values, err := c.templateValues(ce.Ctx, p.ID, given)
		if err != nil {
			ce.Reply("Could not read the patient's name: %v", err)
			return
		}
		var missing *template.MissingError
		if _, err = t.Render(values); errors.As(err, &missing) {
			ce.Reply(strings.Replace(missingInWords(missing), "Nothing was sent", "Nothing was scheduled", 1))
			return
		}
		payload.Template, payload.Values = t.Name, given
		what = "template " + t.Name
	} else {
		text, plain := strings.CutPrefix(rest, plainMarker)
		payload.Text, payload.Plain = strings.TrimSpace(text), plain
		what = "a text"
	}
	send := &schedule.Send{LoginID: p.LoginID, PatientID: p.ID, Due: due, Payload: payload, CreatedBy: ce.User.MXID.String()}
	if err = c.wf.schedule.Add(ce.Ctx, send); err != nil {
		ce.Reply("Could not schedule the send: %v", err)
		return
	}
	c.wf.scheduler.Wake()
	c.audit(ce.Ctx, audit.Entry{Actor: ce.User.MXID.String(), Action: "scheduled.created", PatientID: p.ID,
		Detail: fmt.Sprintf("scheduled %s, %s, due %s", send.ID, what, due.UTC().Format(time.RFC3339))})
	ce.Reply("⏰ Scheduled %s: %s goes %s (%s). It is checked against opt-out and consent when it goes. `unschedule %s` cancels it.",
		send.ID, what, whenInWords(due, loc), untilInWords(time.Until(due)), send.ID)
}

// untilInWords is a duration ahead, roughly: "in 2h 5m".
func untilInWords(d time.Duration) string {
	d = d.Round(time.Minute)
	if d < time.Minute {
		return "in less than a minute"
	}
	if d >= 48*time.Hour {
		return fmt.Sprintf("in %d days", int(d.Hours()/24))
	}
	return "in " + strings.TrimSuffix(d.String(), "0s")
}

func (c *Connector) cmdScheduled(ce *commands.Event) {
	p := c.commandPatient(ce)
	if p == nil {
		return
	}
	pending, err := c.wf.schedule.PendingFor(ce.Ctx, p.ID)
	if err != nil {
		ce.Reply("Could not read the scheduled sends: %v", err)
		return
	}
	if len(pending) == 0 {
		ce.Reply("No scheduled sends for this patient.")
		return
	}
	lines := make([]string, 0, len(pending))
	for _, s := range pending {
		lines = append(lines, fmt.Sprintf("%s — %s — %s — by %s", s.ID, whenInWords(s.Due, c.Config.Location()), payloadInWords(s.Payload), s.CreatedBy))
	}
	ce.Reply(strings.Join(lines, "\n"))
}

// payloadInWords shows staff what a scheduled send holds (the room is encrypted).
func payloadInWords(p schedule.Payload) string {
	if p.Template != "" {
		var kv []string
		for k, v := range p.Values {
			kv = append(kv, k+"="+strconv.Quote(v))
		}
		return strings.TrimSpace("template " + p.Template + " " + strings.Join(kv, " "))
	}
	return strconv.Quote(truncate(p.Text, 60))
}

func (c *Connector) cmdUnschedule(ce *commands.Event) {
	if len(ce.Args) != 1 {
		ce.Reply("Say which send to cancel: `unschedule ID` (`scheduled` lists them).")
		return
	}
	p := c.commandPatient(ce)
	if p == nil {
		return
	}
	id := strings.ToLower(ce.Args[0])
	ok, err := c.wf.schedule.Cancel(ce.Ctx, id, p.ID, "cancelled by "+ce.User.MXID.String())
	if err != nil {
		ce.Reply("Could not cancel: %v", err)
		return
	} else if !ok {
		ce.Reply("There is no pending scheduled send %s for this patient (it may have gone already). `scheduled` lists them.", id)
		return
	}
	c.audit(ce.Ctx, audit.Entry{Actor: ce.User.MXID.String(), Action: "scheduled.cancelled", PatientID: p.ID, Detail: "scheduled " + id})
	ce.Reply("Cancelled %s; it will not be sent.", id)
}

// deliverScheduled hands a due send to the outbox, inside the transaction that finishes it.
// The patient's opt-out and consent are read now, not when it was scheduled.
func (c *Connector) deliverScheduled(ctx context.Context, send *schedule.Send) (schedule.Outcome, error) {
	cl := c.clientForLogin(ctx, networkid.UserLoginID(send.LoginID))
	if cl == nil {
		return schedule.Outcome{}, errors.New("the clinic login is not connected yet")
	}
	p, err := c.Store.GetPatient(ctx, send.PatientID)
	if err != nil {
		return schedule.Outcome{}, err
	} else if p == nil {
		return schedule.Outcome{State: schedule.Failed, Detail: "the patient's record is gone"}, nil
	}
	if !p.OptedOutAt.IsZero() {
		return schedule.Outcome{State: schedule.Refused, Detail: "the patient has opted out of texts (STOP)"}, nil
	}
	body, markPlain := send.Payload.Text, send.Payload.Plain
	if send.Payload.Template != "" {
		t := c.Config.TemplateSet().Get(send.Payload.Template)
		if t == nil {
			return schedule.Outcome{State: schedule.Failed, Detail: "template " + send.Payload.Template + " is no longer in the config"}, nil
		}
		values, err := c.templateValues(ctx, p.ID, send.Payload.Values)
		if err != nil {
			return schedule.Outcome{}, err
		}
		var missing *template.MissingError
		if body, err = t.Render(values); errors.As(err, &missing) {
			return schedule.Outcome{State: schedule.Failed, Detail: "template " + t.Name + " needs " + strings.Join(missing.Keys, ", ")}, nil
		} else if err != nil {
			return schedule.Outcome{}, err
		}
		markPlain = !t.Sensitive
	}
	portal, err := c.Bridge.GetExistingPortalByKey(ctx, portalKey(cl.login.ID, p.ID))
	if err != nil {
		return schedule.Outcome{}, err
	}
	wt := workflowText{Body: body, MarkPlain: markPlain, SenderName: send.Payload.From}
	if portal != nil {
		wt.RoomID = portal.MXID
	}
	m, mode, err := cl.queueToPatient(ctx, p, wt)
	if err != nil {
		return schedule.Outcome{}, err
	}
	return schedule.Outcome{State: schedule.Sent, Detail: fmt.Sprintf("message %s, %s", m.ID, modeInWords(mode, body))}, nil
}

// afterScheduled wakes the outbox and tells the room what happened to the send.
func (c *Connector) afterScheduled(ctx context.Context, send *schedule.Send, outcome schedule.Outcome) {
	cl := c.clientForLogin(ctx, networkid.UserLoginID(send.LoginID))
	if cl != nil {
		cl.wakeSender()
	}
	action := map[string]string{schedule.Sent: "scheduled.sent", schedule.Refused: "scheduled.refused", schedule.Failed: "scheduled.failed"}[outcome.State]
	c.audit(ctx, audit.Entry{Actor: "system", Action: action, PatientID: send.PatientID, Detail: "scheduled " + send.ID + ": " + outcome.Detail})
	if cl == nil {
		return
	}
	portal, err := c.Bridge.GetExistingPortalByKey(ctx, portalKey(cl.login.ID, send.PatientID))
	if err != nil || portal == nil || portal.MXID == "" {
		zerolog.Ctx(ctx).Warn().Err(err).Str("scheduled_id", send.ID).Msg("No room to show a scheduled send in")
		return
	}
	text := fmt.Sprintf("⏰ Scheduled send %s (by %s) went: %s — %s.", send.ID, send.CreatedBy, payloadInWords(send.Payload), outcome.Detail)
	if outcome.State != schedule.Sent {
		text = fmt.Sprintf("⚠️ Scheduled send %s (by %s) was not sent: %s.", send.ID, send.CreatedBy, outcome.Detail)
	}
	if outcome.State == schedule.Sent && send.Purpose == schedule.PurposeStaff {
		c.replied(ctx, send.PatientID, portal.MXID.String(), send.CreatedBy)
	}
	c.sendNotice(ctx, portal, text, "")
}

// remindScheduled tells staff, once per pending send, that the patient wrote before it went.
func (c *Connector) remindScheduled(ctx context.Context, portal *bridgev2.Portal, patientID string) {
	fresh, err := c.wf.schedule.MarkReminded(ctx, patientID)
	if err != nil || len(fresh) == 0 || portal.MXID == "" {
		return
	}
	var ids []string
	for _, s := range fresh {
		ids = append(ids, fmt.Sprintf("%s (%s)", s.ID, whenInWords(s.Due, c.Config.Location())))
	}
	c.sendNotice(ctx, portal, fmt.Sprintf("⏰ The patient wrote while a scheduled send is pending: %s. It still goes unless you `unschedule` it.",
		strings.Join(ids, ", ")), "")
}
