package teaminbox

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbtest"
	"github.com/careline/careline/officehours"
)

func TestNudgeDueCountsOfficeHoursOnly(t *testing.T) {
	hours, err := officehours.Parse(time.UTC, map[string]string{"mon": "09:00-17:00", "tue": "09:00-17:00"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mon := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC) // a Monday
	at := func(day, h, m int) time.Time {
		return mon.AddDate(0, 0, day).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
	}
	for _, tc := range []struct {
		since, now time.Time
		open       func(time.Time) bool
		want       bool
	}{
		{at(0, 10, 0), at(0, 10, 29), nil, false},
		{at(0, 10, 0), at(0, 10, 30), nil, true},
		{at(0, 16, 50), at(0, 23, 0), nil, true},         // wall clock: due
		{at(0, 16, 50), at(0, 23, 0), hours.Open, false}, // 10 open minutes only
		{at(0, 16, 50), at(1, 9, 19), hours.Open, false}, // 10 + 19
		{at(0, 16, 50), at(1, 9, 20), hours.Open, true},  // 10 + 20
		{at(0, 20, 0), at(1, 9, 29), hours.Open, false},  // written after hours
		{at(0, 20, 0), at(1, 9, 30), hours.Open, true},
		{at(1, 18, 0), at(6, 12, 0), hours.Open, false},                            // closed until next Monday
		{at(-40, 18, 0), at(0, 0, 0), func(time.Time) bool { return false }, true}, // long overdue
	} {
		if got := NudgeDue(tc.since, tc.now, 30*time.Minute, tc.open); got != tc.want {
			t.Errorf("since %v now %v (hours %v): %v, want %v", tc.since, tc.now, tc.open != nil, got, tc.want)
		}
	}
}

func TestNudgeOncePerWait(t *testing.T) {
	dbtest.ForEach(t, "teaminbox_nudge", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := New(db, zerolog.Nop())
		if err := s.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
		mustWrite(t, s, "p1", "!r1", t0)
		mustWrite(t, s, "p2", "!r2", t0.Add(time.Minute))
		if list, _ := s.Unnudged(ctx); len(list) != 2 || list[0].PatientID != "p1" {
			t.Fatalf("unnudged %v", list)
		}
		if ok, err := s.MarkNudged(ctx, "p1", t0, t0.Add(30*time.Minute)); err != nil || !ok {
			t.Fatalf("first nudge: %v %v", ok, err)
		}
		if ok, _ := s.MarkNudged(ctx, "p1", t0, t0.Add(31*time.Minute)); ok {
			t.Fatal("a wait was nudged twice")
		}
		mustWrite(t, s, "p1", "!r1", t0.Add(40*time.Minute)) // same wait: still nudged
		if list, _ := s.Unnudged(ctx); len(list) != 1 || list[0].PatientID != "p2" {
			t.Fatalf("unnudged after p1's nudge %v", list)
		}
		// Answered, then a new wait: nudged again once.
		_, _ = s.StaffReplied(ctx, "p1", "!r1", "@lee:x", t0.Add(50*time.Minute))
		if ok, _ := s.MarkNudged(ctx, "p1", t0, t0.Add(51*time.Minute)); ok {
			t.Fatal("an answered wait was nudged")
		}
		mustWrite(t, s, "p1", "!r1", t0.Add(2*time.Hour))
		if ok, _ := s.MarkNudged(ctx, "p1", t0.Add(2*time.Hour), t0.Add(3*time.Hour)); !ok {
			t.Fatal("a new wait was not nudged")
		}
		// A closed conversation is not nudged.
		_, _ = s.Close(ctx, "p2", "!r2", t0.Add(time.Hour))
		if ok, _ := s.MarkNudged(ctx, "p2", t0.Add(time.Minute), t0.Add(2*time.Hour)); ok {
			t.Fatal("a closed conversation was nudged")
		}
	})
}
