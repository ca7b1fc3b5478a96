package e2e

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/careline/careline/internal/localstack"
	"github.com/careline/careline/internal/testenv"
	"github.com/careline/careline/internal/twiliofake"
)

// TestNewPatientFloodIsHeldNotDropped: past network.inbound.max_new_patients_per_hour, first
// texts from unknown numbers open no room and ping nobody; they are kept, the admin is told
// once in words, a room staff open is not limited, and after the admin raises the limit and
// restarts careline every held text (a held number's second text too) reaches its room.
func TestNewPatientFloodIsHeldNotDropped(t *testing.T) {
	s := startStack(t, stackOptions{Network: func(network map[string]any) {
		network["inbound"] = map[string]any{"max_new_patients_per_hour": 2}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s.mustLogin(ctx)

	numbers := []string{"+14155550171", "+14155550172", "+14155550173", "+14155550174"}
	for _, number := range numbers {
		if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: number, To: clinicNumber, Body: "first text from " + number}); err != nil || status != 200 {
			t.Fatalf("webhook: %d %v", status, err)
		}
	}
	notice, err := s.admin.WaitForMessage(ctx, func(m testenv.Message) bool {
		return m.Notice && strings.Contains(m.Body, "max_new_patients_per_hour")
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, words := range []string{"No text is lost", "raise the limit"} {
		if !strings.Contains(notice.Body, words) {
			t.Errorf("the admin's notice lacks %q: %s", words, notice.Body)
		}
	}
	bridged := func() map[string]bool {
		got := map[string]bool{}
		for _, m := range s.nurse.Messages() {
			if strings.HasPrefix(m.Body, "first text from ") || strings.HasPrefix(m.Body, "second text from ") {
				got[m.Body] = true
			}
		}
		return got
	}
	waitBridged := func(n int) map[string]bool {
		t.Helper()
		for {
			if got := bridged(); len(got) >= n {
				return got
			}
			select {
			case <-ctx.Done():
				t.Fatalf("in rooms: %v, want %d texts", bridged(), n)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	first := waitBridged(2)

	// Staff opening a room for a new number is not limited.
	s.createDM(ctx, "+14155550179")

	var held string
	for _, number := range numbers {
		if !first["first text from "+number] {
			held = number
		}
	}
	if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: held, To: clinicNumber, Body: "second text from " + held}); err != nil || status != 200 {
		t.Fatalf("webhook: %d %v", status, err)
	}
	db, err := sql.Open(s.dbDriver, s.dbURI)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for {
		var n int
		if err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM careline_inbound WHERE state='pending' AND last_error LIKE 'held: %'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d texts held, want 3", n)
		case <-time.After(100 * time.Millisecond):
		}
	}
	// A STOP that is itself held takes effect at once: an opt-out does not wait for a place.
	if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: "+14155550175", To: clinicNumber, Body: "STOP"}); err != nil || status != 200 {
		t.Fatalf("webhook: %d %v", status, err)
	}
	for {
		var held, optedOut int
		if err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM careline_inbound WHERE state='pending' AND last_error LIKE 'held: %'`).Scan(&held); err != nil {
			t.Fatal(err)
		}
		if err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM careline_patient WHERE opted_out_at IS NOT NULL`).Scan(&optedOut); err != nil {
			t.Fatal(err)
		}
		if held == 4 && optedOut == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d texts held and %d patients opted out, want the STOP held and applied (4 and 1)", held, optedOut)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if got := bridged(); len(got) != 2 {
		t.Fatalf("in rooms while the limit is used up: %v", got)
	}

	s.StopBridge()
	if err = s.EditConfig(func(cfg map[string]any) {
		localstack.SetPath(cfg, 10, "network", "inbound", "max_new_patients_per_hour")
	}); err != nil {
		t.Fatal(err)
	}
	if err = s.StartBridge(ctx); err != nil {
		t.Fatal(err)
	}
	got := waitBridged(len(numbers) + 1)
	for _, number := range numbers {
		if !got["first text from "+number] {
			t.Errorf("the first text from %s never reached its room", number)
		}
	}
	notices := 0
	for _, m := range s.admin.Messages() {
		if m.Notice && strings.Contains(m.Body, "max_new_patients_per_hour") {
			notices++
		}
	}
	if notices != 1 {
		t.Errorf("%d notices to the admin, want one", notices)
	}
}
