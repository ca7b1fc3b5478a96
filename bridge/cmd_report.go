package bridge

import (
	"maunium.net/go/mautrix/bridgev2/commands"
)

var cmdReportHelp = commands.HelpMeta{Section: HelpSectionInbox, Args: "[--since YYYY-MM-DD] [--until YYYY-MM-DD]",
	Description: "Messages in and out, first-response times, unanswered conversations, failed deliveries and opt-outs (default: the last 30 days)"}

func (c *Connector) cmdReport(ce *commands.Event) {
	if !ce.User.Permissions.Login {
		ce.Reply("Only the clinic's own staff can see the report.")
		return
	}
	if c.team.store == nil {
		ce.Reply("The team inbox is not running yet; try again in a moment.")
		return
	}
	since, until, err := teaminboxPeriod(ce.Args, c)
	if err != nil {
		ce.Reply("%v", err)
		return
	}
	traffic, err := c.Store.Traffic(ce.Ctx, since, until)
	if err != nil {
		ce.Reply("Could not count the messages: %v", err)
		return
	}
	report, err := c.team.store.Report(ce.Ctx, since, until, traffic)
	if err != nil {
		ce.Reply("Could not read the response times: %v", err)
		return
	}
	ce.Reply("%s", report.Text())
}
