package bridge

import (
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/audit"
)

// invitePartnerHandler is `invite-partner @user:server`: an administrator brings a partner
// clinic's staff member (on another homeserver) into a patient's room. bridgev2 refuses anyone
// but a bridge admin before it runs (RequiresAdmin), whatever the partner's server says.
func (c *Connector) invitePartnerHandler() *commands.FullHandler {
	return &commands.FullHandler{
		Func: c.cmdInvitePartner, Name: "invite-partner", RequiresAdmin: true, RequiresPortal: true,
		Help: commands.HelpMeta{Section: HelpSectionPatient, Args: "<@user:server>",
			Description: "Invite a partner clinic's staff member (their server needs a bridge.permissions entry); administrators only"},
	}
}

func (c *Connector) cmdInvitePartner(ce *commands.Event) {
	partner := id.UserID(strings.TrimSpace(ce.RawArgs))
	if _, _, err := partner.ParseAndValidateRelaxed(); err != nil || len(ce.Args) != 1 {
		ce.Reply("Give the partner's full Matrix ID, e.g. `invite-partner @ortiz:cardio.example`.")
		return
	}
	server := partner.Homeserver()
	if !c.isPartner(partner) {
		ce.Reply("%s is on this clinic's own server: invite them to the room as usual, or add them to `network.care_team`.", partner)
		return
	}
	perms := c.Bridge.Config.Permissions.Get(partner)
	if !perms.SendEvents {
		ce.Reply("Not invited: %s has no entry in careline's `bridge.permissions` (nor does %s), so nothing they wrote would reach the patient. An administrator adds `%s: commands` (or `relay`) under `bridge.permissions` and restarts careline; then run this again.",
			server, partner, server)
		return
	}
	if perms.Login {
		ce.Reply("Not invited: `bridge.permissions` gives %s the rights of the clinic's own staff (level user or admin), which would let them connect numbers and open patient rooms. Give a partner clinic `relay` or `commands`.", partner)
		return
	}
	if !c.patientNameIsMasked() {
		ce.Reply("Not invited: `network.privacy.patient_name` (%q) puts more than the last four digits of the number in the room name, which every server in the room keeps unencrypted, so %s would learn who the patient is. Partners can be invited while the room name is masked, such as \"Patient ···{last4}\".",
			c.Config.Privacy.PatientName, server)
		return
	}
	if member, err := c.Bridge.Matrix.GetMemberInfo(ce.Ctx, ce.Portal.MXID, partner); err == nil && member != nil &&
		(member.Membership == event.MembershipJoin || member.Membership == event.MembershipInvite) {
		ce.Reply("%s is already in this room (%s).", partner, member.Membership)
		return
	}
	log := zerolog.Ctx(ce.Ctx).With().Str("command", "invite-partner").Stringer("partner", partner).Logger()
	// Before the invite: the visibility in force at their invite decides what of the room's
	// past their server is given.
	if err := c.ensureHistoryVisibility(ce.Ctx, ce.Portal); err != nil {
		log.Err(err).Msg("Could not set the room's history visibility")
		ce.Reply("Not invited: could not set the room's history visibility to %s (%v).", c.Config.Federation.HistoryVisibility, err)
		return
	}
	if err := c.Bridge.Bot.EnsureInvited(ce.Ctx, ce.Portal.MXID, partner); err != nil {
		log.Err(err).Msg("Could not invite a partner")
		ce.Reply("Could not invite %s: %v. Their server (%s) must be reachable from this clinic's server over Matrix federation.", partner, err, server)
		return
	}
	clinic := c.clinicOf(partner)
	c.audit(ce.Ctx, audit.Entry{Actor: ce.User.MXID.String(), Action: "partner.invited", PatientID: string(ce.Portal.ID),
		Detail: fmt.Sprintf("%s (%s) by invite-partner, history_visibility=%s", partner, clinic, c.Config.Federation.HistoryVisibility)})
	log.Info().Msg("Invited a partner clinic's staff member")
	ce.Reply("Invited %s (%s). %s The patient sees their messages signed with their name and \"%s\". Remove them from the room when the referral is done: they cannot read anything written after they leave.",
		partner, clinic, historyNote(c.Config.Federation.HistoryVisibility), clinic)
}

// historyNote says in words what a partner can read of the room's past.
func historyNote(visibility string) string {
	switch visibility {
	case "joined":
		return "They can read what is written here from when they join."
	case "shared":
		return "Their server is given the room's earlier events too, but not the keys to read earlier messages."
	}
	return "They can read what is written here from now on."
}
