package bridge

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/broadcast"
	"github.com/careline/careline/phone"
	"github.com/careline/careline/template"
)

// commandClient is the clinic login a bot-room command acts for: the user's own, or the
// clinic's only connected number (staff write through the admin's login by relay).
func (c *Connector) commandClient(ce *commands.Event) *Client {
	if login := ce.User.GetDefaultLogin(); login != nil {
		if cl, ok := login.Client.(*Client); ok {
			return cl
		}
	}
	if logins := c.Bridge.GetAllCachedUserLogins(); len(logins) == 1 {
		cl, _ := logins[0].Client.(*Client)
		return cl
	}
	return nil
}

// cmdBroadcast: broadcast TEMPLATE TARGETS [key=value …], TARGETS comma-separated numbers or all.
func (c *Connector) cmdBroadcast(ce *commands.Event) {
	if !staffOnly(ce) {
		return
	}
	if len(ce.Args) < 2 {
		ce.Reply("Write the template and the numbers: `broadcast office_closure +14155550101,+14155550102 date=\"Fri, Dec 25\"`, or `all` for every patient.")
		return
	}
	t := c.Config.TemplateSet().Get(ce.Args[0])
	if t == nil {
		ce.Reply("There is no template %q. `templates` lists them.", ce.Args[0])
		return
	}
	cl := c.commandClient(ce)
	if cl == nil {
		ce.Reply("No clinic number is connected (or several are, and you have none of your own): ask the admin who ran `login` to broadcast.")
		return
	}
	// Numbers may be written with spaces ("+1 415 555 0101, +1 …"): everything up to the
	// first key=value is the target list.
	var targetWords, valueWords []string
	for i, w := range ce.Args[1:] {
		if strings.Contains(w, "=") {
			valueWords = ce.Args[1+i:]
			break
		}
		targetWords = append(targetWords, w)
	}
	rest := strings.TrimSpace(strings.TrimPrefix(ce.RawArgs, ce.Args[0]))
	if len(valueWords) > 0 {
		rest = rest[strings.Index(rest, valueWords[0]):]
	} else {
		rest = ""
	}
	given, err := template.ParseArgs(rest)
	if err != nil {
		ce.Reply("Nothing was sent: %v.", err)
		return
	}
	// Values every patient needs must be given now; first_name and last_name are checked per patient.
	probe := map[string]string{"first_name": "x", "last_name": "x"}
	for k, v := range given {
		probe[k] = v
	}
	probe["clinic"] = c.Config.ClinicName
	var missing *template.MissingError
	if _, err = t.Render(probe); errors.As(err, &missing) {
		ce.Reply(strings.Replace(missingInWords(missing), "Nothing was sent", "Nothing was sent to anyone", 1))
		return
	}
	var numbers []string
	if strings.Join(targetWords, "") == "all" {
		ids, err := c.Store.PatientIDs(ce.Ctx, string(cl.login.ID))
		if err != nil {
			ce.Reply("Could not list the patients: %v", err)
			return
		}
		for _, pid := range ids {
			if p, err := c.Store.GetPatient(ce.Ctx, pid); err == nil && p != nil {
				numbers = append(numbers, p.Phone)
			}
		}
	} else {
		for _, n := range strings.Split(strings.Join(targetWords, " "), ",") {
			if n = strings.TrimSpace(n); n != "" {
				numbers = append(numbers, n)
			}
		}
	}
	if len(numbers) == 0 {
		ce.Reply("No one to send to.")
		return
	}
	b := &broadcast.Broadcast{LoginID: string(cl.login.ID), Template: t.Name, Values: given, CreatedBy: ce.User.MXID.String(),
		Origin: "command", ReportRoom: ce.RoomID.String()}
	if err = c.wf.broadcasts.Create(ce.Ctx, b, numbers); err != nil {
		ce.Reply("Could not start the broadcast: %v", err)
		return
	}
	c.audit(ce.Ctx, audit.Entry{Actor: ce.User.MXID.String(), Action: "broadcast.started",
		Detail: fmt.Sprintf("broadcast %s, template %s, %d targets", b.ID, t.Name, len(numbers))})
	how := "by secure link (unless a patient's consent and the default mode allow plain SMS)"
	if !t.Sensitive {
		how = "as plain SMS (" + t.Preview(probe).String() + " each)"
	}
	ce.Reply("📣 Broadcast %s started: template %s to %d numbers, %s, at most %g per second. Progress follows here; each patient's room shows their text.",
		b.ID, t.Name, len(numbers), how, c.Config.Twilio.MessagesPerSecond)
	c.wf.broadcaster.Start(c.wf.runCtx(), b)
}

// prepareBroadcastTarget settles what it can without sending: a bad number, an opted-out
// patient; otherwise it records the patient and opens their room (slow, idempotent).
func (c *Connector) prepareBroadcastTarget(ctx context.Context, b *broadcast.Broadcast, t *broadcast.Target) error {
	cl := c.clientForLogin(ctx, networkid.UserLoginID(b.LoginID))
	if cl == nil {
		return errors.New("the clinic login is not connected")
	}
	number, err := phone.Normalize(t.Number, c.Config.DefaultRegion)
	if err != nil {
		t.State, t.Detail = broadcast.InvalidNumber, "not a phone number a text can go to"
		return nil
	}
	t.PatientID = c.patientID(cl.login.ID, number)
	if _, err = c.Store.GetOrCreatePatient(ctx, t.PatientID, b.LoginID, number); err != nil {
		return err
	}
	p, err := c.Store.GetPatient(ctx, t.PatientID)
	if err != nil {
		return err
	}
	if !p.OptedOutAt.IsZero() {
		t.State, t.Detail = broadcast.OptedOut, "the patient opted out (STOP)"
		return nil
	}
	portal, err := c.Bridge.GetPortalByKey(ctx, portalKey(cl.login.ID, t.PatientID))
	if err != nil {
		return err
	}
	return cl.ensureRoom(ctx, portal)
}

// deliverBroadcastTarget renders the template for one patient and queues it, inside the
// transaction that records the target as sent.
func (c *Connector) deliverBroadcastTarget(ctx context.Context, b *broadcast.Broadcast, t *broadcast.Target) error {
	cl := c.clientForLogin(ctx, networkid.UserLoginID(b.LoginID))
	if cl == nil {
		return errors.New("the clinic login is not connected")
	}
	if dup, err := c.wf.broadcasts.SentTo(ctx, b.ID, t.PatientID); err != nil || dup {
		t.State, t.Detail = broadcast.Duplicate, "listed twice"
		return err
	}
	p, err := c.Store.GetPatient(ctx, t.PatientID)
	if err != nil {
		return err
	}
	if !p.OptedOutAt.IsZero() {
		t.State, t.Detail = broadcast.OptedOut, "the patient opted out (STOP)"
		return nil
	}
	tpl := c.Config.TemplateSet().Get(b.Template)
	if tpl == nil {
		t.State, t.Detail = broadcast.Failed, "template "+b.Template+" is no longer in the config"
		return nil
	}
	values, err := c.templateValues(ctx, p.ID, b.Values)
	if err != nil {
		return err
	}
	body, err := tpl.Render(values)
	var missing *template.MissingError
	if errors.As(err, &missing) {
		t.State, t.Detail = broadcast.MissingValue, "needs "+strings.Join(missing.Keys, ", ")
		return nil
	} else if err != nil {
		return err
	}
	portal, err := c.Bridge.GetExistingPortalByKey(ctx, portalKey(cl.login.ID, p.ID))
	if err != nil {
		return err
	}
	wt := workflowText{Body: body, MarkPlain: !tpl.Sensitive, SenderName: c.Config.ClinicName}
	if portal != nil {
		wt.RoomID = portal.MXID
	}
	m, mode, err := cl.queueToPatient(ctx, p, wt)
	if err != nil {
		return err
	}
	t.State, t.MessageID, t.Detail = broadcast.Sent, m.ID, modeInWords(mode, body)
	return nil
}

// afterBroadcastTarget wakes the outbox, audits the send and shows it in the patient's room.
func (c *Connector) afterBroadcastTarget(ctx context.Context, b *broadcast.Broadcast, t *broadcast.Target) {
	if t.State != broadcast.Sent {
		return
	}
	cl := c.clientForLogin(ctx, networkid.UserLoginID(b.LoginID))
	if cl == nil {
		return
	}
	cl.wakeSender()
	c.audit(ctx, audit.Entry{Actor: b.CreatedBy, Action: "broadcast.sent", PatientID: t.PatientID,
		Detail: fmt.Sprintf("broadcast %s, template %s, message %s", b.ID, b.Template, t.MessageID)})
	portal, err := c.Bridge.GetExistingPortalByKey(ctx, portalKey(cl.login.ID, t.PatientID))
	if err != nil || portal == nil || portal.MXID == "" {
		return
	}
	m, err := c.Store.GetMessage(ctx, t.MessageID)
	if err != nil || m == nil {
		return
	}
	c.sendNotice(ctx, portal, fmt.Sprintf("📣 Broadcast %s (template %s, by %s), %s:\n\n%s", b.ID, b.Template, b.CreatedBy, t.Detail, m.Body), "")
}

// reportBroadcast posts progress, and the final report, where the broadcast was started.
func (c *Connector) reportBroadcast(ctx context.Context, b *broadcast.Broadcast, counts broadcast.Counts) {
	if counts.Done {
		c.audit(ctx, audit.Entry{Actor: b.CreatedBy, Action: "broadcast.finished",
			Detail: fmt.Sprintf("broadcast %s, template %s, %d sent, %d skipped, %d failed", b.ID, b.Template, counts.Sent, counts.Total-counts.Sent-counts.Failed, counts.Failed)})
	}
	if b.ReportRoom == "" {
		return
	}
	text := fmt.Sprintf("📣 Broadcast %s: %d of %d done — %s.", b.ID, counts.Total-counts.Pending, counts.Total, countsInWords(counts))
	if counts.Done {
		text = fmt.Sprintf("📣 Broadcast %s (template %s) finished: %s. Delivery problems after this show in each patient's room.",
			b.ID, b.Template, countsInWords(counts))
	}
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: text}
	if _, err := c.Bridge.Bot.SendMessage(ctx, id.RoomID(b.ReportRoom), event.EventMessage, &event.Content{Parsed: content}, nil); err != nil {
		zerolog.Ctx(ctx).Err(err).Str("broadcast_id", b.ID).Msg("Could not post the broadcast's progress")
	}
}

var skipWords = map[string][2]string{
	broadcast.OptedOut:      {"opted out", "opted out"},
	broadcast.InvalidNumber: {"invalid number", "invalid numbers"},
	broadcast.Duplicate:     {"listed twice", "listed twice"},
	broadcast.MissingValue:  {"missing a value (no name recorded)", "missing a value (no name recorded)"},
}

// countsInWords: "3 sent; skipped 2 (1 opted out, 1 invalid number); 0 failed".
func countsInWords(c broadcast.Counts) string {
	skipped, total := []string{}, 0
	keys := make([]string, 0, len(c.Skipped))
	for k := range c.Skipped {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		n := c.Skipped[k]
		words, ok := skipWords[k]
		if !ok {
			words = [2]string{k, k}
		}
		w := words[1]
		if n == 1 {
			w = words[0]
		}
		skipped = append(skipped, fmt.Sprintf("%d %s", n, w))
		total += n
	}
	s := fmt.Sprintf("%d sent; skipped %d", c.Sent, total)
	if total > 0 {
		s += " (" + strings.Join(skipped, ", ") + ")"
	}
	return s + fmt.Sprintf("; %d failed", c.Failed)
}
