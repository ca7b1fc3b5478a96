package bridge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/careline/careline/metrics"
	"github.com/careline/careline/store"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

// TestBacklogInMetricsAndReadiness: the outbox's and inbox's depth and age are scraped, and
// /readyz says not ready, naming the queue, while a text has been due for over a minute.
func TestBacklogInMetricsAndReadiness(t *testing.T) {
	f := newInboundFixture(t)
	ctx := context.Background()
	f.c.Metrics = metrics.New()
	f.c.watchBacklogs()

	f.receive(t, "hello") // one message in the inbox, due now
	o := &store.Outgoing{LoginID: "L", PatientID: "p1", Kind: store.KindMessage, Body: "text", GiveUpAt: time.Now().Add(time.Hour)}
	if err := f.store.Enqueue(ctx, o); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, &f.c.readiness, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with fresh queues: %d %q", code, body)
	}

	// The text has been due for five minutes (Twilio refusing, or a stuck sender).
	if _, err := f.store.DB.Exec(ctx, `UPDATE careline_outbox SET next_attempt_at=$2 WHERE seq=$1`,
		o.Seq, time.Now().Add(-5*time.Minute).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, &f.c.readiness, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "backlog: the oldest of 1 items in the outbox has waited 5m") {
		t.Fatalf("/readyz with an old outbox: %d %q", code, body)
	}
	_, scrape := get(t, f.c.Metrics.Handler(), "/metrics")
	for _, want := range []string{"careline_outbox_depth 1", "careline_inbox_depth 1"} {
		if !strings.Contains(scrape, want+"\n") {
			t.Errorf("the scrape lacks %q", want)
		}
	}
	m := regexp.MustCompile(`(?m)^careline_outbox_oldest_age_seconds (\S+)$`).FindStringSubmatch(scrape)
	if m == nil {
		t.Error("the scrape lacks the outbox's age")
	} else if age, _ := strconv.ParseFloat(m[1], 64); age < 300 {
		t.Errorf("outbox age in the scrape: %s, want at least 300", m[1])
	}

	// A retry waiting for its backoff is not late: it is counted but not aged.
	if _, err := f.store.DB.Exec(ctx, `UPDATE careline_outbox SET next_attempt_at=$2 WHERE seq=$1`,
		o.Seq, time.Now().Add(5*time.Minute).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, &f.c.readiness, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with a text waiting for its retry: %d %q", code, body)
	}
}
