package twiliofake

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"
)

var smSidRe = regexp.MustCompile(`^SM[0-9a-f]{32}$`)

func restError(t *testing.T, err error) *client.TwilioRestError {
	t.Helper()
	var te *client.TwilioRestError
	if !errors.As(err, &te) {
		t.Fatalf("want *client.TwilioRestError, got %T: %v", err, err)
	}
	return te
}

func TestCreateFetchListMessageWithTwilioGo(t *testing.T) {
	s := startFake(t)
	c := twilioClient(t, s, testSID, testToken)

	before := time.Now().Add(-time.Second)
	msg, err := c.Api.CreateMessage(new(api.CreateMessageParams).
		SetTo(patientNum).SetFrom(clinicNum).SetBody("Your appointment is at 10:00"))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Sid == nil || !smSidRe.MatchString(*msg.Sid) {
		t.Fatalf("sid = %v, want SM + 32 hex", msg.Sid)
	}
	if *msg.Status != "queued" || *msg.To != patientNum || *msg.From != clinicNum || *msg.AccountSid != testSID {
		t.Fatalf("unexpected message: status=%s to=%s from=%s acct=%s", *msg.Status, *msg.To, *msg.From, *msg.AccountSid)
	}
	if *msg.NumSegments != "1" || *msg.NumMedia != "0" || *msg.Direction != "outbound-api" {
		t.Fatalf("num_segments=%s num_media=%s direction=%s", *msg.NumSegments, *msg.NumMedia, *msg.Direction)
	}
	created, err := time.Parse(time.RFC1123Z, *msg.DateCreated)
	if err != nil || created.Before(before) {
		t.Fatalf("date_created %q: %v", *msg.DateCreated, err)
	}
	if want := "/2010-04-01/Accounts/" + testSID + "/Messages/" + *msg.Sid + ".json"; *msg.Uri != want {
		t.Fatalf("uri = %s, want %s", *msg.Uri, want)
	}
	if msg.ErrorCode != nil || msg.DateSent != nil {
		t.Fatalf("error_code/date_sent should be null on create: %v %v", msg.ErrorCode, msg.DateSent)
	}

	sent := s.Sent()
	if len(sent) != 1 || sent[0].Sid != *msg.Sid || sent[0].Body != "Your appointment is at 10:00" {
		t.Fatalf("Sent() = %+v", sent)
	}

	// The status moves on in the background; fetch until delivered.
	deadline := time.Now().Add(3 * time.Second)
	for {
		got, err := c.Api.FetchMessage(*msg.Sid, nil)
		if err != nil {
			t.Fatal(err)
		}
		if *got.Status == "delivered" {
			if got.DateSent == nil {
				t.Fatal("delivered message without date_sent")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status still %s", *got.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}

	_, err = c.Api.FetchMessage("SM00000000000000000000000000000000", nil)
	if te := restError(t, err); te.Status != 404 || te.Code != 20404 {
		t.Fatalf("missing message: %+v", te)
	}

	// Two more to another number, then list with a filter and small pages
	// so twilio-go has to follow next_page_uri.
	for range 2 {
		if _, err := c.Api.CreateMessage(new(api.CreateMessageParams).
			SetTo("+15559990000").SetFrom(clinicNum2).SetBody("x")); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.Api.ListMessage(new(api.ListMessageParams).SetPageSize(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("listed %d messages over pages, want 3", len(all))
	}
	if *all[2].Sid != *msg.Sid {
		t.Fatal("list is not newest first")
	}
	filtered, err := c.Api.ListMessage(new(api.ListMessageParams).SetTo(patientNum))
	if err != nil {
		t.Fatal(err)
	}
	if len(filtered) != 1 || *filtered[0].Sid != *msg.Sid {
		t.Fatalf("To filter returned %d messages", len(filtered))
	}
	byDate, err := c.Api.ListMessage(new(api.ListMessageParams).SetDateSentAfter(time.Now().Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if len(byDate) != 0 {
		t.Fatalf("DateSent> in the future matched %d messages", len(byDate))
	}
}

func TestMessagingServiceSend(t *testing.T) {
	s := startFake(t)
	c := twilioClient(t, s, testSID, testToken)
	svc := "MG0123456789abcdef0123456789abcdef"
	msg, err := c.Api.CreateMessage(new(api.CreateMessageParams).
		SetTo(patientNum).SetMessagingServiceSid(svc).SetBody("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if *msg.Status != "accepted" || msg.From != nil || *msg.MessagingServiceSid != svc {
		t.Fatalf("status=%s from=%v svc=%v", *msg.Status, msg.From, msg.MessagingServiceSid)
	}
	if got := s.Sent()[0]; got.From != clinicNum || got.MessagingServiceSID != svc {
		t.Fatalf("sender not assigned from pool: %+v", got)
	}
}

func TestCreateMessageValidation(t *testing.T) {
	s := startFake(t)
	c := twilioClient(t, s, testSID, testToken)
	cases := []struct {
		name   string
		params *api.CreateMessageParams
		status int
		code   int
	}{
		{"bad To", new(api.CreateMessageParams).SetTo("555-1234").SetFrom(clinicNum).SetBody("x"), 400, 21211},
		{"unowned From", new(api.CreateMessageParams).SetTo(patientNum).SetFrom("+15551112222").SetBody("x"), 400, 21606},
		{"no body", new(api.CreateMessageParams).SetTo(patientNum).SetFrom(clinicNum), 400, 21602},
		{"no sender", new(api.CreateMessageParams).SetTo(patientNum).SetBody("x"), 400, 21603},
		{"too long", new(api.CreateMessageParams).SetTo(patientNum).SetFrom(clinicNum).SetBody(strings.Repeat("a", 1601)), 400, 21617},
		{"bad callback", new(api.CreateMessageParams).SetTo(patientNum).SetFrom(clinicNum).SetBody("x").SetStatusCallback("not a url"), 400, 21609},
	}
	for _, tc := range cases {
		_, err := c.Api.CreateMessage(tc.params)
		te := restError(t, err)
		if te.Status != tc.status || te.Code != tc.code || !strings.HasSuffix(te.MoreInfo, "/errors/"+strconv.Itoa(tc.code)) || te.Message == "" {
			t.Errorf("%s: got %+v, want %d/%d", tc.name, te, tc.status, tc.code)
		}
	}
	if n := len(s.Sent()); n != 0 {
		t.Fatalf("rejected messages were recorded: %d", n)
	}
	// The limit is inclusive, and MediaUrl alone is enough.
	if _, err := c.Api.CreateMessage(new(api.CreateMessageParams).
		SetTo(patientNum).SetFrom(clinicNum).SetBody(strings.Repeat("a", 1600))); err != nil {
		t.Fatal(err)
	}
	mms, err := c.Api.CreateMessage(new(api.CreateMessageParams).
		SetTo(patientNum).SetFrom(clinicNum).SetMediaUrl([]string{"https://example.org/a.png", "https://example.org/b.png"}))
	if err != nil {
		t.Fatal(err)
	}
	if *mms.NumMedia != "2" || !strings.HasPrefix(*mms.Sid, "MM") {
		t.Fatalf("mms: num_media=%s sid=%s", *mms.NumMedia, *mms.Sid)
	}
	if got := s.Sent()[1].MediaURLs; len(got) != 2 || got[1] != "https://example.org/b.png" {
		t.Fatalf("MediaURLs = %v", got)
	}
}

func TestIncomingPhoneNumbersListAndUpdate(t *testing.T) {
	s := startFake(t)
	c := twilioClient(t, s, testSID, testToken)

	if _, ok := s.NumberConfig(clinicNum); ok {
		t.Fatal("NumberConfig reports a URL before anything was configured")
	}
	nums, err := c.Api.ListIncomingPhoneNumber(new(api.ListIncomingPhoneNumberParams).SetPhoneNumber(clinicNum))
	if err != nil {
		t.Fatal(err)
	}
	if len(nums) != 1 || *nums[0].PhoneNumber != clinicNum || !regexp.MustCompile(`^PN[0-9a-f]{32}$`).MatchString(*nums[0].Sid) {
		t.Fatalf("lookup returned %+v", nums)
	}
	if nums[0].SmsUrl != nil {
		t.Fatalf("unset sms_url should be null (nullable, format uri), got %q", *nums[0].SmsUrl)
	}
	if !nums[0].Capabilities.Sms || *nums[0].SmsMethod != "POST" {
		t.Fatalf("capabilities/sms_method wrong: %+v %s", nums[0].Capabilities, *nums[0].SmsMethod)
	}
	none, err := c.Api.ListIncomingPhoneNumber(new(api.ListIncomingPhoneNumberParams).SetPhoneNumber("+15553334444"))
	if err != nil || len(none) != 0 {
		t.Fatalf("unowned number lookup: %v, %d results", err, len(none))
	}

	hook := "https://texts.example.org/twilio/AC0123456789abcdef0123456789abcdef-15005550006/sms"
	upd, err := c.Api.UpdateIncomingPhoneNumber(*nums[0].Sid, new(api.UpdateIncomingPhoneNumberParams).
		SetSmsUrl(hook).SetSmsMethod("POST"))
	if err != nil {
		t.Fatal(err)
	}
	if *upd.SmsUrl != hook || *upd.Sid != *nums[0].Sid {
		t.Fatalf("update returned sms_url=%s", *upd.SmsUrl)
	}
	if got, ok := s.NumberConfig(clinicNum); !ok || got != hook {
		t.Fatalf("NumberConfig = %q, %v", got, ok)
	}
	if _, ok := s.NumberConfig(clinicNum2); ok {
		t.Fatal("updating one number configured another")
	}
	fetched, err := c.Api.FetchIncomingPhoneNumber(*nums[0].Sid, nil)
	if err != nil || *fetched.SmsUrl != hook {
		t.Fatalf("fetch after update: %v", err)
	}
	_, err = c.Api.UpdateIncomingPhoneNumber(*nums[0].Sid, new(api.UpdateIncomingPhoneNumberParams).SetSmsMethod("PUT"))
	if te := restError(t, err); te.Status != 400 {
		t.Fatalf("bad method accepted: %+v", te)
	}
}

func TestAccountFetchChecksCredentials(t *testing.T) {
	s := startFake(t)
	acct, err := twilioClient(t, s, testSID, testToken).Api.FetchAccount(testSID)
	if err != nil {
		t.Fatal(err)
	}
	if *acct.Sid != testSID || *acct.Status != "active" {
		t.Fatalf("account = %+v", acct)
	}
	before := s.Requests()
	_, err = twilioClient(t, s, testSID, "ffffffffffffffffffffffffffffffff").Api.FetchAccount(testSID)
	if te := restError(t, err); te.Status != 401 || te.Code != 20003 {
		t.Fatalf("bad token: %+v", te)
	}
	other := "ACffffffffffffffffffffffffffffffff"
	_, err = twilioClient(t, s, other, testToken).Api.FetchAccount(other)
	if te := restError(t, err); te.Status != 401 {
		t.Fatalf("bad sid: %+v", te)
	}
	if got := s.Requests() - before; got != 2 {
		t.Fatalf("Requests() grew by %d, want 2", got)
	}
}

func TestFailNextSends(t *testing.T) {
	s := startFake(t)
	c := twilioClient(t, s, testSID, testToken)
	send := func() error {
		_, err := c.Api.CreateMessage(new(api.CreateMessageParams).SetTo(patientNum).SetFrom(clinicNum).SetBody("x"))
		return err
	}
	s.FailNextSends(Fault{Status: 429, Code: 20429, Message: "Too Many Requests", Times: 2})
	for i := range 2 {
		te := restError(t, send())
		if te.Status != 429 || te.Code != 20429 {
			t.Fatalf("attempt %d: %+v", i, te)
		}
	}
	if err := send(); err != nil {
		t.Fatalf("fault outlived Times: %v", err)
	}
	s.FailNextSends(Fault{Status: 500})
	for range 3 {
		if te := restError(t, send()); te.Status != 500 {
			t.Fatalf("Times=0 fault: %+v", te)
		}
	}
	s.ClearFaults()
	if err := send(); err != nil {
		t.Fatalf("after ClearFaults: %v", err)
	}
	if n := len(s.Sent()); n != 2 {
		t.Fatalf("Sent() has %d messages, want only the 2 accepted", n)
	}
}

func TestRateLimit(t *testing.T) {
	s := startFake(t)
	c := twilioClient(t, s, testSID, testToken)
	s.SetRateLimit(2)
	limited := 0
	for range 6 {
		_, err := c.Api.CreateMessage(new(api.CreateMessageParams).SetTo(patientNum).SetFrom(clinicNum).SetBody("x"))
		if err != nil {
			if te := restError(t, err); te.Status != 429 || te.Code != 20429 {
				t.Fatalf("unexpected error %+v", te)
			}
			limited++
		}
	}
	if limited == 0 || limited == 6 {
		t.Fatalf("%d of 6 rapid sends limited at 2/s", limited)
	}
	s.SetRateLimit(0)
	if _, err := c.Api.CreateMessage(new(api.CreateMessageParams).SetTo(patientNum).SetFrom(clinicNum).SetBody("x")); err != nil {
		t.Fatalf("limit not removed: %v", err)
	}
}
