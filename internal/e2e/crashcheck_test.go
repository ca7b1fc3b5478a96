package e2e

import (
	"bytes"
	"net/http"
	"testing"

	"maunium.net/go/mautrix/event"

	"github.com/careline/careline/internal/testenv"
	"github.com/careline/careline/internal/twiliofake"
)

// TestPatientEventsCarryTheirReceivedTime checks what careline's crash check relies on
// (bridge/dedupe.go): every event of a patient's message, text and media, is sent by the
// patient's ghost with origin_server_ts equal to when careline received the message, as
// bridgev2 asks with the appservice `ts` and Dendrite keeps; both are readable without
// decrypting the event.
func TestPatientEventsCarryTheirReceivedTime(t *testing.T) {
	s := startStack(t, stackOptions{})
	keepLogOnFailure(t, s)
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	hello := s.patientTexts(ctx, patientNumber, "hello before the photos")
	photo := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{9}, 512)...)
	status, sid, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber,
		Body: "two photos", Media: []twiliofake.Media{{ContentType: "image/png", Data: photo}, {ContentType: "image/png", Data: photo}}})
	if err != nil || status != http.StatusOK {
		t.Fatalf("webhook: %d %v", status, err)
	}
	isPart := func(m testenv.Message) bool {
		return m.RoomID == hello.RoomID && (m.Body == "two photos" || m.MsgType == event.MsgImage)
	}
	if err = waitUntil(ctx, "the message's three parts", func() bool {
		n := 0
		for _, m := range s.nurse.Messages() {
			if isPart(m) {
				n++
			}
		}
		return n >= 3
	}); err != nil {
		t.Fatal(err)
	}
	var receivedAt int64
	if err = s.openDB(t).QueryRowContext(ctx, `SELECT received_at FROM careline_inbound WHERE message_id=$1`, sid).Scan(&receivedAt); err != nil {
		t.Fatal(err)
	}
	for _, m := range s.nurse.Messages() {
		if !isPart(m) {
			continue
		}
		if !m.Encrypted || m.Sender != hello.Sender {
			t.Errorf("part %q: encrypted %v, sender %s, want encrypted from the patient's ghost %s", m.Body, m.Encrypted, m.Sender, hello.Sender)
		}
		if m.Event.Timestamp != receivedAt {
			t.Errorf("part %q: origin_server_ts %d, want careline's received time %d", m.Body, m.Event.Timestamp, receivedAt)
		}
	}
}
