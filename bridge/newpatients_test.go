package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/careline/careline/floodgate"
)

// TestHeldTextKeepsItsRetryPeriod: a first text held by the new-patient limit gets its whole
// network.twilio.give_up_after once let through, counted from then, not from its arrival: the
// wait for a place must not make its first failure final.
func TestHeldTextKeepsItsRetryPeriod(t *testing.T) {
	f := newInboundFixture(t)
	ctx := context.Background()
	f.c.newRooms = floodgate.New(f.store.DB, zerolog.Nop())
	if err := f.c.newRooms.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	in, _ := f.receive(t, "first text")
	if got := f.c.retryingSince(ctx, in); !got.Equal(in.ReceivedAt) {
		t.Fatalf("before it was let through: %v, want its arrival %v", got, in.ReceivedAt)
	}
	letThrough := in.ReceivedAt.Add(3 * time.Hour).Truncate(time.Millisecond)
	if ok, _, err := f.c.newRooms.Admit(ctx, in.LoginID, in.PatientID, 1, newPatientWindow, letThrough); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if got := f.c.retryingSince(ctx, in); !got.Equal(letThrough) {
		t.Fatalf("after it was let through: %v, want %v", got, letThrough)
	}
}
