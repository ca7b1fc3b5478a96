package bridge

import (
	"strings"
	"testing"
	"time"

	"github.com/careline/careline/teaminbox"
)

func TestFormatQueue(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	if got := formatQueue(nil, now); got != "No conversation is waiting for a reply." {
		t.Errorf("empty queue: %q", got)
	}
	got := formatQueue([]*teaminbox.Conversation{
		{RoomID: "!old:clinic.example", WaitingSince: now.Add(-26*time.Hour - 5*time.Minute)},
		{RoomID: "!new:clinic.example", Assignee: "@lee:clinic.example", WaitingSince: now.Add(-3*time.Hour - 5*time.Minute - 30*time.Second)},
		{RoomID: "!now:clinic.example", WaitingSince: now.Add(-42 * time.Minute)},
	}, now)
	want := strings.Join([]string{
		"3 conversations waiting for a reply, oldest first:",
		"1. https://matrix.to/#/!old:clinic.example · unassigned · waiting 1d 2h",
		"2. https://matrix.to/#/!new:clinic.example · assigned to @lee:clinic.example · waiting 3h 05m",
		"3. https://matrix.to/#/!now:clinic.example · unassigned · waiting 42m",
	}, "\n")
	if got != want {
		t.Errorf("queue:\n%s\nwant:\n%s", got, want)
	}
}
