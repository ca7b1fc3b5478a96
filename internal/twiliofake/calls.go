package twiliofake

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// VoiceURL returns the voice webhook URL configured for an owned number ("" if none).
func (s *Server) VoiceURL(phone string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.lookupNumberLocked(phone); n != nil {
		return n.voiceURL
	}
	return ""
}

// Call rings one of the account's numbers from a caller, as Twilio does when a call comes
// in: a signed POST of the voice webhook. It returns the HTTP status and the TwiML answer.
// from may be "Anonymous" for a withheld caller ID.
func (s *Server) Call(ctx context.Context, voiceURL, from, to string) (int, string, error) {
	if from == "" || to == "" {
		return 0, "", errors.New("twiliofake: a call needs From and To")
	}
	params := url.Values{
		"AccountSid": {s.opts.AccountSID}, "CallSid": {newSid("CA")}, "From": {from}, "To": {to},
		"Caller": {from}, "Called": {to}, "CallStatus": {"ringing"}, "Direction": {"inbound"}, "ApiVersion": {"2010-04-01"},
	}
	status, body, err := s.postSigned(ctx, http.MethodPost, voiceURL, params)
	return status, string(body), err
}
