package e2e

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/testenv"
	"github.com/careline/careline/internal/twiliofake"
)

const patientNumber = "+14155550123"

// TestBridgeCore runs the bridge core against a real Dendrite and the fake Twilio, on SQLite
// and on PostgreSQL: login, inbound SMS and MMS into an encrypted room, staff replies out,
// forged and duplicated webhooks, delivery failures shown to staff.
func TestBridgeCore(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			s := startStack(t, stackOptions{Postgres: kind == "postgres"})
			testBridgeCore(t, s)
		})
	}
}

// step runs one stage of a scenario; later stages depend on earlier ones, so a failure stops it.
func step(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, f) {
		t.FailNow()
	}
}

func testBridgeCore(t *testing.T, s *stack) {
	ctx := waitCtx(t)

	step(t, "login is checked against Twilio", func(t *testing.T) {
		status, out, _ := s.Login(ctx, accountSID, "ffffffffffffffffffffffffffffffff")
		if status != http.StatusBadRequest {
			t.Fatalf("login with a wrong auth token succeeded: %d %v", status, out)
		}
		if msg, _ := out["error"].(string); !strings.Contains(msg, "did not accept these credentials") {
			t.Fatalf("the refusal does not say why: %v", out)
		}
		if u, _ := s.Twilio.NumberConfig(clinicNumber); u != "" {
			t.Fatalf("a failed login changed the number's webhook to %q", u)
		}
		s.mustLogin(ctx)
		if u, _ := s.Twilio.NumberConfig(clinicNumber); u != s.SMSURL() {
			t.Fatalf("number's SMS URL = %q, want %q", u, s.SMSURL())
		}
	})

	var roomID id.RoomID
	step(t, "inbound SMS reaches the encrypted room as the patient", func(t *testing.T) {
		status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber, Body: "my knee hurts since Tuesday"})
		if err != nil || status != http.StatusOK {
			t.Fatalf("webhook: %d %v", status, err)
		}
		msg, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return m.Body == "my knee hurts since Tuesday" })
		if err != nil {
			t.Fatal(err)
		}
		if !msg.Encrypted {
			t.Fatal("the patient's message was not end-to-end encrypted")
		}
		roomID = msg.RoomID
		if strings.Contains(string(msg.Sender), "4155550123") || strings.Contains(string(msg.Sender), "0123") {
			t.Fatalf("the ghost's Matrix ID %s reveals the number", msg.Sender)
		}
		var name event.RoomNameEventContent
		if err := s.nurse.Client.StateEvent(ctx, roomID, event.StateRoomName, "", &name); err != nil {
			t.Fatal(err)
		}
		if name.Name != "Patient ···0123" {
			t.Fatalf("room name %q is not the masked default", name.Name)
		}
	})

	step(t, "forged webhooks are refused and change nothing", func(t *testing.T) {
		params := url.Values{"MessageSid": {"SMforged000000000000000000000001"}, "AccountSid": {accountSID},
			"From": {patientNumber}, "To": {clinicNumber}, "Body": {"forged message"}, "NumMedia": {"0"}}
		for name, sig := range map[string]string{
			"missing":     "",
			"wrong token": twiliofake.Sign("00000000000000000000000000000000", s.SMSURL(), params),
			"wrong URL":   twiliofake.Sign(authToken, strings.Replace(s.SMSURL(), s.PublicURL, "https://elsewhere.example", 1), params),
		} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.SMSURL(), strings.NewReader(params.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if sig != "" {
				req.Header.Set("X-Twilio-Signature", sig)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("%s signature: HTTP %d, want 403", name, resp.StatusCode)
			}
		}
		// A valid message after the forged ones: once it is in, the forged one would be too.
		if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber, Body: "after forged"}); err != nil || status != 200 {
			t.Fatalf("webhook: %d %v", status, err)
		}
		if _, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return m.Body == "after forged" }); err != nil {
			t.Fatal(err)
		}
		for _, m := range s.nurse.Messages() {
			if m.Body == "forged message" {
				t.Fatal("a forged webhook reached the room")
			}
		}
	})

	step(t, "a retried MessageSid is delivered once", func(t *testing.T) {
		in := twiliofake.Inbound{From: patientNumber, To: clinicNumber, Body: "sent twice by Twilio", MessageSid: "SM" + strings.Repeat("d", 32)}
		for range 3 {
			if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), in); err != nil || status != 200 {
				t.Fatalf("webhook: %d %v", status, err)
			}
		}
		if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber, Body: "after duplicates"}); err != nil || status != 200 {
			t.Fatalf("webhook: %d %v", status, err)
		}
		if _, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return m.Body == "after duplicates" }); err != nil {
			t.Fatal(err)
		}
		count := 0
		for _, m := range s.nurse.Messages() {
			if m.Body == "sent twice by Twilio" {
				count++
			}
		}
		if count != 1 {
			t.Fatalf("the retried message appeared %d times, want 1", count)
		}
	})

	step(t, "inbound MMS becomes encrypted Matrix media", func(t *testing.T) {
		photo := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 2048)...)
		status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber,
			Body: "photo of the rash", Media: []twiliofake.Media{{ContentType: "image/png", Data: photo}}})
		if err != nil || status != 200 {
			t.Fatalf("webhook: %d %v", status, err)
		}
		img, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return m.MsgType == event.MsgImage && m.RoomID == roomID })
		if err != nil {
			t.Fatal(err)
		}
		if !img.Encrypted || img.Content.File == nil {
			t.Fatal("the photo was not sent as encrypted media")
		}
		got, err := s.nurse.DownloadMedia(ctx, img.Content)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, photo) {
			t.Fatal("the photo in the room differs from the one the patient sent")
		}
	})

	step(t, "staff message goes out as a secure link without content", func(t *testing.T) {
		before := len(s.Twilio.Sent())
		if _, err := s.nurse.SendText(ctx, roomID, "your MRI shows a torn meniscus"); err != nil {
			t.Fatal(err)
		}
		sent, err := s.Twilio.WaitForSent(ctx, before+1)
		if err != nil {
			t.Fatal(err)
		}
		sms := sent[before]
		if sms.To != patientNumber || sms.From != clinicNumber {
			t.Fatalf("SMS from %s to %s", sms.From, sms.To)
		}
		// The words outside the link: a random link token can spell "mri" by chance.
		var words []string
		for _, w := range strings.Fields(sms.Body) {
			if !strings.HasPrefix(w, s.PublicURL+"/l/") {
				words = append(words, w)
			}
		}
		if outside := strings.ToLower(strings.Join(words, " ")); strings.Contains(outside, "mri") || strings.Contains(outside, "meniscus") {
			t.Fatalf("the secure notice carries message content: %q", sms.Body)
		}
		if !strings.Contains(sms.Body, s.PublicURL+"/l/") || !strings.Contains(sms.Body, clinicName) || !strings.Contains(sms.Body, "STOP") {
			t.Fatalf("the secure notice lacks the link, clinic name or STOP: %q", sms.Body)
		}
		if !strings.HasPrefix(sms.StatusCallback, s.StatusURLPrefix()) {
			t.Fatalf("StatusCallback = %q", sms.StatusCallback)
		}
		if _, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
			return m.Notice && m.RoomID == roomID && strings.Contains(m.Body, "secure link")
		}); err != nil {
			t.Fatal("staff were not told the message went as a secure link: ", err)
		}
	})

	step(t, "a message marked non-sensitive goes as plain SMS with the staff name", func(t *testing.T) {
		before := len(s.Twilio.Sent())
		if _, err := s.nurse.SendText(ctx, roomID, "!plain The clinic is closed on Monday."); err != nil {
			t.Fatal(err)
		}
		sent, err := s.Twilio.WaitForSent(ctx, before+1)
		if err != nil {
			t.Fatal(err)
		}
		if body := sent[before].Body; !strings.Contains(body, "The clinic is closed on Monday.") || !strings.Contains(body, clinicName) || strings.Contains(body, "!plain") {
			t.Fatalf("plain SMS body %q", body)
		}
		if _, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
			return m.Notice && m.RoomID == roomID && strings.Contains(m.Body, "plain SMS")
		}); err != nil {
			t.Fatal("staff were not told the message went as plain SMS: ", err)
		}
	})

	step(t, "a failed delivery is shown to staff in words", func(t *testing.T) {
		const landline = "+14155550199"
		s.Twilio.FailDeliveryTo(landline, 30006)
		room := s.createDM(ctx, landline)
		if err := s.nurse.WaitForJoin(ctx, room); err != nil {
			t.Fatal("the care team was not invited to the new room: ", err)
		}
		if _, err := s.nurse.SendText(ctx, room, "please call us back"); err != nil {
			t.Fatal(err)
		}
		notice, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
			return m.Notice && m.RoomID == room && strings.Contains(m.Body, "Not delivered")
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(notice.Body, "landline") || !strings.Contains(notice.Body, "30006") {
			t.Fatalf("the failure notice does not say why: %q", notice.Body)
		}
	})

	step(t, "a bad number gets a clear error", func(t *testing.T) {
		out := s.provisionJSON(ctx, http.MethodPost, "/v3/create_dm/"+url.PathEscape("+1 555"), map[string]any{}, http.StatusBadRequest)
		if msg, _ := out["error"].(string); !strings.Contains(msg, "not a valid phone number") {
			t.Fatalf("error = %v", out)
		}
	})

	step(t, "logs hold no message bodies or full numbers", func(t *testing.T) {
		log := s.BridgeLog()
		for _, secret := range []string{"knee hurts", "torn meniscus", "4155550123", "photo of the rash"} {
			if strings.Contains(log, secret) {
				t.Errorf("the bridge log contains %q", secret)
			}
		}
	})
}
