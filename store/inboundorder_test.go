package store

import (
	"context"
	"testing"
	"time"
)

// TestRetryingInbound, on both databases: the messages waiting for a retry after a failure
// are listed (the inbox keeps their patients' later messages behind them after a restart);
// one due now, one held by the new-patient limit and one bridged are not.
func TestRetryingInbound(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, id := range []string{"SM1", "SM2", "SM3", "SM4"} {
			if _, _, err := s.SaveInbound(ctx, &Inbound{MessageID: id, LoginID: "L", PatientID: "p-" + id, Channel: ChannelSMS,
				From: "+14155550123", Body: "hi"}); err != nil {
				t.Fatal(err)
			}
		}
		later := time.Now().Add(time.Hour)
		if err := s.RetryInbound(ctx, "SM1", later, "homeserver down"); err != nil {
			t.Fatal(err)
		}
		if err := s.HoldInbound(ctx, "SM2", later, "waiting for a place"); err != nil {
			t.Fatal(err)
		}
		if err := s.RetryInbound(ctx, "SM4", later, "homeserver down"); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkInboundBridged(ctx, "SM4"); err != nil {
			t.Fatal(err)
		}
		list, err := s.RetryingInbound(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].MessageID != "SM1" || list[0].PatientID != "p-SM1" || list[0].ReceivedAt.IsZero() {
			t.Fatalf("retrying: %+v, want only SM1 with its patient and arrival", list)
		}
	})
}
