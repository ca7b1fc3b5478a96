package bridge

import (
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/teaminbox"
)

// HelpSectionInbox groups the team inbox commands.
var HelpSectionInbox = commands.HelpSection{Name: "Team inbox", Order: 26}

func (c *Connector) teamInboxCommands() []commands.CommandHandler {
	return []commands.CommandHandler{
		&commands.FullHandler{Func: c.cmdAssign, Name: "assign", RequiresPortal: true,
			Help: commands.HelpMeta{Section: HelpSectionInbox, Args: "<@user:server>", Description: "Make a staff member the owner of this conversation"}},
		&commands.FullHandler{Func: c.cmdClaim, Name: "claim", RequiresPortal: true,
			Help: commands.HelpMeta{Section: HelpSectionInbox, Description: "Become the owner of this conversation"}},
		&commands.FullHandler{Func: c.cmdUnassign, Name: "unassign", RequiresPortal: true,
			Help: commands.HelpMeta{Section: HelpSectionInbox, Description: "Leave this conversation without an owner"}},
		&commands.FullHandler{Func: c.cmdClose, Name: "close", RequiresPortal: true,
			Help: commands.HelpMeta{Section: HelpSectionInbox, Description: "Close this conversation (a new message from the patient opens it again)"}},
		&commands.FullHandler{Func: c.cmdReopen, Name: "reopen", RequiresPortal: true,
			Help: commands.HelpMeta{Section: HelpSectionInbox, Description: "Open this conversation again"}},
		&commands.FullHandler{Func: c.cmdQueue, Name: "queue",
			Help: commands.HelpMeta{Section: HelpSectionInbox, Description: "List the open conversations awaiting a staff reply, oldest first"}},
		&commands.FullHandler{Func: c.cmdReport, Name: "report", Help: cmdReportHelp},
	}
}

// inboxCommandReady refuses inbox commands from people who are not the clinic's staff, and
// reads the conversation.
func (c *Connector) inboxCommandReady(ce *commands.Event) (*teaminbox.Conversation, bool) {
	if !ce.User.Permissions.Login {
		ce.Reply("Only the clinic's own staff can use `%s`.", ce.Command)
		return nil, false
	}
	if c.team.store == nil {
		ce.Reply("The team inbox is not running yet; try again in a moment.")
		return nil, false
	}
	conv, err := c.team.store.Get(ce.Ctx, string(ce.Portal.ID))
	if err != nil {
		ce.Reply("Could not read the conversation's state: %v", err)
		return nil, false
	}
	return conv, true
}

func (c *Connector) cmdAssign(ce *commands.Event) {
	if _, ok := c.inboxCommandReady(ce); !ok {
		return
	}
	if len(ce.Args) != 1 {
		ce.Reply("Name one staff member by Matrix ID, e.g. `assign @lee:clinic.example`.")
		return
	}
	target := id.UserID(ce.Args[0])
	if _, _, err := target.ParseAndValidateRelaxed(); err != nil {
		ce.Reply("%q is not a Matrix ID; write it as @user:server, e.g. `assign @lee:clinic.example`.", ce.Args[0])
		return
	}
	if target == c.Bridge.Bot.GetMXID() || c.Bridge.IsGhostMXID(target) {
		ce.Reply("%s is not a staff member; assign the conversation to a person on the care team.", target)
		return
	}
	member, err := c.Bridge.Matrix.GetMemberInfo(ce.Ctx, ce.Portal.MXID, target)
	if err != nil || member == nil || (member.Membership != event.MembershipJoin && member.Membership != event.MembershipInvite) {
		ce.Reply("%s is not in this room. Invite them first, then assign the conversation.", target)
		return
	}
	c.setAssignee(ce, target.String())
}

func (c *Connector) cmdClaim(ce *commands.Event) {
	if _, ok := c.inboxCommandReady(ce); !ok {
		return
	}
	c.setAssignee(ce, ce.User.MXID.String())
}

func (c *Connector) cmdUnassign(ce *commands.Event) {
	conv, ok := c.inboxCommandReady(ce)
	if !ok {
		return
	}
	if conv.Assignee == "" {
		ce.Reply("Nobody owns this conversation; nothing changed.")
		return
	}
	c.setAssignee(ce, "")
}

func (c *Connector) setAssignee(ce *commands.Event, assignee string) {
	patientID := string(ce.Portal.ID)
	previous, err := c.team.store.Assign(ce.Ctx, patientID, ce.Portal.MXID.String(), assignee)
	if err != nil {
		ce.Reply("Could not change the owner: %v", err)
		return
	}
	if previous == assignee {
		ce.Reply("%s already owns this conversation; nothing changed.", assignee)
		return
	}
	actor := ce.User.MXID.String()
	var change string
	switch {
	case assignee == "":
		change = fmt.Sprintf("%s removed the owner (was %s).", actor, previous)
		c.audit(ce.Ctx, audit.Entry{Actor: actor, Action: "conversation.unassigned", PatientID: patientID, Detail: "was " + previous})
	case assignee == actor:
		change = fmt.Sprintf("%s claimed the conversation.", actor)
		c.audit(ce.Ctx, audit.Entry{Actor: actor, Action: "conversation.assigned", PatientID: patientID, Detail: "to " + assignee})
	default:
		change = fmt.Sprintf("%s assigned the conversation to %s.", actor, assignee)
		c.audit(ce.Ctx, audit.Entry{Actor: actor, Action: "conversation.assigned", PatientID: patientID, Detail: "to " + assignee})
	}
	c.afterInboxChange(ce, change, assignee)
}

func (c *Connector) cmdClose(ce *commands.Event) {
	if _, ok := c.inboxCommandReady(ce); !ok {
		return
	}
	patientID := string(ce.Portal.ID)
	closed, err := c.team.store.Close(ce.Ctx, patientID, ce.Portal.MXID.String(), c.team.now())
	if err != nil {
		ce.Reply("Could not close the conversation: %v", err)
		return
	} else if !closed {
		ce.Reply("The conversation is already closed; nothing changed.")
		return
	}
	c.audit(ce.Ctx, audit.Entry{Actor: ce.User.MXID.String(), Action: "conversation.closed", PatientID: patientID})
	c.afterInboxChange(ce, fmt.Sprintf("%s closed the conversation. A new message from the patient opens it again.", ce.User.MXID), "")
}

func (c *Connector) cmdReopen(ce *commands.Event) {
	if _, ok := c.inboxCommandReady(ce); !ok {
		return
	}
	patientID := string(ce.Portal.ID)
	reopened, err := c.team.store.Reopen(ce.Ctx, patientID, ce.Portal.MXID.String())
	if err != nil {
		ce.Reply("Could not reopen the conversation: %v", err)
		return
	} else if !reopened {
		ce.Reply("The conversation is already open; nothing changed.")
		return
	}
	c.audit(ce.Ctx, audit.Entry{Actor: ce.User.MXID.String(), Action: "conversation.reopened", PatientID: patientID})
	c.afterInboxChange(ce, fmt.Sprintf("%s reopened the conversation.", ce.User.MXID), "")
}

// afterInboxChange shows the new state in the room (pinned), mentioning notify.
func (c *Connector) afterInboxChange(ce *commands.Event, change, notify string) {
	c.spacesChanged(string(ce.Portal.ID))
	conv, err := c.team.store.Get(ce.Ctx, string(ce.Portal.ID))
	if err != nil {
		ce.Reply("%s (could not read the new state: %v)", change, err)
		return
	}
	c.showConversation(ce.Ctx, ce.Portal, conv, change, notify)
}

func (c *Connector) cmdQueue(ce *commands.Event) {
	if !ce.User.Permissions.Login {
		ce.Reply("Only the clinic's own staff can see the queue.")
		return
	}
	if c.team.store == nil {
		ce.Reply("The team inbox is not running yet; try again in a moment.")
		return
	}
	waiting, err := c.team.store.Waiting(ce.Ctx)
	if err != nil {
		ce.Reply("Could not read the queue: %v", err)
		return
	}
	ce.Reply(formatQueue(waiting, c.team.now()))
}

// formatQueue writes the queue for staff: one line per room, oldest first, with the room's
// matrix.to link (room ID only), its owner and how long the patient has waited.
func formatQueue(waiting []*teaminbox.Conversation, now time.Time) string {
	if len(waiting) == 0 {
		return "No conversation is waiting for a reply."
	}
	lines := []string{fmt.Sprintf("%d conversations waiting for a reply, oldest first:", len(waiting))}
	for i, conv := range waiting {
		owner := "unassigned"
		if conv.Assignee != "" {
			owner = "assigned to " + conv.Assignee
		}
		lines = append(lines, fmt.Sprintf("%d. https://matrix.to/#/%s · %s · waiting %s", i+1, conv.RoomID, owner, waitedFor(now.Sub(conv.WaitingSince))))
	}
	return strings.Join(lines, "\n")
}

// waitedFor writes a wait as people say it: "45m", "3h 05m", "2d 4h".
func waitedFor(d time.Duration) string {
	d = max(d, 0).Truncate(time.Minute)
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}
