package store

import (
	"context"
	"testing"
	"time"
)

// TestBacklogAndHolds, on both databases: the queues' depth counts every waiting item, their
// oldest-due time only items due now; a held message is not due until its time, is not
// counted as a failed attempt, and is due again at once after a restart releases holds.
func TestBacklogAndHolds(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if b, err := s.InboundBacklog(ctx); err != nil || b.Depth != 0 || !b.OldestDue.IsZero() {
			t.Fatalf("empty inbox: %+v %v", b, err)
		}
		for _, id := range []string{"SM1", "SM2"} {
			if _, _, err := s.SaveInbound(ctx, &Inbound{MessageID: id, LoginID: "L", PatientID: "p-" + id, Channel: ChannelSMS,
				From: "+14155550123", Body: "hi"}); err != nil {
				t.Fatal(err)
			}
		}
		later := time.Now().Add(time.Hour)
		if err := s.HoldInbound(ctx, "SM1", later, "waiting for a place"); err != nil {
			t.Fatal(err)
		}
		b, err := s.InboundBacklog(ctx)
		if err != nil || b.Depth != 2 || b.OldestDue.IsZero() {
			t.Fatalf("inbox with one held, one due: %+v %v", b, err)
		}
		due, err := s.DueInbound(ctx, 10)
		if err != nil || len(due) != 1 || due[0].MessageID != "SM2" {
			t.Fatalf("due with SM1 held: %v %v", due, err)
		}
		if n, err := s.ReleaseHeldInbound(ctx); n != 1 || err != nil {
			t.Fatalf("released %d %v, want 1", n, err)
		}
		if due, err = s.DueInbound(ctx, 10); err != nil || len(due) != 2 {
			t.Fatalf("due after the release: %v %v", due, err)
		}
		for _, in := range due {
			if in.Attempts != 0 {
				t.Errorf("%s has %d attempts: a hold is not a failure", in.MessageID, in.Attempts)
			}
		}

		_, _ = s.GetOrCreatePatient(ctx, "a", "L", "+14155550001")
		o := &Outgoing{LoginID: "L", PatientID: "a", Kind: KindMessage, Body: "x", GiveUpAt: later}
		if err = s.Enqueue(ctx, o); err != nil {
			t.Fatal(err)
		}
		if b, err = s.OutboxBacklog(ctx); err != nil || b.Depth != 1 || b.OldestDue.IsZero() {
			t.Fatalf("outbox with one due: %+v %v", b, err)
		}
		if err = s.Retry(ctx, o.Seq, later, "429"); err != nil {
			t.Fatal(err)
		}
		if b, err = s.OutboxBacklog(ctx); err != nil || b.Depth != 1 || !b.OldestDue.IsZero() {
			t.Fatalf("outbox with one waiting for its retry: %+v %v", b, err)
		}
	})
}
