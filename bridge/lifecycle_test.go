package bridge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"maunium.net/go/mautrix/bridgev2"

	"github.com/careline/careline/store"
)

// TestShutdownAnswers503AtOnce: once shutdown begins the public listener takes nothing it
// could no longer bridge; Twilio retries a 503, a browser shows it.
func TestShutdownAnswers503AtOnce(t *testing.T) {
	c := &Connector{Bridge: &bridgev2.Bridge{}}
	served := 0
	h := c.whileAccepting(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/reply", nil))
	if rec.Code != http.StatusOK || served != 1 {
		t.Fatalf("before shutdown: HTTP %d, served %d", rec.Code, served)
	}
	c.beginShutdown()
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/reply", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || served != 1 {
		t.Fatalf("after shutdown began: HTTP %d (Retry-After %q), served %d", rec.Code, rec.Header().Get("Retry-After"), served)
	}
}

// TestLogoutStopsTheSender: a deleted login must not keep texting patients (issue 9).
func TestLogoutStopsTheSender(t *testing.T) {
	f := newSenderFixture(t)
	ctx := context.Background()
	f.client.startSender()
	f.client.LogoutRemote(ctx)
	if f.client.sender != nil {
		t.Fatal("the sender still runs after the login was deleted")
	}
	if err := f.client.enqueue(ctx, &store.Outgoing{PatientID: "p1", Kind: store.KindMessage, Body: "after logout"}); err != nil {
		t.Fatal(err)
	}
	f.client.wakeSender()
	if texts, err := f.store.ClaimDue(ctx, "L", 10, true); err != nil || len(texts) != 1 {
		t.Fatalf("the text should still wait in the outbox, untouched: %d, %v", len(texts), err)
	}
}
