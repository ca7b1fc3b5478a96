package bridge

import (
	"maunium.net/go/mautrix/bridgev2/commands"
)

// HelpSectionWorkflows groups the clinic workflow commands.
var HelpSectionWorkflows = commands.HelpSection{Name: "Clinic workflows", Order: 26}

// workflowCommands are the template, schedule, broadcast, name and find commands.
func (c *Connector) workflowCommands() []commands.CommandHandler {
	return []commands.CommandHandler{
		&commands.FullHandler{
			Func: c.cmdName, Name: "name", RequiresPortal: true,
			Help: commands.HelpMeta{Section: HelpSectionWorkflows, Args: "<first> [last]",
				Description: "Record the patient's name, for templates and find (sealed at rest)"},
		},
		&commands.FullHandler{
			Func: c.cmdTemplate, Name: "template", RequiresPortal: true,
			Help: commands.HelpMeta{Section: HelpSectionWorkflows, Args: `<name> [key=value …] (values with spaces in "double quotes")`,
				Description: "Send one of the clinic's templates to the patient"},
		},
		&commands.FullHandler{
			Func: c.cmdTemplates, Name: "templates",
			Help: commands.HelpMeta{Section: HelpSectionWorkflows,
				Description: "List the templates, their placeholders, and the SMS cost of the plain ones"},
		},
		&commands.FullHandler{
			Func: c.cmdSchedule, Name: "schedule", RequiresPortal: true,
			Help: commands.HelpMeta{Section: HelpSectionWorkflows, Args: "<+30m|+2h|+1d|YYYY-MM-DDTHH:MM> <text…> | <when> template <name> [key=value …]",
				Description: "Send a text or a template later, in the clinic's time zone"},
		},
		&commands.FullHandler{
			Func: c.cmdScheduled, Name: "scheduled", RequiresPortal: true,
			Help: commands.HelpMeta{Section: HelpSectionWorkflows, Description: "List this patient's pending scheduled sends"},
		},
		&commands.FullHandler{
			Func: c.cmdUnschedule, Name: "unschedule", RequiresPortal: true,
			Help: commands.HelpMeta{Section: HelpSectionWorkflows, Args: "<id>", Description: "Cancel a pending scheduled send"},
		},
		&commands.FullHandler{
			Func: c.cmdBroadcast, Name: "broadcast",
			Help: commands.HelpMeta{Section: HelpSectionWorkflows, Args: "<template> <+1…,+1…|all> [key=value …]",
				Description: "Send a template to many patients, each in their own room"},
		},
		&commands.FullHandler{
			Func: c.cmdFind, Name: "find",
			Help: commands.HelpMeta{Section: HelpSectionWorkflows, Args: "<name or last four digits>",
				Description: "Find patients by name or the last four digits of their number"},
		},
	}
}
