package e2e

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestAuditTrailOfAConversation: a conversation leaves an intact, content-free audit trail
// that `careline audit verify` accepts and `careline audit export` writes out.
func TestAuditTrailOfAConversation(t *testing.T) {
	s := startStack(t, stackOptions{})
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber, Body: "canary-inbound-7731"}); err != nil || status != 200 {
		t.Fatalf("webhook: %d %v", status, err)
	}
	first, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return m.Body == "canary-inbound-7731" })
	if err != nil {
		t.Fatal(err)
	}
	if _, err = s.nurse.SendText(ctx, first.RoomID, "canary-outbound-5519"); err != nil {
		t.Fatal(err)
	}
	if _, err = s.Twilio.WaitForSent(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// The delivery status callbacks come shortly after; wait for them in the export.
	var export string
	for ctx.Err() == nil {
		out, err := exec.CommandContext(ctx, carelineBin, "audit", "export", "-c", s.ConfigPath, "--format", "jsonl").Output()
		if err != nil {
			t.Fatalf("audit export: %v", err)
		}
		if export = string(out); strings.Contains(export, "delivered") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, action := range []string{`"login"`, `"message.received"`, `"message.sent"`, `"delivery.status"`} {
		if !strings.Contains(export, action) {
			t.Errorf("the audit export has no %s entry:\n%s", action, export)
		}
	}
	for _, secret := range []string{"canary-inbound-7731", "canary-outbound-5519", "4155550123"} {
		if strings.Contains(export, secret) {
			t.Errorf("the audit trail contains %q", secret)
		}
	}
	// Neither careline's database nor the homeserver's holds the content or the full number
	// in readable form, anywhere (bridgev2's tables and the crypto store included).
	files, _ := filepath.Glob(filepath.Join(s.Dir, "careline.db*"))
	hsFiles, _ := filepath.Glob(filepath.Join(s.Dir, "dendrite", "*.db*"))
	if len(files) == 0 || len(hsFiles) == 0 {
		t.Fatalf("no database files found in %s", s.Dir)
	}
	for _, f := range append(files, hsFiles...) {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a rollback journal SQLite removed since the listing
		} else if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"canary-inbound-7731", "canary-outbound-5519", "4155550123"} {
			if strings.Contains(string(data), secret) {
				t.Errorf("%s contains %q in readable form", filepath.Base(f), secret)
			}
		}
	}
	out, err := exec.CommandContext(ctx, carelineBin, "audit", "verify", "-c", s.ConfigPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "intact") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
}
