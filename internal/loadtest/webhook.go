package loadtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"

	"github.com/careline/careline/internal/localstack"
)

// field is a webhook parameter that differs from message to message.
type field int

const (
	noField field = iota
	sidField
	fromField
	bodyField
)

// segment is constant text followed by one message's value of a field (noField: nothing).
type segment struct {
	text  string
	field field
}

// Webhooks makes inbound SMS webhooks to one URL, signed as Twilio signs them (SPEC §7). Every
// parameter but the message SID, the sender and the text is the same in each, so their share of
// the signed string and of the form body is built once, and the HMAC keyed once: the load tool
// shares the CPU with the bridge it measures.
type Webhooks struct {
	url  string
	head string // the raw request's first lines, up to Content-Length's value
	// sign is the string Twilio signs: the URL, then every parameter's name and value in
	// name order.
	sign []segment
	// form is the body, byte for byte as url.Values.Encode writes it (name order).
	form []segment
	macs sync.Pool // HMAC-SHA1 keyed with the auth token
	bufs sync.Pool // *[]byte for the signed string
}

var formContentType = []string{"application/x-www-form-urlencoded"}
var twilioUserAgent = []string{"TwilioProxy/1.1"}

// NewWebhooks prepares webhooks to webhookURL (http).
func NewWebhooks(webhookURL string) (*Webhooks, error) {
	u, err := url.Parse(webhookURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("webhook URL %q: only http://host/… is supported", webhookURL)
	}
	fixed := map[string]string{
		"AccountSid": localstack.AccountSID, "To": localstack.ClinicNumber,
		"NumMedia": "0", "NumSegments": "1",
		"SmsStatus": "received", "ApiVersion": "2010-04-01", "ReferralNumMedia": "0",
		"FromCountry": "US", "ToCountry": "US",
		"FromCity": "", "FromState": "", "FromZip": "",
		"ToCity": "", "ToState": "", "ToZip": "",
	}
	varying := map[string]field{
		"MessageSid": sidField, "SmsSid": sidField, "SmsMessageSid": sidField,
		"From": fromField, "Body": bodyField,
	}
	var names []string
	for k := range fixed {
		names = append(names, k)
	}
	for k := range varying {
		names = append(names, k)
	}
	slices.Sort(names)
	// As net/http's Transport writes a request: Host, User-Agent, Content-Length, then the
	// other headers by name, then Accept-Encoding.
	w := &Webhooks{url: webhookURL, head: "POST " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUser-Agent: " + twilioUserAgent[0] + "\r\nContent-Length: "}
	sign, form := webhookURL, ""
	for i, k := range names {
		if i > 0 {
			form += "&"
		}
		sign += k
		form += url.QueryEscape(k) + "="
		if f, ok := varying[k]; ok {
			w.sign = append(w.sign, segment{sign, f})
			w.form = append(w.form, segment{form, f})
			sign, form = "", ""
			continue
		}
		sign += fixed[k]
		form += url.QueryEscape(fixed[k])
	}
	w.sign = append(w.sign, segment{sign, noField})
	w.form = append(w.form, segment{form, noField})
	w.macs.New = func() any { return hmac.New(sha1.New, []byte(localstack.AuthToken)) }
	w.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	return w, nil
}

// newSID is a message SID as Twilio's look: SM and 32 random hex digits. (Random, not a
// counter: bridges key their dedupe on it, and an index takes sequential keys more cheaply.)
func newSID() string {
	var b [34]byte
	b[0], b[1] = 'S', 'M'
	var r [16]byte
	for i := 0; i < 16; i += 8 {
		v := rand.Uint64()
		for j := range 8 {
			r[i+j] = byte(v >> (8 * j))
		}
	}
	hex.Encode(b[2:], r[:])
	return string(b[:])
}

// signed is the form body of one text from a sender and its signature.
func (w *Webhooks) signed(from, body string) (form []byte, signature string) {
	sid := newSID()
	value := func(f field) string {
		switch f {
		case sidField:
			return sid
		case fromField:
			return from
		case bodyField:
			return body
		}
		return ""
	}
	bufp := w.bufs.Get().(*[]byte)
	buf := (*bufp)[:0]
	for _, s := range w.sign {
		buf = append(buf, s.text...)
		buf = append(buf, value(s.field)...)
	}
	mac := w.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(buf)
	var sum [sha1.Size]byte
	signature = base64.StdEncoding.EncodeToString(mac.Sum(sum[:0]))
	w.macs.Put(mac)
	*bufp = buf
	w.bufs.Put(bufp)

	escaped := [...]string{sidField: sid, fromField: url.QueryEscape(from), bodyField: url.QueryEscape(body)}
	n := 0
	for _, s := range w.form {
		n += len(s.text) + len(escaped[s.field])
	}
	form = make([]byte, 0, n)
	for _, s := range w.form {
		form = append(form, s.text...)
		form = append(form, escaped[s.field]...)
	}
	return form, signature
}

// Request is a signed webhook for one text from a sender.
func (w *Webhooks) Request(ctx context.Context, from, body string) (*http.Request, error) {
	form, signature := w.signed(from, body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(form))
	if err != nil {
		return nil, err
	}
	req.Header["Content-Type"] = formContentType
	req.Header["X-Twilio-Signature"] = []string{signature}
	req.Header["User-Agent"] = twilioUserAgent
	return req, nil
}

// AppendRaw appends the same webhook as Request, as the bytes of an HTTP/1.1 request.
func (w *Webhooks) AppendRaw(dst []byte, from, body string) []byte {
	form, signature := w.signed(from, body)
	dst = append(dst, w.head...)
	dst = strconv.AppendInt(dst, int64(len(form)), 10)
	dst = append(dst, "\r\nContent-Type: "...)
	dst = append(dst, formContentType[0]...)
	dst = append(dst, "\r\nX-Twilio-Signature: "...)
	dst = append(dst, signature...)
	dst = append(dst, "\r\nAccept-Encoding: gzip\r\n\r\n"...)
	return append(dst, form...)
}

// Webhook is a signed inbound SMS webhook, as Twilio posts it (SPEC §7).
func Webhook(ctx context.Context, webhookURL, from, body string) (*http.Request, error) {
	w, err := NewWebhooks(webhookURL)
	if err != nil {
		return nil, err
	}
	return w.Request(ctx, from, body)
}
