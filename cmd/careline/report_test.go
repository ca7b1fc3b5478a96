package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/internal/dbtest"
	"github.com/careline/careline/store"
	"github.com/careline/careline/teaminbox"
)

// TestReportCommand: `careline report` prints the numbers of a known day from the bridge's
// database, and refuses a bad date or a config without a time zone in words.
func TestReportCommand(t *testing.T) {
	auditBackends(t, func(t *testing.T, b auditBackend) {
		ctx := context.Background()
		db, err := dbutil.NewWithDialect(b.uri, b.dbType)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		st := store.New(db, dbtest.Keyring(t), zerolog.Nop())
		inbox := teaminbox.New(db, zerolog.Nop())
		if err = st.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		if err = inbox.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		if err = audit.New(db, audit.KeyFromSecret(testIdentityKey), zerolog.Nop()).Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		day := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
		_, _ = st.GetOrCreatePatient(ctx, "p1", "L", "+14155550123")
		for i, fromPatient := range []bool{true, true, false} {
			m := &store.Message{ID: string(rune('a' + i)), PatientID: "p1", FromPatient: fromPatient, Channel: store.ChannelSMS,
				Body: "secret words", Status: store.StatusReceived, CreatedAt: day}
			if err = st.SaveMessage(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		_, _, _ = inbox.PatientWrote(ctx, "p1", "!r1", day)
		_, _ = inbox.StaffReplied(ctx, "p1", "!r1", "@lee:clinic.example", day.Add(5*time.Minute))

		path := writeConfig(t, b, testIdentityKey)
		var stdout, stderr bytes.Buffer
		if code := runReport(ctx, []string{"-c", path, "--since", "2026-11-02", "--until", "2026-11-02"}, &stdout, &stderr); code != 1 ||
			!strings.Contains(stderr.String(), "network.timezone") {
			t.Fatalf("without a time zone: exit %d, %q", code, stderr.String())
		}
		raw, _ := os.ReadFile(path)
		if err = os.WriteFile(path, []byte(strings.Replace(string(raw), "network:\n", "network:\n    timezone: UTC\n", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		stdout.Reset()
		stderr.Reset()
		if code := runReport(ctx, []string{"--since", "2026-11-02", "--until", "2026-11-02", "-c", path}, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		for _, want := range []string{"Messages in: 2", "Messages out: 1", "First response: median 5m00s, p90 5m00s (1 reply)",
			"@lee:clinic.example: median 5m00s", "Unanswered now: 0", "Failed deliveries: 0", "Opt-outs: 0"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("report lacks %q:\n%s", want, stdout.String())
			}
		}
		if strings.Contains(stdout.String(), "secret") || strings.Contains(stdout.String(), "0123") {
			t.Errorf("the report shows content or a number:\n%s", stdout.String())
		}
		stderr.Reset()
		if code := runReport(ctx, []string{"--since", "yesterday", "-c", path}, &stdout, &stderr); code != 1 ||
			!strings.Contains(stderr.String(), `--since "yesterday" is not a date written YYYY-MM-DD`) {
			t.Fatalf("bad date: exit %d, %q", code, stderr.String())
		}
	})
}
