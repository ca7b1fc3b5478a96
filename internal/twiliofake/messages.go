package twiliofake

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SentMessage is an outbound message as the fake accepted it.
type SentMessage struct {
	Sid                 string
	AccountSID          string
	From                string
	To                  string
	Body                string
	MessagingServiceSID string
	StatusCallback      string
	MediaURLs           []string
	Created             time.Time
	// Direction is "outbound-api" for Messages.create and "outbound-reply"
	// for TwiML <Message> replies to an inbound webhook.
	Direction   string
	NumSegments int
}

type message struct {
	sid, accountSID     string
	from, to, body      string
	messagingServiceSID string
	statusCallback      string
	mediaURLs           []string // outbound MediaUrl
	mediaSids           []string // inbound media stored here
	direction           string
	status              string
	errorCode           int
	numSegments         int
	created, updated    time.Time
	sent                time.Time
}

const maxBodyLen = 1600

var messagingServiceRe = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)

// Sent returns copies of all outbound messages in creation order.
func (s *Server) Sent() []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sentLocked()
}

func (s *Server) sentLocked() []SentMessage {
	var out []SentMessage
	for _, m := range s.messages {
		if !strings.HasPrefix(m.direction, "outbound") {
			continue
		}
		out = append(out, SentMessage{
			Sid: m.sid, AccountSID: m.accountSID, From: m.from, To: m.to, Body: m.body,
			MessagingServiceSID: m.messagingServiceSID, StatusCallback: m.statusCallback,
			MediaURLs: slices.Clone(m.mediaURLs), Created: m.created,
			Direction: m.direction, NumSegments: m.numSegments,
		})
	}
	return out
}

// WaitForSent blocks until at least n outbound messages were accepted and
// returns them all, or fails when ctx ends.
func (s *Server) WaitForSent(ctx context.Context, n int) ([]SentMessage, error) {
	for {
		s.mu.Lock()
		// Counted without copying: a benchmark waits here on every message.
		count := 0
		for _, m := range s.messages {
			if strings.HasPrefix(m.direction, "outbound") {
				count++
			}
		}
		var sent []SentMessage
		if count >= n || ctx.Err() != nil {
			sent = s.sentLocked()
		}
		changed := s.changed
		s.mu.Unlock()
		if count >= n {
			return sent, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			s.mu.Lock()
			sent = s.sentLocked()
			s.mu.Unlock()
			return sent, ctx.Err()
		}
	}
}

// MessageStatus reports a message's current status and error code (0 when
// none), for tests that do not go through the REST API.
func (s *Server) MessageStatus(sid string) (status string, errorCode int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.bySid[sid]
	if !ok {
		return "", 0, false
	}
	return m.status, m.errorCode, true
}

// addMessageLocked stores m and wakes WaitForSent callers.
func (s *Server) addMessageLocked(m *message) {
	s.messages = append(s.messages, m)
	s.bySid[m.sid] = m
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) handleCreateMessage(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, 20001, "Could not parse form body")
		return
	}
	f := r.PostForm
	to, from, body := f.Get("To"), f.Get("From"), f.Get("Body")
	svc, cb := f.Get("MessagingServiceSid"), f.Get("StatusCallback")
	mediaURLs := f["MediaUrl"]

	// Injected faults and rate limiting come first: on real Twilio they are
	// decided before the request is looked at.
	if fault, ok := s.takeSendFault(); ok {
		writeError(w, fault.Status, fault.Code, fault.Message)
		return
	}
	if !s.allowSend() {
		writeError(w, http.StatusTooManyRequests, 20429, "Too Many Requests")
		return
	}

	switch {
	case to == "":
		writeError(w, 400, 21604, "A 'To' phone number is required.")
		return
	case !e164Re.MatchString(to):
		writeError(w, 400, 21211, "Invalid 'To' Phone Number: "+to)
		return
	case from == "" && svc == "":
		writeError(w, 400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message")
		return
	case svc != "" && !messagingServiceRe.MatchString(svc):
		writeError(w, 400, 21701, "The Messaging Service Sid "+svc+" is invalid.")
		return
	case from != "" && s.lookupNumber(from) == nil:
		writeError(w, 400, 21606, "The From phone number "+from+" is not a valid, SMS-capable inbound phone number or short code for your account.")
		return
	case from == to:
		writeError(w, 400, 21266, "'To' and 'From' number cannot be the same: "+to)
		return
	case body == "" && len(mediaURLs) == 0:
		writeError(w, 400, 21602, "Message body is required.")
		return
	case utf8.RuneCountInString(body) > maxBodyLen:
		writeError(w, 400, 21617, "The concatenated message body exceeds the 1600 character limit.")
		return
	case len(mediaURLs) > 10:
		writeError(w, 400, 21623, "Number of media files exceeds allowed limit: at most 10 MediaUrl per message.")
		return
	}
	for _, u := range mediaURLs {
		if !isHTTPURL(u) {
			writeError(w, 400, 21620, "Invalid media URL(s): "+u)
			return
		}
	}
	if cb != "" && !isHTTPURL(cb) {
		writeError(w, 400, 21609, "Invalid StatusCallback url: "+cb)
		return
	}

	s.mu.Lock()
	sender := from
	if sender == "" && len(s.numbers) > 0 {
		// A Messaging Service picks a sender from its pool; the fake's pool
		// is the account's numbers.
		sender = s.numbers[0].phone
	}
	if s.isOptedOutLocked(sender, to) {
		s.mu.Unlock()
		writeError(w, 400, 21610, "Attempt to send to unsubscribed recipient")
		return
	}
	now := time.Now().UTC()
	prefix := "SM"
	if len(mediaURLs) > 0 {
		prefix = "MM"
	}
	m := &message{
		sid: newSid(prefix), accountSID: s.opts.AccountSID,
		from: sender, to: to, body: body,
		messagingServiceSID: svc, statusCallback: cb,
		mediaURLs: slices.Clone(mediaURLs), direction: "outbound-api",
		status: "queued", numSegments: countSegments(body),
		created: now, updated: now,
	}
	if svc != "" {
		// Twilio answers "accepted" while a Messaging Service picks a sender.
		m.status = "accepted"
	}
	failCode, statusFirst := s.faults.deliveryFailures[to], s.faults.statusFirst
	s.addMessageLocked(m)
	resp := s.messageJSONLocked(m)
	s.mu.Unlock()
	if svc != "" {
		resp.From = nil // not yet assigned when the create call returns
	}

	if statusFirst {
		// The answer still says "queued": it was built before the statuses moved on.
		s.progress(r.Context(), m.sid, failCode)
	} else {
		s.goBackground(func(ctx context.Context) { s.progress(ctx, m.sid, failCode) })
	}
	writeJSON(w, http.StatusCreated, resp)
}

func isHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// undeliveredCodes are carrier-side failures: the message was sent to the
// carrier first, so Twilio reports "sent" and then "undelivered". Anything
// else fails before sending ("failed").
var undeliveredCodes = map[int]bool{30003: true, 30005: true, 30006: true, 30007: true, 30008: true}

// progress walks a message through its statuses in the background, posting
// status callbacks in order. It runs on the create request's goroutine only when the test
// asked for statuses before the answer (PostStatusBeforeAnswer).
func (s *Server) progress(ctx context.Context, sid string, failCode int) {
	steps := []string{"sent", "delivered"}
	switch {
	case failCode != 0 && undeliveredCodes[failCode]:
		steps = []string{"sent", "undelivered"}
	case failCode != 0:
		steps = []string{"failed"}
	}
	for _, status := range steps {
		select {
		case <-s.nextStatus(sid):
		case <-ctx.Done():
			return
		}
		s.mu.Lock()
		m, ok := s.bySid[sid]
		if !ok || m.status == "canceled" {
			s.mu.Unlock()
			return
		}
		now := time.Now().UTC()
		m.status, m.updated = status, now
		if status == "sent" {
			m.sent = now
		}
		if status == "failed" || status == "undelivered" {
			m.errorCode = failCode
		}
		params := s.statusParamsLocked(m)
		cb := m.statusCallback
		s.mu.Unlock()
		if cb != "" {
			s.deliverCallback(ctx, cb, params)
		}
	}
}

// statusParamsLocked builds the form a status callback carries.
func (s *Server) statusParamsLocked(m *message) url.Values {
	v := url.Values{
		"MessageSid":    {m.sid},
		"SmsSid":        {m.sid},
		"MessageStatus": {m.status},
		"SmsStatus":     {m.status},
		"AccountSid":    {m.accountSID},
		"From":          {m.from},
		"To":            {m.to},
		"ApiVersion":    {"2010-04-01"},
	}
	if m.messagingServiceSID != "" {
		v.Set("MessagingServiceSid", m.messagingServiceSID)
	}
	if m.errorCode != 0 {
		v.Set("ErrorCode", strconv.Itoa(m.errorCode))
	}
	if m.status == "delivered" {
		v.Set("RawDlrDoneDate", m.updated.Format("0601021504"))
	}
	return v
}

// messageJSON is api.v2010.account.message. num_segments and num_media are
// strings in Twilio's schema and twilio-go decodes them as *string, so
// numbers here would break the client.
type messageJSON struct {
	AccountSid          string            `json:"account_sid"`
	APIVersion          string            `json:"api_version"`
	Body                string            `json:"body"`
	DateCreated         string            `json:"date_created"`
	DateSent            *string           `json:"date_sent"`
	DateUpdated         string            `json:"date_updated"`
	Direction           string            `json:"direction"`
	ErrorCode           *int              `json:"error_code"`
	ErrorMessage        *string           `json:"error_message"`
	From                *string           `json:"from"`
	MessagingServiceSid *string           `json:"messaging_service_sid"`
	NumMedia            string            `json:"num_media"`
	NumSegments         string            `json:"num_segments"`
	Price               *string           `json:"price"`
	PriceUnit           string            `json:"price_unit"`
	Sid                 string            `json:"sid"`
	Status              string            `json:"status"`
	SubresourceURIs     map[string]string `json:"subresource_uris"`
	To                  string            `json:"to"`
	URI                 string            `json:"uri"`
}

var errorMessages = map[int]string{
	21610: "Attempt to send to unsubscribed recipient",
	30003: "Unreachable destination handset",
	30005: "Unknown destination handset",
	30006: "Landline or unreachable carrier",
	30007: "Carrier violation",
	30008: "Unknown error",
	30034: "US A2P 10DLC - Message from an Unregistered Number",
}

func (s *Server) messageJSONLocked(m *message) messageJSON {
	base := "/2010-04-01/Accounts/" + m.accountSID + "/Messages/" + m.sid
	j := messageJSON{
		AccountSid: m.accountSID, APIVersion: "2010-04-01", Body: m.body,
		DateCreated: formatTime(m.created), DateSent: optionalTime(m.sent),
		DateUpdated: formatTime(m.updated), Direction: m.direction,
		From: optionalString(m.from), MessagingServiceSid: optionalString(m.messagingServiceSID),
		NumMedia:    strconv.Itoa(max(len(m.mediaURLs), len(m.mediaSids))),
		NumSegments: strconv.Itoa(m.numSegments), PriceUnit: "USD",
		Sid: m.sid, Status: m.status, To: m.to, URI: base + ".json",
		SubresourceURIs: map[string]string{
			"media":    base + "/Media.json",
			"feedback": base + "/Feedback.json",
		},
	}
	if m.errorCode != 0 {
		code := m.errorCode
		j.ErrorCode = &code
		msg, ok := errorMessages[code]
		if !ok {
			msg = "Error " + strconv.Itoa(code)
		}
		j.ErrorMessage = &msg
	}
	return j
}

func (s *Server) handleMessage(w http.ResponseWriter, r *http.Request, sid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.bySid[sid]
	if !ok {
		notFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.messageJSONLocked(m))
	case http.MethodPost:
		// Update: Body="" redacts a message (what a privacy-minded client
		// does after delivery); Status=canceled cancels a queued one.
		if err := r.ParseForm(); err != nil {
			writeError(w, 400, 20001, "Could not parse form body")
			return
		}
		if b, ok := r.PostForm["Body"]; ok {
			if len(b) != 1 || b[0] != "" {
				writeError(w, 400, 20001, "Body can only be updated to an empty string (redaction)")
				return
			}
			m.body = ""
		}
		if st := r.PostForm.Get("Status"); st != "" {
			if st != "canceled" || (m.status != "queued" && m.status != "accepted" && m.status != "scheduled") {
				writeError(w, 400, 30409, "Message cannot be canceled in status "+m.status)
				return
			}
			m.status = "canceled"
		}
		m.updated = time.Now().UTC()
		writeJSON(w, http.StatusOK, s.messageJSONLocked(m))
	case http.MethodDelete:
		s.deleteMessageLocked(m)
		w.WriteHeader(http.StatusNoContent)
	default:
		methodNotAllowed(w, r)
	}
}

func (s *Server) deleteMessageLocked(m *message) {
	delete(s.bySid, m.sid)
	s.messages = slices.DeleteFunc(s.messages, func(x *message) bool { return x == m })
	for _, me := range m.mediaSids {
		s.deleteMediaLocked(me)
	}
}

func (s *Server) handleListMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filters := []func(*message) bool{}
	if to := q.Get("To"); to != "" {
		filters = append(filters, func(m *message) bool { return m.to == to })
	}
	if from := q.Get("From"); from != "" {
		filters = append(filters, func(m *message) bool { return m.from == from })
	}
	for _, key := range []string{"DateSent", "DateSent<", "DateSent>"} {
		v := q.Get(key)
		if v == "" {
			continue
		}
		t, dayOnly, ok := parseFilterDate(v)
		if !ok {
			writeError(w, 400, 20001, "Invalid "+key+": "+v)
			return
		}
		filters = append(filters, dateFilter(key, t, dayOnly))
	}

	s.mu.Lock()
	var matched []*message
	// Twilio lists newest first.
	for i := len(s.messages) - 1; i >= 0; i-- {
		m := s.messages[i]
		if !slices.ContainsFunc(filters, func(f func(*message) bool) bool { return !f(m) }) {
			matched = append(matched, m)
		}
	}
	base := "/2010-04-01/Accounts/" + s.opts.AccountSID + "/Messages.json"
	p, lo, hi, bad := paginate(r, base, len(matched))
	if bad != "" {
		s.mu.Unlock()
		writeError(w, 400, 20001, bad)
		return
	}
	list := make([]messageJSON, 0, hi-lo)
	for _, m := range matched[lo:hi] {
		list = append(list, s.messageJSONLocked(m))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		page
		Messages []messageJSON `json:"messages"`
	}{p, list})
}

// parseFilterDate accepts what Twilio documents (YYYY-MM-DD) and what
// twilio-go actually sends (RFC 3339).
func parseFilterDate(v string) (t time.Time, dayOnly, ok bool) {
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, true, true
	}
	for _, layout := range []string{time.RFC3339, time.RFC1123Z} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), false, true
		}
	}
	return time.Time{}, false, false
}

func dateFilter(key string, t time.Time, dayOnly bool) func(*message) bool {
	return func(m *message) bool {
		if m.sent.IsZero() {
			return false
		}
		sent := m.sent
		if dayOnly {
			sent = sent.Truncate(24 * time.Hour)
		}
		switch key {
		case "DateSent<":
			return !sent.After(t)
		case "DateSent>":
			return !sent.Before(t)
		default:
			if dayOnly {
				return sent.Equal(t)
			}
			return m.sent.Truncate(24 * time.Hour).Equal(t.Truncate(24 * time.Hour))
		}
	}
}
