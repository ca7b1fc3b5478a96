package webhookout

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbtest"
)

func TestSignVerify(t *testing.T) {
	body := []byte(`{"type":"appointment.confirmed"}`)
	sig := Sign("s3cret", body)
	// Computed independently: printf '%s' '{"type":"appointment.confirmed"}' | openssl dgst -sha256 -hmac s3cret
	if sig != "sha256=0d99552429ec17504366b9a0d2c6ee37036163cdf1ebc678fe46ca1da254db13" || !Verify("s3cret", body, sig) {
		t.Fatalf("signature %s does not match openssl's", sig)
	}
	if Verify("other", body, sig) || Verify("s3cret", append(body, ' '), sig) || Verify("s3cret", body, "sha256=00") {
		t.Fatal("a wrong secret, body or signature verified")
	}
}

// TestRetriesUntil2xx: the receiver fails twice; the event is delivered on the third attempt,
// after the backoff, with a valid signature, and never again after that.
func TestRetriesUntil2xx(t *testing.T) {
	dbtest.ForEach(t, "careline_webhookout", func(t *testing.T, db *dbutil.Database) {
		var mu sync.Mutex
		var bodies [][]byte
		calls := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			calls++
			if !Verify("s3cret", body, r.Header.Get(SignatureHeader)) {
				t.Errorf("bad signature %q", r.Header.Get(SignatureHeader))
			}
			if calls <= 2 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			bodies = append(bodies, body)
		}))
		defer srv.Close()
		q := New(db, srv.URL, "s3cret", zerolog.Nop())
		now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		q.Now = func() time.Time { return now }
		ctx := context.Background()
		if err := q.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		if err := q.Add(ctx, Event{Type: "appointment.confirmed", AppointmentID: "a1", AnsweredVia: "sms"}); err != nil {
			t.Fatal(err)
		}
		if wait := q.deliverDue(ctx); wait != 2*time.Second || calls != 1 {
			t.Fatalf("after a 503: wait %v, calls %d", wait, calls)
		}
		if q.deliverDue(ctx); calls != 1 {
			t.Fatal("retried before the backoff")
		}
		now = now.Add(2 * time.Second)
		if wait := q.deliverDue(ctx); wait != 4*time.Second || calls != 2 {
			t.Fatalf("second attempt: wait %v, calls %d", wait, calls)
		}
		now = now.Add(4 * time.Second)
		q.deliverDue(ctx)
		now = now.Add(time.Hour)
		q.deliverDue(ctx)
		if calls != 3 || len(bodies) != 1 {
			t.Fatalf("calls %d, delivered %d", calls, len(bodies))
		}
		var e Event
		if err := json.Unmarshal(bodies[0], &e); err != nil || e.Type != "appointment.confirmed" || e.AppointmentID != "a1" || e.ID == "" {
			t.Fatalf("delivered %s", bodies[0])
		}
	})
}
