package config

import (
	"strings"
	"testing"
	"time"
)

func TestInboxSettings(t *testing.T) {
	c := exampleNetwork(t)
	if err := c.Validate(); err != nil || c.Inbox.NudgeAfter != 30*time.Minute {
		t.Fatalf("example: nudge_after %v (%v), want 30m", c.Inbox.NudgeAfter, err)
	}
	c.Inbox.NudgeAfter = 0
	if err := c.Validate(); err != nil || c.Inbox.NudgeAfter != DefaultNudgeAfter {
		t.Fatalf("absent nudge_after became %v (%v), want the default", c.Inbox.NudgeAfter, err)
	}
	c.Inbox.NudgeAfter = -time.Minute
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "network.inbox.nudge_after") {
		t.Fatalf("a negative nudge_after: %v, want an error naming the key", err)
	}

	c.Inbox.NudgeAfter = time.Hour
	if c.Portal.RemindAfter != 24*time.Hour {
		t.Fatalf("example: remind_after %v, want 24h", c.Portal.RemindAfter)
	}
	c.Portal.RemindAfter = 0
	if err := c.Validate(); err != nil || c.Portal.RemindAfter != DefaultRemindAfter {
		t.Fatalf("absent remind_after became %v (%v), want the default", c.Portal.RemindAfter, err)
	}
	c.Portal.RemindAfter = -time.Hour
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "network.portal.remind_after must be a duration") {
		t.Fatalf("a negative remind_after: %v, want an error naming the key", err)
	}

	upgraded := upgradedNetwork(t, "inbox:\n    nudge_after: 2h\nportal:\n    remind_after: 36h\n")
	if upgraded.Inbox.NudgeAfter != 2*time.Hour || upgraded.Portal.RemindAfter != 36*time.Hour {
		t.Fatalf("the upgrader kept nudge_after %v and remind_after %v, want 2h and 36h", upgraded.Inbox.NudgeAfter, upgraded.Portal.RemindAfter)
	}
}
