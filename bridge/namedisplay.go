package bridge

import (
	"context"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// fillRecordedName fills {first_name} and {last_name} in the admin's privacy.patient_name
// pattern from the recorded name, and cuts them out when none is recorded. Only an admin who
// chose to show names in room names gets here: the homeserver then stores the name as
// unencrypted room state.
func (c *Connector) fillRecordedName(pattern, patientID string) string {
	first, last := "", ""
	if c.wf.names != nil {
		if n, err := c.wf.names.Get(c.Bridge.BackgroundCtx, patientID); err == nil && n != nil {
			first, last = n.First, n.Last
		}
	}
	name := strings.NewReplacer("{first_name}", first, "{last_name}", last).Replace(pattern)
	return strings.Join(strings.Fields(name), " ")
}

// showRecordedName renames the patient's room and ghost after a name was recorded, when the
// admin's pattern uses it.
func (c *Connector) showRecordedName(ctx context.Context, portal *bridgev2.Portal, login *bridgev2.UserLogin) {
	if !strings.Contains(c.Config.Privacy.PatientName, "_name}") || portal == nil {
		return
	}
	name, err := c.displayName(ctx, string(portal.ID))
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not rename the patient's room after a name was recorded")
		return
	}
	portal.UpdateInfo(ctx, &bridgev2.ChatInfo{Name: &name}, login, nil, time.Time{})
	ghost, err := c.Bridge.GetGhostByID(ctx, networkid.UserID(portal.ID))
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not rename the patient's ghost")
		return
	}
	ghost.UpdateInfo(ctx, &bridgev2.UserInfo{Name: &name})
}
