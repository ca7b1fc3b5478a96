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

func upgradeInbox(helper up.Helper) {
	helper.Copy(up.Str, "inbox", "nudge_after")
}
