package metrics

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/careline/careline/internal/pgtest"
)

func scrape(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestScrape(t *testing.T) {
	m := New()
	m.Message(In, ModeSMS, ResultOK)
	m.Message(In, ModeSMS, ResultOK)
	m.Message(Out, ModeSecure, ResultRefused)
	m.Code(CodeSent)
	m.OutboxRetries.Inc()
	m.WatchBacklog("outbox", "Texts waiting to go to Twilio", func(context.Context) (Backlog, error) {
		return Backlog{Depth: 3, OldestAge: 90 * time.Second}, nil
	})
	wh := m.TimeWebhook("sms", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) })
	wh(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/twilio/sms", nil))
	portal := m.TimePortal(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	portal.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/l/SECRET-LINK-TOKEN", nil))
	portal.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/attachment/att-1234", nil))

	code, body := scrape(t, m.Handler(), "/metrics")
	if code != http.StatusOK {
		t.Fatalf("scrape: %d", code)
	}
	for _, want := range []string{
		`careline_messages_total{direction="in",mode="sms",result="ok"} 2`,
		`careline_messages_total{direction="out",mode="secure",result="refused"} 1`,
		`careline_portal_codes_total{event="sent"} 1`,
		`careline_outbox_retries_total 1`,
		`careline_outbox_depth 3`,
		`careline_outbox_oldest_age_seconds 90`,
		`careline_webhook_duration_seconds_count{code="4xx",kind="sms"} 1`,
		`careline_portal_request_duration_seconds_count{code="2xx",route="link"} 1`,
		`careline_portal_request_duration_seconds_count{code="2xx",route="attachment"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the scrape lacks %s", want)
		}
	}
	// Paths carry tokens and IDs: they never become labels.
	for _, secret := range []string{"SECRET-LINK-TOKEN", "att-1234"} {
		if strings.Contains(body, secret) {
			t.Errorf("the scrape shows %q", secret)
		}
	}
}

func TestReadinessNamesWhatIsWrong(t *testing.T) {
	var rd Readiness
	rd.Add("homeserver", func(context.Context) error { return nil })
	if code, body := scrape(t, &rd, "/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("all well: %d %q", code, body)
	}
	rd.Add("twilio", func(context.Context) error { return errors.New("401 from Twilio") })
	rd.Add("backlog", BacklogCheck("outbox", func(context.Context) (Backlog, error) {
		return Backlog{Depth: 7, OldestAge: 2 * time.Minute}, nil
	}))
	code, body := scrape(t, &rd, "/readyz")
	if code != http.StatusServiceUnavailable || body != "backlog: the oldest of 7 items in the outbox has waited 2m0s (more than 1m0s)\ntwilio: 401 from Twilio\n" {
		t.Fatalf("failing: %d %q", code, body)
	}
	rd.Add("backlog", BacklogCheck("outbox", func(context.Context) (Backlog, error) { return Backlog{Depth: 7, OldestAge: 59 * time.Second}, nil }))
	rd.Add("twilio", func(context.Context) error { return nil })
	if code, _ := scrape(t, &rd, "/readyz"); code != http.StatusOK {
		t.Fatalf("a young backlog: %d", code)
	}
	// A check that hangs is cut off, and /readyz still answers.
	rd.Add("hangs", func(ctx context.Context) error { <-ctx.Done(); return nil })
	if code, body := scrape(t, &rd, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "hangs: context deadline exceeded") {
		t.Fatalf("hanging check: %d %q", code, body)
	}
}

// /readyz answers 503 naming the database while a real PostgreSQL database is gone, and
// 200 while it answers.
func TestReadinessWhileDatabaseDown(t *testing.T) {
	base := os.Getenv("CARELINE_TEST_POSTGRES")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	admin, err := sql.Open(pgtest.Driver, base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "careline_ready_test_" + hex.EncodeToString(b[:])
	if _, err = admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("PostgreSQL is part of what is tested: %v", err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	u, _ := url.Parse(base)
	u.Path = "/" + name
	db, err := sql.Open(pgtest.Driver, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rd Readiness
	rd.Add("database", DatabaseCheck(db))
	if code, body := scrape(t, &rd, "/readyz"); code != http.StatusOK {
		t.Fatalf("database up: %d %q", code, body)
	}
	if _, err = admin.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	code, body := scrape(t, &rd, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "database: the database does not answer") {
		t.Fatalf("database dropped: %d %q", code, body)
	}
}
