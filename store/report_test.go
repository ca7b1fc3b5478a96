package store

import (
	"context"
	"testing"
	"time"
)

// TestTraffic counts a known set: messages inside the period by direction, failures among
// the outgoing ones, opt-outs; nothing outside [since, until).
func TestTraffic(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
		at := day.Add(9 * time.Hour)
		s.now = func() time.Time { return at }
		_, _ = s.GetOrCreatePatient(ctx, "p1", "L", "+14155550123")
		save := func(id string, fromPatient bool, status MessageStatus, when time.Time) {
			t.Helper()
			if err := s.SaveMessage(ctx, &Message{ID: id, PatientID: "p1", FromPatient: fromPatient, Channel: ChannelSMS,
				Body: "x", Status: status, CreatedAt: when}); err != nil {
				t.Fatal(err)
			}
		}
		save("in1", true, StatusReceived, at)
		save("in2", true, StatusReceived, at.Add(time.Hour))
		save("in3", true, StatusReceived, at.Add(2*time.Hour))
		save("out1", false, StatusDelivered, at.Add(time.Minute))
		save("out2", false, StatusFailed, at.Add(2*time.Minute))
		save("out3", false, StatusUndelivered, at.Add(3*time.Minute))
		save("before", true, StatusReceived, day.Add(-time.Millisecond))
		save("after", false, StatusFailed, day.Add(24*time.Hour))
		for _, id := range []string{"in2", "in3"} {
			if _, err := s.RecordKeyword(ctx, id, "p1", KeywordOptOut); err != nil {
				t.Fatal(err)
			}
		}
		at = day.Add(24 * time.Hour) // outside the period
		_, _ = s.RecordKeyword(ctx, "after", "p1", KeywordOptOut)
		_, _ = s.RecordKeyword(ctx, "in1", "p1", KeywordHelp)
		got, err := s.Traffic(ctx, day, day.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if want := (Traffic{In: 3, Out: 3, Failed: 2, OptOuts: 2}); got != want {
			t.Fatalf("traffic %+v, want %+v", got, want)
		}
	})
}
