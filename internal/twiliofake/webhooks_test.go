package twiliofake

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"
)

func TestSignMatchesTwilioGoValidator(t *testing.T) {
	params := url.Values{"From": {"+15551234567"}, "Body": {"héllo & bye"}, "To": {clinicNum}, "NumMedia": {"0"}}
	u := "https://texts.example.org/twilio/AC0123456789abcdef0123456789abcdef-15005550006/sms"
	sig := Sign(testToken, u, params)
	rv := client.NewRequestValidator(testToken)
	if !rv.Validate(u, flat(params), sig) {
		t.Fatal("twilio-go rejects Sign's signature")
	}
	if rv.Validate(u+"x", flat(params), sig) || rv.Validate(u, map[string]string{"Body": "tampered"}, sig) {
		t.Fatal("validator accepts a signature for different input; the check above proves nothing")
	}
	if Sign("other", u, params) == sig {
		t.Fatal("signature does not depend on the token")
	}
	// Known answer from Twilio's security docs (also recomputed with
	// Python's hmac module).
	doc := url.Values{
		"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"},
	}
	if got := Sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", doc); got != "0/KCTR6DLpKmkAf8muzZqo1nDgQ=" {
		t.Fatalf("Sign known answer = %s", got)
	}
}

func TestStatusCallbacksSignedAndOrdered(t *testing.T) {
	s := startFake(t)
	rc := newReceiver(t)
	c := twilioClient(t, s, testSID, testToken)
	cb := rc.URL + "/twilio/AC0123456789abcdef0123456789abcdef-15005550006/status/1"
	msg, err := c.Api.CreateMessage(new(api.CreateMessageParams).
		SetTo(patientNum).SetFrom(clinicNum).SetBody("hello").SetStatusCallback(cb))
	if err != nil {
		t.Fatal(err)
	}
	got := rc.wait(t, 2)
	for i, want := range []string{"sent", "delivered"} {
		g := got[i]
		if g.Method != http.MethodPost || g.Path != "/twilio/AC0123456789abcdef0123456789abcdef-15005550006/status/1" {
			t.Fatalf("callback %d: %s %s", i, g.Method, g.Path)
		}
		if !validSignature(testToken, cb, g) {
			t.Fatalf("callback %d signature does not verify with twilio-go", i)
		}
		if validSignature("ffffffffffffffffffffffffffffffff", cb, g) {
			t.Fatal("signature verifies with the wrong token")
		}
		f := g.Form
		if f.Get("MessageStatus") != want || f.Get("SmsStatus") != want || f.Get("MessageSid") != *msg.Sid ||
			f.Get("SmsSid") != *msg.Sid || f.Get("AccountSid") != testSID || f.Get("From") != clinicNum ||
			f.Get("To") != patientNum || f.Get("ApiVersion") != "2010-04-01" || f.Has("ErrorCode") {
			t.Fatalf("callback %d form = %v", i, f)
		}
	}
	if st, _, _ := s.MessageStatus(*msg.Sid); st != "delivered" {
		t.Fatalf("status after callbacks = %s", st)
	}
}

func TestFailDeliveryTo(t *testing.T) {
	s := startFake(t)
	rc := newReceiver(t)
	c := twilioClient(t, s, testSID, testToken)
	s.FailDeliveryTo(patientNum, 30006)
	s.FailDeliveryTo("+15559990000", 30034)

	undelivered, err := c.Api.CreateMessage(new(api.CreateMessageParams).
		SetTo(patientNum).SetFrom(clinicNum).SetBody("a").SetStatusCallback(rc.URL + "/a"))
	if err != nil {
		t.Fatal(err)
	}
	got := rc.wait(t, 2)
	if got[0].Form.Get("MessageStatus") != "sent" || got[1].Form.Get("MessageStatus") != "undelivered" ||
		got[1].Form.Get("ErrorCode") != "30006" {
		t.Fatalf("carrier failure callbacks: %v / %v", got[0].Form, got[1].Form)
	}
	fetched, err := c.Api.FetchMessage(*undelivered.Sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *fetched.Status != "undelivered" || fetched.ErrorCode == nil || *fetched.ErrorCode != 30006 || fetched.ErrorMessage == nil {
		t.Fatalf("fetched: status=%s error_code=%v", *fetched.Status, fetched.ErrorCode)
	}

	if _, err := c.Api.CreateMessage(new(api.CreateMessageParams).
		SetTo("+15559990000").SetFrom(clinicNum).SetBody("b").SetStatusCallback(rc.URL + "/b")); err != nil {
		t.Fatal(err)
	}
	got = rc.wait(t, 3)
	if f := got[2].Form; f.Get("MessageStatus") != "failed" || f.Get("ErrorCode") != "30034" {
		t.Fatalf("pre-send failure callback: %v", f)
	}

	// Other numbers are unaffected.
	ok, err := c.Api.CreateMessage(new(api.CreateMessageParams).
		SetTo("+15558887777").SetFrom(clinicNum).SetBody("c").SetStatusCallback(rc.URL + "/c"))
	if err != nil {
		t.Fatal(err)
	}
	got = rc.wait(t, 5)
	if got[4].Form.Get("MessageStatus") != "delivered" || got[4].Form.Get("MessageSid") != *ok.Sid {
		t.Fatalf("unaffected number: %v", got[4].Form)
	}
}

func TestStatusCallbackRetriesAndNeverBlocksCreate(t *testing.T) {
	s := startFake(t)
	rc := newReceiver(t)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // runs before the receiver's Close, which waits for handlers
	rc.respond = func(n int, w http.ResponseWriter) {
		if n == 1 {
			<-release // a slow receiver must not hold up Messages.create
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
	c := twilioClient(t, s, testSID, testToken)
	start := time.Now()
	if _, err := c.Api.CreateMessage(new(api.CreateMessageParams).
		SetTo(patientNum).SetFrom(clinicNum).SetBody("x").SetStatusCallback(rc.URL + "/s")); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("create waited for the status callback")
	}
	rc.wait(t, 1)
	unblock()
	got := rc.wait(t, 3)
	if got[0].Form.Get("MessageStatus") != "sent" || got[1].Form.Get("MessageStatus") != "sent" ||
		got[2].Form.Get("MessageStatus") != "delivered" {
		t.Fatalf("want sent (500), sent (retry), delivered; got %s, %s, %s",
			got[0].Form.Get("MessageStatus"), got[1].Form.Get("MessageStatus"), got[2].Form.Get("MessageStatus"))
	}
}

func TestSendSMSSignedLikeTwilio(t *testing.T) {
	s := startFake(t)
	rc := newReceiver(t)
	hook := rc.URL + "/twilio/AC0123456789abcdef0123456789abcdef-15005550006/sms"
	status, sid, err := s.SendSMS(context.Background(), hook, Inbound{From: patientNum, To: clinicNum, Body: "When is my appointment?"})
	if err != nil || status != http.StatusNoContent {
		t.Fatalf("SendSMS = %d, %v", status, err)
	}
	if !smSidRe.MatchString(sid) {
		t.Fatalf("sid = %s", sid)
	}
	g := rc.wait(t, 1)[0]
	if !validSignature(testToken, hook, g) {
		t.Fatal("inbound webhook signature does not verify with twilio-go")
	}
	if validSignature(testToken, rc.URL+"/other", g) {
		t.Fatal("signature does not cover the URL")
	}
	f := g.Form
	for k, want := range map[string]string{
		"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": testSID,
		"From": patientNum, "To": clinicNum, "Body": "When is my appointment?", "NumMedia": "0",
		"NumSegments": "1", "ApiVersion": "2010-04-01", "FromCountry": "US", "SmsStatus": "received",
	} {
		if f.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, f.Get(k), want)
		}
	}
	if g.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Fatalf("content type %s", g.Header.Get("Content-Type"))
	}
	if st, _, ok := s.MessageStatus(sid); !ok || st != "received" {
		t.Fatalf("inbound not stored: %s %v", st, ok)
	}
	if len(s.Sent()) != 0 {
		t.Fatal("inbound message counted as sent")
	}

	// Forged: a request signed with another token must fail the same check.
	forged := url.Values{"From": {patientNum}, "Body": {"x"}}
	st, err := (&Server{opts: Options{AuthToken: "wrongtoken"}, hc: http.DefaultClient}).PostStatus(context.Background(), rc.URL+"/forged", forged)
	if err != nil || st != http.StatusNoContent {
		t.Fatal(st, err)
	}
	if validSignature(testToken, rc.URL+"/forged", rc.wait(t, 2)[1]) {
		t.Fatal("forged signature accepted")
	}

	// Replaying a MessageSid posts the same message again (a Twilio retry).
	_, again, err := s.SendSMS(context.Background(), hook, Inbound{From: patientNum, To: clinicNum, Body: "When is my appointment?", MessageSid: sid})
	if err != nil || again != sid || rc.wait(t, 3)[2].Form.Get("MessageSid") != sid {
		t.Fatalf("retry with same sid: %s %v", again, err)
	}
}

func TestMMSMediaNeedsAuthAndRedirects(t *testing.T) {
	s := startFake(t)
	rc := newReceiver(t)
	png := []byte("\x89PNG\r\n\x1a\nfake")
	_, sid, err := s.SendSMS(context.Background(), rc.URL+"/twilio/AC0123456789abcdef0123456789abcdef-15005550006/sms", Inbound{
		From: patientNum, To: clinicNum, Body: "photo",
		Media: []Media{{ContentType: "image/png", Data: png}, {ContentType: "application/pdf", Data: []byte("%PDF")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sid, "MM") {
		t.Fatalf("MMS sid %s", sid)
	}
	f := rc.wait(t, 1)[0].Form
	if f.Get("NumMedia") != "2" || f.Get("MediaContentType0") != "image/png" || f.Get("MediaContentType1") != "application/pdf" {
		t.Fatalf("media fields: %v", f)
	}
	mediaURL := f.Get("MediaUrl0")
	mediaSid := mediaURL[strings.LastIndex(mediaURL, "/")+1:]

	get := func(hc *http.Client, user, pass string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, mediaURL, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := get(http.DefaultClient, "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no auth: %d", resp.StatusCode)
	}
	if resp := get(http.DefaultClient, testSID, "ffffffffffffffffffffffffffffffff"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad auth: %d", resp.StatusCode)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp := get(noFollow, testSID, testToken)
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(resp.Header.Get("Location"), "/cdn/") {
		t.Fatalf("want 307 to /cdn/, got %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = get(http.DefaultClient, testSID, testToken)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(body, png) || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("followed: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	c := twilioClient(t, s, testSID, testToken)
	meta, err := c.Api.FetchMedia(sid, mediaSid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *meta.ContentType != "image/png" || *meta.ParentSid != sid || *meta.Sid != mediaSid {
		t.Fatalf("media metadata %+v", meta)
	}
	list, err := c.Api.ListMedia(sid, nil)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListMedia: %d, %v", len(list), err)
	}
	if err := c.Api.DeleteMedia(sid, mediaSid, nil); err != nil {
		t.Fatal(err)
	}
	if s.HasMedia(mediaSid) {
		t.Fatal("media still stored after delete")
	}
	if resp := get(http.DefaultClient, testSID, testToken); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("deleted media served: %d", resp.StatusCode)
	}
	_, err = c.Api.FetchMedia(sid, mediaSid, nil)
	if te := restError(t, err); te.Status != 404 {
		t.Fatalf("fetch deleted media: %+v", te)
	}
}

func TestOptOutKeywordsBlockSends(t *testing.T) {
	s := startFake(t)
	rc := newReceiver(t)
	c := twilioClient(t, s, testSID, testToken)
	send := func() error {
		_, err := c.Api.CreateMessage(new(api.CreateMessageParams).SetTo(patientNum).SetFrom(clinicNum).SetBody("reminder"))
		return err
	}
	if _, _, err := s.SendSMS(context.Background(), rc.URL, Inbound{From: patientNum, To: clinicNum, Body: "  stop "}); err != nil {
		t.Fatal(err)
	}
	if te := restError(t, send()); te.Code != 21610 {
		t.Fatalf("send after STOP: %+v", te)
	}
	if !s.OptedOut(clinicNum, patientNum) || s.OptedOut(clinicNum2, patientNum) {
		t.Fatal("opt-out should be per sender number")
	}
	// "stop please" is not a keyword.
	if _, _, err := s.SendSMS(context.Background(), rc.URL, Inbound{From: patientNum, To: clinicNum2, Body: "stop please"}); err != nil {
		t.Fatal(err)
	}
	if s.OptedOut(clinicNum2, patientNum) {
		t.Fatal("a sentence containing STOP opted out")
	}
	if _, _, err := s.SendSMS(context.Background(), rc.URL, Inbound{From: patientNum, To: clinicNum, Body: "Start"}); err != nil {
		t.Fatal(err)
	}
	if err := send(); err != nil {
		t.Fatalf("send after START: %v", err)
	}
}

func TestTwiMLReplyBecomesOutboundMessage(t *testing.T) {
	s := startFake(t)
	rc := newReceiver(t)
	rc.respond = func(_ int, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/xml")
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Message>We got it &amp; will reply.</Message></Response>`)
	}
	if _, _, err := s.SendSMS(context.Background(), rc.URL, Inbound{From: patientNum, To: clinicNum, Body: "hi"}); err != nil {
		t.Fatal(err)
	}
	sent := s.Sent()
	if len(sent) != 1 || sent[0].Body != "We got it & will reply." || sent[0].To != patientNum ||
		sent[0].From != clinicNum || sent[0].Direction != "outbound-reply" {
		t.Fatalf("Sent() = %+v", sent)
	}
	rc.respond = nil
	if _, _, err := s.SendSMS(context.Background(), rc.URL, Inbound{From: patientNum, To: clinicNum, Body: "hi"}); err != nil {
		t.Fatal(err)
	}
	if len(s.Sent()) != 1 {
		t.Fatal("an empty webhook answer produced a message")
	}
}

func TestWaitForSent(t *testing.T) {
	s := startFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.WaitForSent(ctx, 1); err == nil {
		t.Fatal("WaitForSent returned without any message")
	}
	c := twilioClient(t, s, testSID, testToken)
	go func() {
		time.Sleep(20 * time.Millisecond)
		for range 2 {
			_, _ = c.Api.CreateMessage(new(api.CreateMessageParams).SetTo(patientNum).SetFrom(clinicNum).SetBody("x"))
		}
	}()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	got, err := s.WaitForSent(ctx2, 2)
	if err != nil || len(got) < 2 {
		t.Fatalf("WaitForSent = %d, %v", len(got), err)
	}
}
