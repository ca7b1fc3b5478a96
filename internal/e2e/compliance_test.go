package e2e

import (
	"strings"
	"testing"

	"github.com/careline/careline/internal/testenv"
	"github.com/careline/careline/internal/twiliofake"
)

// TestOptOut: STOP blocks texting before any Twilio call, with a notice to staff; START
// re-opens it.
func TestOptOut(t *testing.T) {
	s := startStack(t, stackOptions{})
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	text := func(body string) {
		t.Helper()
		if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber, Body: body}); err != nil || status != 200 {
			t.Fatalf("webhook: %d %v", status, err)
		}
	}
	text("Stop")
	notice, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return m.Notice && strings.Contains(m.Body, "opted out") })
	if err != nil {
		t.Fatal(err)
	}
	room := notice.RoomID
	before := len(s.Twilio.Sent())
	if _, err := s.nurse.SendText(ctx, room, "are you still there?"); err != nil {
		t.Fatal(err)
	}
	refusal, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
		return m.Notice && m.RoomID == room && strings.Contains(m.Body, "nothing was sent")
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(refusal.Body, "STOP") {
		t.Fatalf("refusal does not say why: %q", refusal.Body)
	}
	if got := len(s.Twilio.Sent()); got != before {
		t.Fatalf("careline called Twilio for an opted-out patient (%d new messages)", got-before)
	}

	text("START")
	if _, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return m.Notice && strings.Contains(m.Body, "can receive texts again") }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.nurse.SendText(ctx, room, "welcome back"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Twilio.WaitForSent(ctx, before+1); err != nil {
		t.Fatal("no SMS after the patient opted back in: ", err)
	}
}
