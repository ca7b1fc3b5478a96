package twilioapi

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/careline/careline/internal/twiliofake"
)

const (
	sid   = "AC0123456789abcdef0123456789abcdef"
	token = "0123456789abcdef0123456789abcdef"
	from  = "+14155550100"
)

func fake(t *testing.T) (*twiliofake.Server, *Client) {
	t.Helper()
	s, err := twiliofake.Start(twiliofake.Options{AccountSID: sid, AuthToken: token, Numbers: []string{from}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := New(s.URL, sid, token)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestNewRejectsMalformedCredentials(t *testing.T) {
	for _, tc := range [][2]string{{"AC123", token}, {"XX0123456789abcdef0123456789abcdef", token}, {sid, "tok-en!"}, {sid, ""}} {
		if _, err := New("https://api.twilio.com", tc[0], tc[1]); err == nil {
			t.Errorf("New(%q, %q) accepted", tc[0], tc[1])
		}
	}
}

func TestAccountAndNumbers(t *testing.T) {
	s, c := fake(t)
	if err := c.CheckAccount(); err != nil {
		t.Fatal(err)
	}
	bad, _ := New(s.URL, sid, strings.Repeat("f", 32))
	var twErr *Error
	if err := bad.CheckAccount(); !errors.As(err, &twErr) || twErr.Code != 20003 {
		t.Fatalf("wrong token: %v", err)
	}
	num, err := c.FindNumber(from)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindNumber("+14155550999"); err == nil || strings.Contains(err.Error(), "4155550999") {
		t.Fatalf("unknown number: %v", err)
	}
	if err := c.SetSMSURL(num.SID, "https://texts.example.org/twilio/AC0123456789abcdef0123456789abcdef-15005550006/sms"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.NumberConfig(from); got != "https://texts.example.org/twilio/AC0123456789abcdef0123456789abcdef-15005550006/sms" {
		t.Fatalf("SMS URL = %q", got)
	}
}

func TestSendAndErrors(t *testing.T) {
	s, c := fake(t)
	sent, err := c.Send(Outgoing{From: from, To: "+14155550123", Body: "hello", StatusCallback: "https://x.example/twilio/AC0123456789abcdef0123456789abcdef-15005550006/status/1"})
	if err != nil || !strings.HasPrefix(sent.SID, "SM") {
		t.Fatalf("Send = %+v, %v", sent, err)
	}
	if got := s.Sent(); len(got) != 1 || got[0].Body != "hello" || got[0].StatusCallback != "https://x.example/twilio/AC0123456789abcdef0123456789abcdef-15005550006/status/1" {
		t.Fatalf("fake received %+v", got)
	}
	s.FailNextSends(twiliofake.Fault{Status: 429, Code: 20429, Message: "Too Many Requests", Times: 1})
	_, err = c.Send(Outgoing{From: from, To: "+14155550123", Body: "again"})
	var twErr *Error
	if !errors.As(err, &twErr) || !twErr.Temporary() || twErr.Code != 20429 {
		t.Fatalf("429: %v", err)
	}
	_, err = c.Send(Outgoing{From: from, To: "not-a-number", Body: "x"})
	if !errors.As(err, &twErr) || twErr.Code != 21211 || twErr.Temporary() || !Permanent(twErr.Code) {
		t.Fatalf("invalid number: %v", err)
	}
	if !strings.Contains(err.Error(), "not valid") {
		t.Fatalf("error not in words: %v", err)
	}
}

func TestUnreachableTwilioIsTemporary(t *testing.T) {
	c, _ := New("http://127.0.0.1:1", sid, token)
	_, err := c.Send(Outgoing{From: from, To: "+14155550123", Body: "x"})
	var twErr *Error
	if !errors.As(err, &twErr) || !twErr.Temporary() || !strings.Contains(err.Error(), "could not be reached") {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestSignatureValidation(t *testing.T) {
	_, c := fake(t)
	u := "https://texts.example.org/twilio/AC0123456789abcdef0123456789abcdef-15005550006/sms"
	params := url.Values{"From": {"+14155550123"}, "Body": {"hi"}, "MessageSid": {"SM1"}}
	sig := twiliofake.Sign(token, u, params)
	if !c.ValidSignature(u, params, sig) {
		t.Fatal("valid signature refused")
	}
	if c.ValidSignature(u, params, "") || c.ValidSignature(u+"x", params, sig) {
		t.Fatal("missing signature or other URL accepted")
	}
	params.Set("Body", "changed")
	if c.ValidSignature(u, params, sig) {
		t.Fatal("changed body accepted")
	}
	params.Set("Body", "hi")
	params.Add("Body", "second")
	if c.ValidSignature(u, params, twiliofake.Sign(token, u, params)) {
		t.Fatal("repeated parameter accepted")
	}
}

func TestMediaFetchAndDelete(t *testing.T) {
	s, c := fake(t)
	recv := make(chan url.Values, 1)
	srv := newWebhookSink(t, recv)
	if _, _, err := s.SendSMS(context.Background(), srv, twiliofake.Inbound{From: "+14155550123", To: from,
		Media: []twiliofake.Media{{ContentType: "image/jpeg", Data: []byte("jpegdata")}}}); err != nil {
		t.Fatal(err)
	}
	params := <-recv
	ct, data, err := c.FetchMedia(context.Background(), params.Get("MediaUrl0"))
	if err != nil || ct != "image/jpeg" || string(data) != "jpegdata" {
		t.Fatalf("FetchMedia = %q %q %v", ct, data, err)
	}
	if err := c.DeleteMedia(params.Get("MessageSid"), params.Get("MediaUrl0")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.FetchMedia(context.Background(), params.Get("MediaUrl0")); err == nil {
		t.Fatal("media still there after delete")
	}
}

func TestFindSent(t *testing.T) {
	_, c := fake(t)
	start := time.Now()
	out := Outgoing{From: from, To: "+14155550123", Body: "Sunrise Clinic sent you a secure message: https://x/l/abc"}
	sent, err := c.Send(out)
	if err != nil {
		t.Fatal(err)
	}
	found, err := c.FindSent(out, start)
	if err != nil || found == nil || found.SID != sent.SID {
		t.Fatalf("FindSent = %+v, %v; want %s", found, err, sent.SID)
	}
	other := out
	other.Body = "a different text"
	if found, err := c.FindSent(other, start); err != nil || found != nil {
		t.Fatalf("FindSent found a message that was never sent: %+v %v", found, err)
	}
}
