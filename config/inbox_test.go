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

	if upgraded := upgradedNetwork(t, "inbox:\n    nudge_after: 2h\n"); upgraded.Inbox.NudgeAfter != 2*time.Hour {
		t.Fatalf("the upgrader kept nudge_after %v, want 2h", upgraded.Inbox.NudgeAfter)
	}
}
