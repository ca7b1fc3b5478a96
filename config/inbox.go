package config

import (
	"fmt"
	"time"

	up "go.mau.fi/util/configupgrade"
)

// DefaultNudgeAfter is network.inbox.nudge_after when the config does not say.
const DefaultNudgeAfter = 30 * time.Minute

// Inbox is network.inbox: the care team's shared inbox.
type Inbox struct {
	// NudgeAfter is how long a patient's message may wait for a reply before careline mentions
	// the owner (or the care team) in the room, once; counted in office hours when they are set.
	NudgeAfter time.Duration `yaml:"nudge_after"`
}

func (in *Inbox) validate() []error {
	switch {
	case in.NudgeAfter == 0:
		in.NudgeAfter = DefaultNudgeAfter
	case in.NudgeAfter < time.Second:
		return []error{fmt.Errorf("network.inbox.nudge_after must be a duration of at least 1s like 30m, not %s", in.NudgeAfter)}
	}
	return nil
}

// DefaultRemindAfter is network.portal.remind_after when the config does not say.
const DefaultRemindAfter = 24 * time.Hour

// PortalReminder is the part of network.portal that reminds a patient of an unopened secure
// message.
type PortalReminder struct {
	// RemindAfter is how long a secure message may stay unopened before the patient gets one
	// more text with a fresh link; staff are told when it is still unopened as long again later.
	RemindAfter time.Duration `yaml:"remind_after"`
}

func (pr *PortalReminder) validate() []error {
	switch {
	case pr.RemindAfter == 0:
		pr.RemindAfter = DefaultRemindAfter
	case pr.RemindAfter < time.Second:
		return []error{fmt.Errorf("network.portal.remind_after must be a duration of at least 1s like 24h, not %s", pr.RemindAfter)}
	}
	return nil
}

func upgradeInbox(helper up.Helper) {
	helper.Copy(up.Str, "inbox", "nudge_after")
	helper.Copy(up.Str, "portal", "remind_after")
}
