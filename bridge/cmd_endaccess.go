package bridge

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/commands"

	"github.com/careline/careline/audit"
)

func (c *Connector) endAccessCommand() *commands.FullHandler {
	return &commands.FullHandler{
		Func: c.cmdEndAccess, Name: "end-access", RequiresPortal: true,
		Help: commands.HelpMeta{Section: HelpSectionPatient,
			Description: "End the patient's portal links, codes and sessions (lost phone, recycled number)"},
	}
}

// cmdEndAccess ends every way into the patient's portal: open links, a pending code, browsers
// that opened a link, and signed-in sessions. New secure messages make new links.
func (c *Connector) cmdEndAccess(ce *commands.Event) {
	if !staffOnly(ce) {
		return
	}
	p := c.commandPatient(ce)
	if p == nil {
		return
	}
	n, err := c.endPortalAccess(ce.Ctx, p.ID, ce.User.MXID.String(), "end-access")
	if err != nil {
		ce.Reply("Could not end the patient's portal access: %v", err)
		return
	}
	ce.Reply("Portal access ended by %s: %d links, codes and sessions no longer work. The next secure message sends a new link to the number on file.", ce.User.MXID, n)
}

// endPortalAccess ends the patient's links, codes and sessions and audits it with why.
func (c *Connector) endPortalAccess(ctx context.Context, patientID, actor, why string) (int64, error) {
	if c.Web == nil {
		return 0, nil // a connector without the portal (the inbound path's unit tests) has no access to end
	}
	n, err := c.Web.EndAccess(ctx, patientID)
	if err != nil {
		return 0, err
	}
	zerolog.Ctx(ctx).Info().Str("patient_id", patientID).Int64("rows", n).Str("why", why).Msg("Ended the patient's portal access")
	c.audit(ctx, audit.Entry{Actor: actor, Action: "portal.access_ended", PatientID: patientID, Detail: fmt.Sprintf("why=%s rows=%d", why, n)})
	return n, nil
}
