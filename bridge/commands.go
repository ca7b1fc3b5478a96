package bridge

import (
	"context"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix/bridgev2/commands"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/store"
)

// HelpSectionPatient groups careline's commands for a patient room.
var HelpSectionPatient = commands.HelpSection{Name: "Patient", Order: 25}

// registerCommands adds careline's commands in Init: bridgev2 hands on Matrix events before it
// starts the network connector, and a command sent while careline starts should wait, not be
// "Unknown command".
func (c *Connector) registerCommands() {
	proc, ok := c.Bridge.Commands.(*commands.Processor)
	if !ok {
		return
	}
	proc.AddHandlers(c.commandHandlers()...)
}

// commandHandlers are careline's commands, each waiting for careline's tables before it runs.
func (c *Connector) commandHandlers() []commands.CommandHandler {
	handlers := []commands.CommandHandler{
		c.endAccessCommand(),
		&commands.FullHandler{
			Func: c.cmdConsent, Name: "consent", RequiresPortal: true,
			Help: commands.HelpMeta{Section: HelpSectionPatient, Args: "<how it was obtained>",
				Description: "Record the patient's consent to receive message content as plain SMS"},
		},
		&commands.FullHandler{
			Func: c.cmdRevokeConsent, Name: "revoke-consent", RequiresPortal: true,
			Help: commands.HelpMeta{Section: HelpSectionPatient, Description: "Revoke the patient's consent to plain SMS"},
		},
		&commands.FullHandler{
			Func: c.cmdUnlock, Name: "unlock", RequiresPortal: true,
			Help: commands.HelpMeta{Section: HelpSectionPatient,
				Description: "Unlock the patient's portal after too many wrong codes (confirm who they are first)"},
		},
		&commands.FullHandler{
			Func: c.cmdDOB, Name: "dob", RequiresPortal: true,
			Help: commands.HelpMeta{Section: HelpSectionPatient, Args: "<YYYY-MM-DD>",
				Description: "Record the patient's date of birth, asked as a second factor in the portal"},
		},
		&commands.FullHandler{
			Func: c.cmdAuditExport, Name: "audit-export", RequiresAdmin: true, Help: cmdAuditExportHelp,
		},
		// Replaces bridgev2's start-chat to say why someone may not open a patient's room.
		&commands.FullHandler{
			Func: cmdStartChat, Name: commands.CommandStartChat.Name, Aliases: commands.CommandStartChat.Aliases,
			Help: commands.CommandStartChat.Help, NetworkAPI: commands.CommandStartChat.NetworkAPI,
		},
		&commands.FullHandler{
			Func: c.cmdPatientStatus, Name: "patient-status", RequiresPortal: true,
			Help: commands.HelpMeta{Section: HelpSectionPatient, Description: "Show opt-out, consent and portal lock-out"},
		},
		c.invitePartnerHandler(),
	}
	handlers = append(handlers, c.workflowCommands()...)
	handlers = append(handlers, c.teamInboxCommands()...)
	for _, h := range handlers {
		full := h.(*commands.FullHandler)
		full.Func = c.afterStart(full.Func)
	}
	return handlers
}

// afterStart runs a command once Start has prepared careline's tables, or tells staff careline
// is still starting.
func (c *Connector) afterStart(run func(*commands.Event)) func(*commands.Event) {
	return func(ce *commands.Event) {
		if err := c.waitTablesReady(ce.Ctx); err != nil {
			ce.Reply("%s", err.Error())
			return
		}
		run(ce)
	}
}

// staffOnly refuses a change to a patient's record from someone who may write in the room but
// is not the clinic's own staff (bridgev2 level below "user", e.g. a partner clinic's domain).
func staffOnly(ce *commands.Event) bool {
	if ce.User.Permissions.Login {
		return true
	}
	ce.Reply("Only the clinic's own staff can change a patient's record. You can still write to the patient here; ask a colleague at the clinic to run `%s`.", ce.Command)
	return false
}

// cmdStartChat refuses in careline's words before handing over to bridgev2's start-chat,
// whose own refusal ("requires you to be logged in") does not say what to do.
func cmdStartChat(ce *commands.Event) {
	switch {
	case !ce.User.Permissions.Login:
		ce.Reply("Only the clinic's own staff can open a patient's room. Ask a colleague at the clinic to open it and invite you.")
	case ce.User.GetDefaultLogin() == nil:
		ce.Reply("Patient rooms are opened with the clinic's Twilio number, by the administrator who connected it (`login`). Ask them to run `start-chat`; the care team is invited to every new patient room.")
	default:
		commands.CommandStartChat.Run(ce)
	}
}

func (c *Connector) commandPatient(ce *commands.Event) *store.Patient {
	p, err := c.Store.GetPatient(ce.Ctx, string(ce.Portal.ID))
	if err != nil {
		ce.Reply("Could not read the patient's record: %v", err)
		return nil
	} else if p == nil {
		ce.Reply("This room has no patient on file.")
		return nil
	}
	return p
}

func (c *Connector) cmdConsent(ce *commands.Event) {
	if !staffOnly(ce) {
		return
	}
	how := strings.TrimSpace(ce.RawArgs)
	if how == "" {
		ce.Reply("Say how the consent was obtained, e.g. `consent verbal, at check-in on the phone`.")
		return
	}
	p := c.commandPatient(ce)
	if p == nil {
		return
	}
	consent, err := c.recordConsent(ce.Ctx, p.ID, ce.User.MXID.String(), how)
	if err != nil {
		ce.Reply("Could not record consent: %v", err)
		return
	}
	ce.Reply("Consent to plain SMS recorded by %s at %s (%s).", consent.By, consent.At.Format(time.RFC3339), how)
}

// recordConsent records consent to plain SMS and audits it, in one transaction. The "how" is
// free text staff type names into: it is sealed in the patient's record and never copied
// into the audit trail, which says only that consent was recorded and by whom.
func (c *Connector) recordConsent(ctx context.Context, patientID, by, how string) (*store.Consent, error) {
	consent := &store.Consent{At: time.Now(), By: by, How: how}
	err := c.Store.DB.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := c.Store.SetConsent(ctx, patientID, consent); err != nil {
			return err
		}
		return c.auditIn(ctx, audit.Entry{Actor: by, Action: "consent.recorded", PatientID: patientID,
			Detail: "plain SMS consent; how it was obtained is kept sealed in the patient record"})
	})
	return consent, err
}

func (c *Connector) cmdRevokeConsent(ce *commands.Event) {
	if !staffOnly(ce) {
		return
	}
	p := c.commandPatient(ce)
	if p == nil {
		return
	}
	if err := c.Store.SetConsent(ce.Ctx, p.ID, nil); err != nil {
		ce.Reply("Could not revoke consent: %v", err)
		return
	}
	c.audit(ce.Ctx, audit.Entry{Actor: ce.User.MXID.String(), Action: "consent.revoked", PatientID: p.ID})
	ce.Reply("Consent to plain SMS revoked by %s. Messages go by secure link.", ce.User.MXID)
}

func (c *Connector) cmdUnlock(ce *commands.Event) {
	if !staffOnly(ce) {
		return
	}
	p := c.commandPatient(ce)
	if p == nil {
		return
	}
	if err := c.Web.Unlock(ce.Ctx, p.ID); err != nil {
		ce.Reply("Could not unlock the portal: %v", err)
		return
	}
	c.audit(ce.Ctx, audit.Entry{Actor: ce.User.MXID.String(), Action: "portal.unlocked", PatientID: p.ID})
	ce.Reply("Portal unlocked by %s. The patient can ask for a new code.", ce.User.MXID)
}

func (c *Connector) cmdDOB(ce *commands.Event) {
	if !staffOnly(ce) {
		return
	}
	dob, err := time.Parse(time.DateOnly, strings.TrimSpace(ce.RawArgs))
	if err != nil {
		ce.Reply("Write the date of birth as YYYY-MM-DD, e.g. `dob 1980-04-23`.")
		return
	}
	p := c.commandPatient(ce)
	if p == nil {
		return
	}
	if err = c.Store.SetDOB(ce.Ctx, p.ID, dob); err != nil {
		ce.Reply("Could not record the date of birth: %v", err)
		return
	}
	c.audit(ce.Ctx, audit.Entry{Actor: ce.User.MXID.String(), Action: "dob.recorded", PatientID: p.ID})
	ce.Reply("Date of birth recorded.")
}

func (c *Connector) cmdPatientStatus(ce *commands.Event) {
	p := c.commandPatient(ce)
	if p == nil {
		return
	}
	var lines []string
	if p.OptedOutAt.IsZero() {
		lines = append(lines, "Texts: allowed.")
	} else {
		lines = append(lines, fmt.Sprintf("Texts: the patient opted out (STOP) on %s.", p.OptedOutAt.Format(time.DateOnly)))
	}
	if p.Consent == nil {
		lines = append(lines, "Plain SMS consent: none, messages go by secure link.")
	} else {
		lines = append(lines, fmt.Sprintf("Plain SMS consent: recorded by %s on %s (%s).", p.Consent.By, p.Consent.At.Format(time.DateOnly), p.Consent.How))
	}
	if locked, err := c.Web.Locked(ce.Ctx, p.ID); err == nil && locked {
		lines = append(lines, "Portal: locked after too many wrong codes; `unlock` after confirming who they are.")
	} else {
		lines = append(lines, "Portal: not locked.")
	}
	ce.Reply(strings.Join(lines, "\n"))
}

// truncate shortens s to at most n runes.
func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}
