package loadtest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/twilio/twilio-go/client"

	"github.com/careline/careline/internal/localstack"
)

// The client keeps connections open between webhooks, sends again on a new connection when
// the server closed an idle one, honours Connection: close, and every webhook it sends passes
// Twilio's own validator on the server's side.
func TestWebhookClientReusesAndRecoversConnections(t *testing.T) {
	var mu sync.Mutex
	requests, conns := 0, 0
	var bad []string
	validator := client.NewRequestValidator(localstack.AuthToken)
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		params := map[string]string{}
		for k, v := range r.PostForm {
			params[k] = v[0]
		}
		mu.Lock()
		requests++
		if !validator.Validate("http://"+r.Host+r.URL.RequestURI(), params, r.Header.Get("X-Twilio-Signature")) {
			bad = append(bad, params["Body"])
		}
		mu.Unlock()
		if params["Body"] == "close" {
			w.Header().Set("Connection", "close")
		}
		_, _ = w.Write([]byte("<Response/>"))
	})
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	counts := func() (int, int) { mu.Lock(); defer mu.Unlock(); return requests, conns }

	target := srv.URL + "/twilio/AC1-15005550006/sms"
	hooks, err := NewWebhooks(target)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newWebhookClient(context.Background(), hooks, target, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	post := func(body string) {
		t.Helper()
		if status, err := c.Post(PatientNumber(1), body); err != nil || status != http.StatusOK {
			t.Fatalf("posting %q: HTTP %d, %v", body, status, err)
		}
	}
	post("one")
	post("two")
	if r, n := counts(); r != 2 || n != 1 {
		t.Fatalf("two webhooks in a row: %d requests on %d connections, want 2 on 1", r, n)
	}
	srv.CloseClientConnections()
	post("after the server closed the idle connection")
	if r, n := counts(); r != 3 || n != 2 {
		t.Fatalf("after the server closed the connection: %d requests on %d connections, want 3 on 2", r, n)
	}
	post("close")
	post("after Connection: close")
	if r, n := counts(); r != 5 || n != 3 {
		t.Fatalf("after Connection: close: %d requests on %d connections, want 5 on 3", r, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("signatures twilio-go rejects: %q", bad)
	}
}
