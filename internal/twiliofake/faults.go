package twiliofake

import (
	"net/http"
	"time"
)

// Fault is an error Messages.create answers instead of accepting a message.
type Fault struct {
	Status  int    // HTTP status, e.g. 429 or 500; 0 means 500
	Code    int    // Twilio error code, e.g. 20429; 0 means 20500
	Message string // empty means the status text
	Times   int    // how many create calls fail; 0 = until ClearFaults
}

type faultState struct {
	send             *Fault
	sendLeft         int // remaining failures when send.Times > 0
	deliveryFailures map[string]int

	// statusFirst posts a new message's status callbacks before answering the create call,
	// which real Twilio can do when its answer is slow to reach the client.
	statusFirst bool

	ratePerSec float64
	tokens     float64
	lastRefill time.Time

	// held: status transitions wait for ReleaseStatus (statusgate.go).
	held  bool
	gates map[string]chan struct{}
}

// FailNextSends makes the next f.Times Messages.create calls (all of them
// when Times is 0) answer f instead. It replaces any earlier send fault.
func (s *Server) FailNextSends(f Fault) {
	if f.Status == 0 {
		f.Status = http.StatusInternalServerError
	}
	if f.Code == 0 {
		f.Code = 20500
	}
	if f.Message == "" {
		f.Message = http.StatusText(f.Status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.send = &f
	s.faults.sendLeft = f.Times
}

// ClearFaults removes send faults, delivery failures and the rate limit.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = faultState{}
}

// FailDeliveryTo makes messages created later to number end with errorCode:
// carrier errors (30003, 30005-30008) as "sent" then "undelivered", any
// other code as "failed" without being sent.
func (s *Server) FailDeliveryTo(number string, errorCode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.deliveryFailures == nil {
		s.faults.deliveryFailures = map[string]int{}
	}
	if errorCode == 0 {
		delete(s.faults.deliveryFailures, number)
		return
	}
	s.faults.deliveryFailures[number] = errorCode
}

// PostStatusBeforeAnswer makes Messages.create post the message's status callbacks (all of
// them, in order) before it answers, until ClearFaults.
func (s *Server) PostStatusBeforeAnswer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.statusFirst = true
}

// SetRateLimit makes Messages.create answer 429 / 20429 when called faster
// than perSecond (token bucket, burst of one second's worth). Zero or less
// removes the limit. Only sends are limited so that polling in tests does
// not eat the budget.
func (s *Server) SetRateLimit(perSecond float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.ratePerSec = perSecond
	s.faults.tokens = max(perSecond, 1)
	s.faults.lastRefill = time.Now()
}

func (s *Server) takeSendFault() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults.send
	if f == nil {
		return Fault{}, false
	}
	if f.Times > 0 {
		s.faults.sendLeft--
		if s.faults.sendLeft <= 0 {
			s.faults.send = nil
		}
	}
	return *f, true
}

func (s *Server) allowSend() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := &s.faults
	if fs.ratePerSec <= 0 {
		return true
	}
	now := time.Now()
	burst := max(fs.ratePerSec, 1)
	fs.tokens = min(burst, fs.tokens+now.Sub(fs.lastRefill).Seconds()*fs.ratePerSec)
	fs.lastRefill = now
	if fs.tokens < 1 {
		return false
	}
	fs.tokens--
	return true
}
