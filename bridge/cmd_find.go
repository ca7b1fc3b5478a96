package bridge

import (
	"fmt"
	"strings"

	"maunium.net/go/mautrix/bridgev2/commands"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/phone"
)

// maxFound bounds the patients `find` lists.
const maxFound = 20

// cmdFind lists patients whose recorded name or last four digits match, with links to their
// rooms. Only the clinic's own staff may search.
func (c *Connector) cmdFind(ce *commands.Event) {
	if !ce.User.Permissions.Login {
		ce.Reply("Only the clinic's own staff can search for patients.")
		return
	}
	query := strings.TrimSpace(ce.RawArgs)
	if query == "" {
		ce.Reply("Write part of a name or the last four digits of the number: `find lopez`, `find 4567`.")
		return
	}
	cl := c.commandClient(ce)
	if cl == nil {
		ce.Reply("No clinic number is connected (or several are, and you have none of your own).")
		return
	}
	loginID := string(cl.login.ID)
	var ids []string
	by := "name"
	if isLast4(query) {
		by = "digits"
		found, err := c.Store.PatientIDsByLast4(ce.Ctx, loginID, query)
		if err != nil {
			ce.Reply("Could not search: %v", err)
			return
		}
		ids = found
	} else {
		found, err := c.wf.names.Search(ce.Ctx, loginID, query, maxFound+1)
		if err != nil {
			ce.Reply("Could not search: %v", err)
			return
		}
		for _, n := range found {
			ids = append(ids, n.PatientID)
		}
	}
	c.audit(ce.Ctx, audit.Entry{Actor: ce.User.MXID.String(), Action: "patients.searched", Detail: fmt.Sprintf("by %s, %d found", by, len(ids))})
	if len(ids) == 0 {
		ce.Reply("No patient found. Names are found only once recorded with `name` in the patient's room.")
		return
	}
	var lines []string
	for i, pid := range ids {
		if i == maxFound {
			lines = append(lines, "… and more: narrow the search.")
			break
		}
		lines = append(lines, c.foundLine(ce, cl, pid))
	}
	ce.Reply(strings.Join(lines, "\n"))
}

// foundLine is one patient: name if recorded, masked number, link to the room.
func (c *Connector) foundLine(ce *commands.Event, cl *Client, patientID string) string {
	label := c.patientName(ce.Ctx, patientID)
	if p, err := c.Store.GetPatient(ce.Ctx, patientID); err == nil && p != nil {
		label = phone.Mask(p.Phone)
	}
	if n, err := c.wf.names.Get(ce.Ctx, patientID); err == nil && n != nil {
		label = n.Full() + " (" + label + ")"
	}
	portal, err := c.Bridge.GetExistingPortalByKey(ce.Ctx, portalKey(cl.login.ID, patientID))
	if err != nil || portal == nil || portal.MXID == "" {
		return label + ": no room yet (`start-chat` opens one)"
	}
	return label + ": https://matrix.to/#/" + portal.MXID.String()
}

func isLast4(s string) bool {
	if len(s) != 4 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
