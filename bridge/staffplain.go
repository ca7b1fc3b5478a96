package bridge

import (
	"context"

	"maunium.net/go/mautrix/bridgev2"

	"github.com/careline/careline/store"
)

// staffPlainRefused is said under a `!plain` message that goes by secure link instead.
const staffPlainRefused = "🔒 Sent as a secure link, not as plain SMS: `!plain` is honoured only for patients whose " +
	"consent to plain texts is recorded (`!careline consent …`), or where the administrator allows it " +
	"for all staff (network.delivery.staff_plain)."

// honourStaffPlain reports whether a staff member's `!plain` may be honoured: plain SMS needs
// the patient's recorded consent, or the admin's network.delivery.staff_plain (SPEC §3). When
// it may not, the message goes by secure link and staff are told why, under their message.
func (c *Connector) honourStaffPlain(ctx context.Context, msg *bridgev2.MatrixMessage, patient *store.Patient, markedPlain bool) bool {
	if !markedPlain || c.Config.Delivery.StaffPlain || patient.Consent != nil {
		return markedPlain
	}
	c.sendNotice(ctx, msg.Portal, staffPlainRefused, msg.Event.ID)
	return false
}
