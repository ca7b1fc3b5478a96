package twiliofake

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
)

const (
	testSID    = "AC0123456789abcdef0123456789abcdef"
	testToken  = "0123456789abcdef0123456789abcdef"
	clinicNum  = "+15550001111"
	clinicNum2 = "+15550002222"
	patientNum = "+15557654321"
)

func startFake(t *testing.T, mod ...func(*Options)) *Server {
	t.Helper()
	opts := Options{
		AccountSID:  testSID,
		AuthToken:   testToken,
		Numbers:     []string{clinicNum, clinicNum2},
		StatusDelay: 10 * time.Millisecond,
	}
	for _, f := range mod {
		f(&opts)
	}
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rewriteTransport sends *.twilio.com requests to the fake, the way careline
// points twilio-go at its configured api_url.
type rewriteTransport struct {
	target *url.URL
	base   http.RoundTripper
}

func (rt rewriteTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if h := r.URL.Hostname(); h == "twilio.com" || strings.HasSuffix(h, ".twilio.com") {
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host, r.Host = rt.target.Scheme, rt.target.Host, rt.target.Host
	}
	return rt.base.RoundTrip(r)
}

func twilioClient(t *testing.T, s *Server, sid, token string) *twilio.RestClient {
	t.Helper()
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{
		Transport: rewriteTransport{target: target, base: http.DefaultTransport},
		Timeout:   10 * time.Second,
	}
	c := &client.Client{Credentials: client.NewCredentials(sid, token), HTTPClient: hc}
	c.SetAccountSid(sid)
	return twilio.NewRestClientWithParams(twilio.ClientParams{
		Username: sid, Password: token, AccountSid: sid, Client: c,
	})
}

// captured is one webhook request a receiver saw.
type captured struct {
	Method, Path string
	Header       http.Header
	Form         url.Values
}

// receiver is a stand-in for careline's public listener.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []captured
	notify  chan struct{}
	respond func(n int, w http.ResponseWriter) // n counts from 1
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{notify: make(chan struct{}, 100)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		if r.Method == http.MethodGet {
			form = r.URL.Query()
		}
		rc.mu.Lock()
		rc.got = append(rc.got, captured{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Form: form})
		n, respond := len(rc.got), rc.respond
		rc.mu.Unlock()
		select {
		case rc.notify <- struct{}{}:
		default: // wait polls anyway; never block the handler
		}
		if respond != nil {
			respond(n, w)
		} else {
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

// wait returns once at least n requests arrived, or fails the test.
func (rc *receiver) wait(t *testing.T, n int) []captured {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		rc.mu.Lock()
		got := append([]captured(nil), rc.got...)
		rc.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-rc.notify:
		case <-deadline:
			t.Fatalf("receiver got %d requests, want %d", len(got), n)
		}
	}
}

// flat turns a form into what twilio-go's RequestValidator takes.
func flat(v url.Values) map[string]string {
	m := map[string]string{}
	for k := range v {
		m[k] = v.Get(k)
	}
	return m
}

func validSignature(token, fullURL string, c captured) bool {
	rv := client.NewRequestValidator(token)
	return rv.Validate(fullURL, flat(c.Form), c.Header.Get("X-Twilio-Signature"))
}
