package twilioapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// newWebhookSink is a stand-in for careline's webhook endpoint that hands over what it got.
func newWebhookSink(t *testing.T, recv chan<- url.Values) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		recv <- r.PostForm
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
