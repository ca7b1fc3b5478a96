package twiliofake

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Inbound is an SMS or MMS a patient sends to one of the account's numbers.
type Inbound struct {
	From, To, Body string
	// MessageSid is generated ("SM…", or "MM…" with media) when empty. Reuse
	// one to simulate Twilio retrying the same webhook.
	MessageSid string
	// MessagingServiceSID is posted as MessagingServiceSid when set, as for
	// numbers in a Messaging Service.
	MessagingServiceSID string
	Media               []Media
}

// Media is one MMS attachment.
type Media struct {
	ContentType string
	Data        []byte
}

// Sign computes X-Twilio-Signature: base64(HMAC-SHA1(authToken, url + each
// parameter name and value, sorted by name)). Repeated names contribute each
// value in sorted order, as Twilio's own helpers do.
func Sign(authToken, url string, params url.Values) string {
	var b strings.Builder
	b.WriteString(url)
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vals := slices.Clone(params[k])
		sort.Strings(vals)
		for _, v := range vals {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// PostStatus posts params to callbackURL signed with the account's token, as
// a status callback would be. Tests use it to replay or vary callbacks.
func (s *Server) PostStatus(ctx context.Context, callbackURL string, params url.Values) (int, error) {
	status, _, err := s.postSigned(ctx, http.MethodPost, callbackURL, params)
	return status, err
}

// postSigned sends a webhook the way Twilio does: POST with a form body, or
// GET with the parameters appended to the URL (then the signature covers the
// full URL and no body parameters). It returns at most 64 KiB of the body.
func (s *Server) postSigned(ctx context.Context, method, target string, params url.Values) (int, []byte, error) {
	var req *http.Request
	var err error
	if method == http.MethodGet {
		u, perr := url.Parse(target)
		if perr != nil {
			return 0, nil, perr
		}
		q := u.Query()
		for k, vs := range params {
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		u.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err == nil {
			req.Header.Set("X-Twilio-Signature", Sign(s.opts.AuthToken, u.String(), nil))
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(params.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Twilio-Signature", Sign(s.opts.AuthToken, target, params))
		}
	}
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set("Accept", "*/*")
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, body, nil
}

// deliverCallback posts a status callback, retrying a few times with backoff
// when the receiver fails, as Twilio does for transient errors.
func (s *Server) deliverCallback(ctx context.Context, target string, params url.Values) {
	delay := 100 * time.Millisecond
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(delay):
				delay *= 2
			case <-ctx.Done():
				return
			}
		}
		status, _, err := s.postSigned(ctx, http.MethodPost, target, params)
		if err == nil && status >= 200 && status < 300 {
			return
		}
	}
}

// SendSMS delivers an inbound message to webhookURL like Twilio: it stores
// the message (and any media, served under MediaURL), applies opt-out
// keywords, posts the signed form and, when the answer is TwiML with
// <Message> verbs, records those replies as outbound messages. It returns
// the webhook's HTTP status and the message SID.
func (s *Server) SendSMS(ctx context.Context, webhookURL string, in Inbound) (status int, sid string, err error) {
	return s.sendInbound(ctx, http.MethodPost, webhookURL, in)
}

func (s *Server) sendInbound(ctx context.Context, method, webhookURL string, in Inbound) (int, string, error) {
	if in.From == "" || in.To == "" {
		return 0, "", errors.New("twiliofake: inbound message needs From and To")
	}
	if len(in.Media) > 10 {
		return 0, "", errors.New("twiliofake: at most 10 media per message")
	}
	if len([]rune(in.Body)) > maxBodyLen {
		return 0, "", fmt.Errorf("twiliofake: body longer than %d characters", maxBodyLen)
	}
	params, sid := s.storeInbound(in)
	status, body, err := s.postSigned(ctx, method, webhookURL, params)
	if err != nil {
		return 0, sid, err
	}
	if status >= 200 && status < 300 {
		s.recordTwiMLReplies(in, body)
	}
	return status, sid, nil
}

// storeInbound records the message and its media and builds the webhook
// form. A repeated MessageSid reuses what was stored, like a Twilio retry.
func (s *Server) storeInbound(in Inbound) (url.Values, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sid := in.MessageSid
	m, exists := s.bySid[sid]
	if sid == "" || !exists {
		if sid == "" {
			sid = newSid("SM")
			if len(in.Media) > 0 {
				sid = newSid("MM")
			}
		}
		now := time.Now().UTC()
		m = &message{
			sid: sid, accountSID: s.opts.AccountSID, from: in.From, to: in.To, body: in.Body,
			messagingServiceSID: in.MessagingServiceSID, direction: "inbound", status: "received",
			numSegments: countSegments(in.Body), created: now, updated: now, sent: now,
		}
		for _, md := range in.Media {
			me := &mediaItem{
				sid: newSid("ME"), parentSid: sid, contentType: md.ContentType,
				data: slices.Clone(md.Data), created: now,
			}
			if me.contentType == "" {
				me.contentType = "application/octet-stream"
			}
			s.media[me.sid] = me
			m.mediaSids = append(m.mediaSids, me.sid)
		}
		s.addMessageLocked(m)
		s.applyOptOutLocked(in)
	}

	v := url.Values{
		"MessageSid":       {sid},
		"SmsSid":           {sid},
		"SmsMessageSid":    {sid},
		"AccountSid":       {s.opts.AccountSID},
		"From":             {in.From},
		"To":               {in.To},
		"Body":             {in.Body},
		"NumMedia":         {strconv.Itoa(len(m.mediaSids))},
		"NumSegments":      {strconv.Itoa(countSegments(in.Body))},
		"SmsStatus":        {"received"},
		"ApiVersion":       {"2010-04-01"},
		"ReferralNumMedia": {"0"},
		"FromCountry":      {countryOf(in.From)},
		"ToCountry":        {countryOf(in.To)},
		// Twilio sends the geo fields even when it knows nothing.
		"FromCity": {""}, "FromState": {""}, "FromZip": {""},
		"ToCity": {""}, "ToState": {""}, "ToZip": {""},
	}
	if in.MessagingServiceSID != "" {
		v.Set("MessagingServiceSid", in.MessagingServiceSID)
	}
	for i, me := range m.mediaSids {
		v.Set("MediaUrl"+strconv.Itoa(i), s.MediaURL(me))
		v.Set("MediaContentType"+strconv.Itoa(i), s.media[me].contentType)
	}
	return v, sid
}

// countryOf maps a few calling codes to ISO countries for FromCountry and
// ToCountry; Twilio sends an empty string when it cannot tell.
func countryOf(e164 string) string {
	for _, c := range []struct{ prefix, iso string }{
		{"+1", "US"}, {"+44", "GB"}, {"+49", "DE"}, {"+33", "FR"}, {"+34", "ES"},
		{"+39", "IT"}, {"+31", "NL"}, {"+61", "AU"}, {"+52", "MX"}, {"+91", "IN"},
	} {
		if strings.HasPrefix(e164, c.prefix) {
			return c.iso
		}
	}
	return ""
}

type optOutKey struct{ sender, recipient string }

var (
	optOutWords = []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
	optInWords  = []string{"START", "UNSTOP", "YES"}
)

// applyOptOutLocked mirrors Twilio's default opt-out management: the whole
// trimmed body, case-insensitively, is the keyword.
func (s *Server) applyOptOutLocked(in Inbound) {
	if s.opts.DisableOptOut {
		return
	}
	word := strings.ToUpper(strings.TrimSpace(in.Body))
	key := optOutKey{sender: in.To, recipient: in.From}
	switch {
	case slices.Contains(optOutWords, word):
		s.optedOut[key] = true
	case slices.Contains(optInWords, word):
		delete(s.optedOut, key)
	}
}

func (s *Server) isOptedOutLocked(sender, recipient string) bool {
	return s.optedOut[optOutKey{sender: sender, recipient: recipient}]
}

// OptedOut reports whether recipient has opted out of messages from sender.
func (s *Server) OptedOut(sender, recipient string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isOptedOutLocked(sender, recipient)
}

type twiml struct {
	XMLName  xml.Name       `xml:"Response"`
	Messages []twimlMessage `xml:"Message"`
}

type twimlMessage struct {
	To    string   `xml:"to,attr"`
	From  string   `xml:"from,attr"`
	Text  string   `xml:",chardata"`
	Body  string   `xml:"Body"`
	Media []string `xml:"Media"`
}

// recordTwiMLReplies turns <Message> verbs in a webhook answer into outbound
// messages, because Twilio would send them to the patient. Anything that is
// not TwiML (an empty 204, JSON, plain text) is ignored.
func (s *Server) recordTwiMLReplies(in Inbound, body []byte) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return
	}
	var doc twiml
	if err := xml.Unmarshal(body, &doc); err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tm := range doc.Messages {
		text := strings.TrimSpace(tm.Body)
		if text == "" {
			text = strings.TrimSpace(tm.Text)
		}
		to, from := cmp.Or(tm.To, in.From), cmp.Or(tm.From, in.To)
		if (text == "" && len(tm.Media) == 0) || s.isOptedOutLocked(from, to) {
			continue
		}
		now := time.Now().UTC()
		m := &message{
			sid: newSid("SM"), accountSID: s.opts.AccountSID, from: from, to: to, body: text,
			mediaURLs: tm.Media, direction: "outbound-reply", status: "queued",
			numSegments: countSegments(text), created: now, updated: now,
		}
		s.addMessageLocked(m)
		failCode := s.faults.deliveryFailures[to]
		s.goBackground(func(ctx context.Context) { s.progress(ctx, m.sid, failCode) })
	}
}
