package bridge

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/careline/careline/store"
)

// TestPatientMessagesWaitBehindARetry: while a patient's message waits for its retry, the
// patient's later messages wait behind it (they reached the room before it), also after a
// restart; other patients' messages and the patient's earlier ones do not wait.
func TestPatientMessagesWaitBehindARetry(t *testing.T) {
	f := newInboundFixture(t)
	f.c.Config.Twilio.GiveUpAfter = time.Hour
	ctx := context.Background()
	first, patient := f.receive(t, "first")
	second, _ := f.receive(t, "second")
	f.c.inboundFailed(ctx, &inboxItem{in: first, patient: patient, client: f.client}, errors.New("homeserver down"))
	for _, swept := range []bool{false, true} {
		if _, err := f.c.prepareInbound(ctx, &inboxItem{in: second, patient: patient, client: f.client, swept: swept}); !errors.Is(err, errWaitsBehind) {
			t.Fatalf("the patient's next message (swept %v) went ahead of the one waiting for its retry: %v", swept, err)
		}
	}

	at := first.ReceivedAt
	msg := func(patient, id string, after time.Duration) *store.Inbound {
		return &store.Inbound{MessageID: id, PatientID: patient, ReceivedAt: at.Add(after)}
	}
	restarted := &inbox{c: f.c, ctx: ctx}
	if !restarted.loadRetrying() {
		t.Fatal("could not list the messages waiting for a retry")
	}
	for name, ib := range map[string]*inbox{"running": f.c.inbox, "after a restart": restarted} {
		for _, tc := range []struct {
			in     *store.Inbound
			behind bool
		}{
			{second, true},
			{msg("p1", "SMzz", 0), true}, // same millisecond, listed after it
			{msg("p1", "SM00", 0), false},
			{msg("p1", "SMearlier", -time.Second), false},
			{first, false},
			{msg("p2", "SMother", time.Second), false},
		} {
			if got := ib.behind(tc.in); got != tc.behind {
				t.Errorf("%s: %s of %s behind = %v, want %v", name, tc.in.MessageID, tc.in.PatientID, got, tc.behind)
			}
		}
	}
	f.c.inbox.settledFor(first)
	if f.c.inbox.behind(second) {
		t.Error("the next message still waits after the first reached its room")
	}
}
