package bridge

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/names"
	"github.com/careline/careline/template"
)

func (c *Connector) cmdName(ce *commands.Event) {
	if !staffOnly(ce) {
		return
	}
	if len(ce.Args) == 0 || len(ce.Args) > 2 {
		ce.Reply("Write the first name and, if you like, the last name: `name Ana López`. Use `_` for spaces inside one (`name Ana_María López`).")
		return
	}
	p := c.commandPatient(ce)
	if p == nil {
		return
	}
	n := &names.Name{PatientID: p.ID, LoginID: p.LoginID, First: strings.ReplaceAll(ce.Args[0], "_", " "),
		Source: names.SourceStaff, RecordedBy: ce.User.MXID.String(), RecordedAt: time.Now()}
	if len(ce.Args) == 2 {
		n.Last = strings.ReplaceAll(ce.Args[1], "_", " ")
	}
	if _, err := c.wf.names.Set(ce.Ctx, n); err != nil {
		ce.Reply("Could not record the name: %v", err)
		return
	}
	c.audit(ce.Ctx, audit.Entry{Actor: ce.User.MXID.String(), Action: "name.recorded", PatientID: p.ID})
	if cl := c.clientForLogin(ce.Ctx, networkid.UserLoginID(p.LoginID)); cl != nil {
		c.showRecordedName(ce.Ctx, ce.Portal, cl.login)
	}
	ce.Reply("Name recorded: %s. Templates fill {first_name} and {last_name} with it, and `find` finds it.", n.Full())
}

// cmdTemplate renders a template for the patient and sends it; a missing value is named and
// nothing is sent.
func (c *Connector) cmdTemplate(ce *commands.Event) {
	if len(ce.Args) == 0 {
		ce.Reply("Say which template: `template NAME key=value …`. `templates` lists them.")
		return
	}
	t := c.Config.TemplateSet().Get(ce.Args[0])
	if t == nil {
		ce.Reply("There is no template %q. `templates` lists them.", ce.Args[0])
		return
	}
	given, err := template.ParseArgs(strings.TrimSpace(strings.TrimPrefix(ce.RawArgs, ce.Args[0])))
	if err != nil {
		ce.Reply("Nothing was sent: %v.", err)
		return
	}
	p := c.commandPatient(ce)
	if p == nil {
		return
	}
	if !p.OptedOutAt.IsZero() {
		ce.Reply("Nothing was sent: the patient replied STOP and has opted out of texts. Call the patient, or ask them to text START.")
		return
	}
	cl := c.clientForLogin(ce.Ctx, networkid.UserLoginID(p.LoginID))
	if cl == nil {
		ce.Reply("Nothing was sent: the clinic's number is not connected.")
		return
	}
	values, err := c.templateValues(ce.Ctx, p.ID, given)
	if err != nil {
		ce.Reply("Could not read the patient's name: %v", err)
		return
	}
	body, err := t.Render(values)
	var missing *template.MissingError
	if errors.As(err, &missing) {
		ce.Reply(missingInWords(missing))
		return
	} else if err != nil {
		ce.Reply("Nothing was sent: %v", err)
		return
	}
	mode := c.deliveryMode(p, !t.Sensitive, false)
	// The room's copy comes first, so the outbox's delivery statuses attach to it.
	eventID := ce.Reply("📝 Template %s, %s:\n\n%s", t.Name, modeInWords(mode, body), body)
	m, mode, err := cl.queueToPatient(ce.Ctx, p, workflowText{
		Body: body, MarkPlain: !t.Sensitive, SenderName: c.commandSenderName(ce), RoomID: ce.RoomID, EventID: eventID, MXSender: ce.User.MXID,
	})
	if err != nil {
		ce.Reply("⚠️ Not sent: %v", err)
		return
	}
	cl.wakeSender()
	c.replied(ce.Ctx, p.ID, ce.Portal.MXID.String(), ce.User.MXID.String())
	c.audit(ce.Ctx, audit.Entry{Actor: ce.User.MXID.String(), Action: "template.sent", PatientID: p.ID, Channel: string(m.Channel),
		Detail: fmt.Sprintf("template %s, message %s, %s", t.Name, m.ID, mode)})
}

// commandSenderName is how the patient sees who sent a command's text.
func (c *Connector) commandSenderName(ce *commands.Event) string {
	name := ""
	if ce.Portal != nil && ce.Portal.MXID != "" {
		if member, err := c.Bridge.Matrix.GetMemberInfo(ce.Ctx, ce.Portal.MXID, ce.User.MXID); err == nil && member != nil {
			name = member.Displayname
		}
	}
	if name == "" {
		name = ce.User.MXID.Localpart()
	}
	return name + ", " + c.Config.ClinicName
}

// cmdTemplates lists the templates with their placeholders and, for plain ones, what a send
// costs in SMS segments.
func (c *Connector) cmdTemplates(ce *commands.Event) {
	set := c.Config.TemplateSet()
	list := set.Names()
	if len(list) == 0 {
		ce.Reply("No templates are configured. An admin adds them under `network.templates` in the config; the example config has the ones clinics use most.")
		return
	}
	var b strings.Builder
	b.WriteString("Templates (send with `template NAME key=value …` in a patient's room):\n")
	for _, name := range list {
		t := set.Get(name)
		fmt.Fprintf(&b, "\n• %s", name)
		var asked []string
		for _, key := range t.Placeholders() {
			if key != "clinic" {
				asked = append(asked, "{"+key+"}")
			}
		}
		if len(asked) > 0 {
			fmt.Fprintf(&b, " — %s", strings.Join(asked, " "))
		}
		if t.Sensitive {
			b.WriteString(" — by secure link")
		} else {
			cost := t.Preview(map[string]string{"clinic": c.Config.ClinicName})
			fmt.Fprintf(&b, " — plain SMS: %s", cost)
			if len(asked) > 0 {
				fmt.Fprintf(&b, " with %d-character values", template.PreviewValueLength)
			}
		}
		fmt.Fprintf(&b, "\n  %s", t.Body)
	}
	ce.Reply(b.String())
}
