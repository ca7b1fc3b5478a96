// Package twiliofake is a local, Twilio-compatible HTTP server. careline's
// integration tests point twilio-go at it, and the local demo uses its watch
// page as an SMS sink. It implements only the part of the 2010-04-01 REST API
// careline uses (Messages, Media, IncomingPhoneNumbers, Account fetch), shaped
// after Twilio's OpenAPI description, plus signed webhooks in the other
// direction.
package twiliofake

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a fake Twilio account.
type Options struct {
	// AccountSID is "AC" + 32 hex digits; generated when empty. Requests with
	// other credentials get 401 with Twilio's error 20003.
	AccountSID string
	// AuthToken signs webhooks and checks basic auth; generated when empty.
	AuthToken string
	// Numbers are the E.164 numbers the account owns (IncomingPhoneNumbers);
	// each gets a PN sid. Messages may only be sent from these.
	Numbers []string
	// StatusDelay is the pause between status transitions of an outbound
	// message (queued -> sent -> delivered/undelivered/failed). When the
	// create request had StatusCallback, a signed callback is posted after
	// each transition. Zero means 50ms.
	StatusDelay time.Duration
	// DisableOptOut turns off Twilio's default opt-out handling. When enabled
	// (the default, as on a real account), an inbound STOP keyword blocks
	// further sends from that number to the patient with error 21610, and
	// START/UNSTOP/YES lifts the block.
	DisableOptOut bool
	// WebhookClient sends inbound webhooks and status callbacks. Nil means a
	// client with Twilio's 15 s timeout that does not follow redirects.
	WebhookClient *http.Client
}

// Server is a running fake. All methods are safe for concurrent use.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:PORT (no trailing slash).
	URL string

	opts     Options
	ln       net.Listener
	srv      *http.Server
	hc       *http.Client
	ctx      context.Context
	cancel   context.CancelFunc
	bg       sync.WaitGroup
	bgMu     sync.Mutex // guards closed against bg.Add racing bg.Wait
	closed   bool
	requests atomic.Int64

	mu       sync.Mutex
	messages []*message          // creation order
	bySid    map[string]*message // message sid -> message
	numbers  []*number
	media    map[string]*mediaItem // ME sid -> media
	cdn      map[string]string     // one-off CDN token -> ME sid
	optedOut map[optOutKey]bool
	faults   faultState
	changed  chan struct{} // closed and replaced whenever a message is added
}

var (
	accountSidRe = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	e164Re       = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

// Start listens on 127.0.0.1 on a free port.
func Start(opts Options) (*Server, error) { return StartAt("127.0.0.1:0", opts) }

// StartAt listens on addr, which must be a loopback address ("localhost" is
// mapped to 127.0.0.1): the fake accepts forged-looking credentials by design
// and must never be reachable from the network.
func StartAt(addr string, opts Options) (*Server, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("twiliofake: bad listen address %q: %w", addr, err)
	}
	if host == "" || host == "localhost" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return nil, fmt.Errorf("twiliofake: refusing to listen on %q: only 127.0.0.1 is allowed", addr)
	}
	if err := normalizeOptions(&opts); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("twiliofake: %w", err)
	}
	s := &Server{
		URL:      "http://" + ln.Addr().String(),
		opts:     opts,
		ln:       ln,
		bySid:    map[string]*message{},
		media:    map[string]*mediaItem{},
		cdn:      map[string]string{},
		optedOut: map[optOutKey]bool{},
		changed:  make(chan struct{}),
	}
	s.hc = opts.WebhookClient
	if s.hc == nil {
		s.hc = &http.Client{
			Timeout: 15 * time.Second, // what Twilio waits for a webhook
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	now := time.Now().UTC()
	for _, n := range opts.Numbers {
		s.numbers = append(s.numbers, newNumber(n, now))
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func normalizeOptions(o *Options) error {
	if o.AccountSID == "" {
		o.AccountSID = newSid("AC")
	}
	if !accountSidRe.MatchString(o.AccountSID) {
		return fmt.Errorf("twiliofake: AccountSID %q is not AC + 32 hex digits", o.AccountSID)
	}
	if o.AuthToken == "" {
		o.AuthToken = randomHex(16)
	}
	// twilio-go refuses credentials with anything but letters and digits, so
	// a fake that accepted them would hide a real failure.
	for _, r := range o.AuthToken {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return errors.New("twiliofake: AuthToken must contain only letters and digits")
		}
	}
	seen := map[string]bool{}
	for _, n := range o.Numbers {
		if !e164Re.MatchString(n) {
			return fmt.Errorf("twiliofake: number %q is not E.164", n)
		}
		if seen[n] {
			return fmt.Errorf("twiliofake: number %q listed twice", n)
		}
		seen[n] = true
	}
	if o.StatusDelay <= 0 {
		o.StatusDelay = 50 * time.Millisecond
	}
	return nil
}

// AccountSID returns the account SID (useful when it was generated).
func (s *Server) AccountSID() string { return s.opts.AccountSID }

// AuthToken returns the auth token (useful when it was generated).
func (s *Server) AuthToken() string { return s.opts.AuthToken }

// Close stops the listener and waits for pending status callbacks to stop.
func (s *Server) Close() error {
	s.bgMu.Lock()
	s.closed = true
	s.bgMu.Unlock()
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	s.bg.Wait()
	return err
}

// Requests returns how many REST requests (under /2010-04-01/ and /media/)
// the server has answered, including rejected ones.
func (s *Server) Requests() int { return int(s.requests.Load()) }

// goBackground runs f tied to the server's lifetime; after Close it is a
// no-op.
func (s *Server) goBackground(f func(ctx context.Context)) {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.closed {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f(s.ctx)
	}()
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/2010-04-01/", s.counted(s.serveAPI))
	mux.HandleFunc("GET /media/{sid}", s.counted(s.serveMediaContent))
	mux.HandleFunc("GET /cdn/{token}", s.serveCDN)
	mux.HandleFunc("GET /{$}", s.serveWatch)
	mux.HandleFunc("POST /ui/send", s.serveUISend)
	return mux
}

func (s *Server) counted(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		w.Header().Set("Twilio-Request-Id", newSid("RQ"))
		h(w, r)
	}
}

// authorized checks basic auth in constant time and answers 401 like Twilio
// when it fails.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	good := ok &&
		subtle.ConstantTimeCompare([]byte(user), []byte(s.opts.AccountSID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(s.opts.AuthToken)) == 1
	if !good {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
	}
	return good
}

// serveAPI routes /2010-04-01/Accounts/... by hand: ServeMux wildcards must
// span a whole segment, and Twilio's paths end in "{Sid}.json".
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/2010-04-01/Accounts/")
	if !ok {
		notFound(w, r)
		return
	}
	parts := strings.Split(rest, "/")
	// Accounts/{Sid}.json
	if len(parts) == 1 {
		sid, ok := strings.CutSuffix(parts[0], ".json")
		if !ok || sid != s.opts.AccountSID {
			notFound(w, r)
			return
		}
		s.handleAccount(w, r)
		return
	}
	if parts[0] != s.opts.AccountSID {
		// Twilio hides other accounts' resources rather than saying 403.
		notFound(w, r)
		return
	}
	parts = parts[1:]
	switch {
	case len(parts) == 1 && parts[0] == "Messages.json":
		switch r.Method {
		case http.MethodPost:
			s.handleCreateMessage(w, r)
		case http.MethodGet:
			s.handleListMessages(w, r)
		default:
			methodNotAllowed(w, r)
		}
	case len(parts) == 2 && parts[0] == "Messages" && strings.HasSuffix(parts[1], ".json"):
		s.handleMessage(w, r, strings.TrimSuffix(parts[1], ".json"))
	case len(parts) == 3 && parts[0] == "Messages" && parts[2] == "Media.json":
		s.handleListMedia(w, r, parts[1])
	case len(parts) == 4 && parts[0] == "Messages" && parts[2] == "Media":
		if sid, ok := strings.CutSuffix(parts[3], ".json"); ok {
			s.handleMediaResource(w, r, parts[1], sid)
		} else {
			// Without .json Twilio answers with the media itself.
			s.handleMediaContentREST(w, r, parts[1], parts[3])
		}
	case len(parts) == 1 && parts[0] == "IncomingPhoneNumbers.json":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, r)
			return
		}
		s.handleListNumbers(w, r)
	case len(parts) == 2 && parts[0] == "IncomingPhoneNumbers" && strings.HasSuffix(parts[1], ".json"):
		s.handleNumber(w, r, strings.TrimSuffix(parts[1], ".json"))
	default:
		notFound(w, r)
	}
}

func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r)
		return
	}
	base := "/2010-04-01/Accounts/" + s.opts.AccountSID
	created := formatTime(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	writeJSON(w, http.StatusOK, map[string]any{
		"auth_token":        s.opts.AuthToken,
		"date_created":      created,
		"date_updated":      created,
		"friendly_name":     "careline fake account",
		"owner_account_sid": s.opts.AccountSID,
		"sid":               s.opts.AccountSID,
		"status":            "active",
		"type":              "Full",
		"uri":               base + ".json",
		"subresource_uris": map[string]string{
			"messages":               base + "/Messages.json",
			"incoming_phone_numbers": base + "/IncomingPhoneNumbers.json",
		},
	})
}
