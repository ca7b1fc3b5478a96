package twilioapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
)

// Media are fetched with the account's credentials only from Twilio's hosts: a webhook naming
// another host, or a redirect to one, gets nothing and sends the credentials nowhere.
func TestFetchMediaOnlyFromTwilioHosts(t *testing.T) {
	var elsewhereHits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhereHits.Add(1)
		_, _ = w.Write([]byte("stolen"))
	}))
	defer elsewhere.Close()
	// The configured API base (as in tests and regional edges) redirecting off Twilio.
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/cdn/x", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	c, err := New(redirector.URL, sid, token)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err = c.FetchMedia(ctx, elsewhere.URL+"/media/ME1"); !errors.Is(err, ErrMediaHost) {
		t.Fatalf("another host: %v", err)
	}
	if _, _, err = c.FetchMedia(ctx, redirector.URL+"/media/ME1"); err == nil {
		t.Fatal("followed a redirect off Twilio's hosts")
	}
	if n := elsewhereHits.Load(); n != 0 {
		t.Fatalf("the other host was asked %d times", n)
	}

	for raw, want := range map[string]bool{
		"https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1": true,
		"https://mms.twiliocdn.com/AC1/abc":                                     true,
		"https://s3-external-1.amazonaws.com/media.twiliocdn.com/AC1/abc":       true,
		"https://s3-external-1.amazonaws.com/attacker-bucket/abc":               false,
		"http://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1":  false, // not https
		"https://api.twilio.com:8443/x":                                         false,
		"https://api.twilio.com.evil.example/x":                                 false,
		"https://eviltwilio.com/x":                                              false,
		"https://user:pw@api.twilio.com/x":                                      false,
		"https://169.254.169.254/latest/meta-data/":                             false,
		redirector.URL + "/media/ME1":                                           true, // the configured api_url
		"https://" + mustHost(t, redirector.URL) + "/x":                         false,
	} {
		u, _ := url.Parse(raw)
		if got := c.mediaHostAllowed(u); got != want {
			t.Errorf("mediaHostAllowed(%s) = %v, want %v", raw, got, want)
		}
	}
}

func mustHost(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
