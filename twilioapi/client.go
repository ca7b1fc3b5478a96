// Package twilioapi is careline's narrow window onto Twilio's REST API, through twilio-go.
// Everything careline asks of Twilio goes through here, so tests and regional edges can
// point it at another base URL.
package twilioapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twilio/twilio-go"
	twclient "github.com/twilio/twilio-go/client"
)

// Client calls Twilio for one account.
type Client struct {
	AccountSID string
	authToken  string
	rest       *twilio.RestClient
	http       *http.Client
	media      *http.Client // follows redirects only to Twilio's media hosts
	apiBase    *url.URL
}

// New checks the credentials' shape and builds a client that sends every *.twilio.com
// request to apiURL instead (twilio-go has no base-URL setting of its own).
func New(apiURL, accountSID, authToken string) (*Client, error) {
	if !isAlnum(accountSID) || !strings.HasPrefix(accountSID, "AC") || len(accountSID) != 34 {
		return nil, errors.New("the account SID must be \"AC\" followed by 32 letters and digits (Twilio console → Account info)")
	}
	if !isAlnum(authToken) || len(authToken) < 16 {
		return nil, errors.New("the auth token must be letters and digits only (Twilio console → Account info)")
	}
	apiBase, err := url.Parse(strings.TrimRight(apiURL, "/"))
	if err != nil || apiBase.Host == "" {
		return nil, fmt.Errorf("the Twilio API URL %q is not a URL", apiURL)
	}
	hc := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &rewriteTransport{base: apiBase, next: newTransport()},
	}
	base := &twclient.Client{Credentials: twclient.NewCredentials(accountSID, authToken), HTTPClient: hc}
	// With a custom client, twilio-go takes the account SID for request paths from it.
	base.SetAccountSid(accountSID)
	rest := twilio.NewRestClientWithParams(twilio.ClientParams{
		Username:   accountSID,
		Password:   authToken,
		AccountSid: accountSID,
		Client:     base,
	})
	c := &Client{
		AccountSID: accountSID,
		authToken:  authToken,
		rest:       rest,
		http:       hc,
		apiBase:    apiBase,
	}
	c.media = &http.Client{
		Timeout:   hc.Timeout,
		Transport: hc.Transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if !c.mediaHostAllowed(req.URL) {
				return fmt.Errorf("refusing a redirect to %s: not one of Twilio's media hosts", req.URL.Host)
			}
			return nil
		},
	}
	return c, nil
}

// newTransport keeps enough idle connections per host: Go's default of 2 cuts throughput
// about threefold when many messages go out at once.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
	}
}

// rewriteTransport sends requests for Twilio's hosts to the configured base URL.
type rewriteTransport struct {
	base *url.URL
	next http.RoundTripper
}

func (rt *rewriteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == "twilio.com" || strings.HasSuffix(req.URL.Host, ".twilio.com") {
		req = req.Clone(req.Context())
		req.URL.Scheme = rt.base.Scheme
		req.URL.Host = rt.base.Host
		req.URL.Path = rt.base.Path + req.URL.Path
		req.Host = rt.base.Host
	}
	return rt.next.RoundTrip(req)
}

func isAlnum(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}
