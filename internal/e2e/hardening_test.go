package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/localstack"
	"github.com/careline/careline/internal/testenv"
	"github.com/careline/careline/internal/twiliofake"
)

// TestLoginAdminOnly: connecting the clinic's number is for bridge admins (a `user`-level
// nurse is refused), and a second admin logging in with the same credentials does not take
// the login over from the first.
func TestLoginAdminOnly(t *testing.T) {
	secondAdmin := "@admin2:" + localstack.ServerName
	s := startStack(t, stackOptions{Permissions: map[string]string{secondAdmin: "admin"}})
	ctx := waitCtx(t)

	status, out, err := s.LoginAs(ctx, s.nurse.UserID.String(), accountSID, authToken)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusForbidden || !strings.Contains(out["error"].(string), "administrators") {
		t.Fatalf("the nurse's login: HTTP %d %v", status, out)
	}
	s.mustLogin(ctx)

	status, out, err = s.LoginAs(ctx, secondAdmin, accountSID, authToken)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusConflict || !strings.Contains(out["error"].(string), "already connected by "+localstack.AdminUser) {
		t.Fatalf("the second admin's login: HTTP %d %v", status, out)
	}
	// The first admin still holds the login: opening a patient's room works for them.
	s.createDM(ctx, "+14155550142")
}

var linkRe = regexp.MustCompile(`https?://\S+/l/[A-Za-z0-9_-]+`)

// secureLink has the nurse write to the patient and returns the link in the text that went out.
func (s *stack) secureLink(ctx context.Context, room id.RoomID, body string) string {
	s.t.Helper()
	before := len(s.Twilio.Sent())
	s.send(ctx, s.nurse, room, body)
	sent, err := s.Twilio.WaitForSent(ctx, before+1)
	if err != nil {
		s.t.Fatal(err)
	}
	link := linkRe.FindString(sent[before].Body)
	if link == "" {
		s.t.Fatalf("no link in %q", sent[before].Body)
	}
	return link
}

// linkOpens reports whether the portal accepts the link (redirects to the code page).
func linkOpens(t *testing.T, link string) bool {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusSeeOther && resp.Header.Get("Location") == "/verify"
}

// TestEndAccessAndStop: `end-access` ends the patient's links (lost phone, recycled number),
// and so does a STOP from the number.
func TestEndAccessAndStop(t *testing.T) {
	s := startStack(t, stackOptions{})
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	room := s.createDM(ctx, patientNumber)
	if err := s.nurse.WaitForJoin(ctx, room); err != nil {
		t.Fatal(err)
	}
	link := s.secureLink(ctx, room, "first secure message")
	if !linkOpens(t, link) {
		t.Fatal("a fresh link does not open")
	}
	s.send(ctx, s.nurse, room, "!careline end-access")
	s.botSays(ctx, s.nurse, room, "Portal access ended")
	if linkOpens(t, link) {
		t.Fatal("the link still opens after end-access")
	}

	link = s.secureLink(ctx, room, "second secure message")
	if !linkOpens(t, link) {
		t.Fatal("a link sent after end-access does not open")
	}
	if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber, Body: "STOP"}); err != nil || status != 200 {
		t.Fatalf("webhook: %d %v", status, err)
	}
	if _, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return m.Notice && strings.Contains(m.Body, "opted out") }); err != nil {
		t.Fatal(err)
	}
	if linkOpens(t, link) {
		t.Fatal("the link still opens after the patient texted STOP")
	}
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestOperationsEndpoints: /healthz on the public listener; /metrics and /readyz on the
// private metrics listener, scraped from the real binary; /readyz names the homeserver while
// it is down, and /healthz still answers.
func TestOperationsEndpoints(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := l.Addr().String()
	_ = l.Close()
	s := startStack(t, stackOptions{Network: func(network map[string]any) {
		network["metrics"] = map[string]any{"listen": metricsAddr}
	}})
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber, Body: "hello clinic"}); err != nil || status != 200 {
		t.Fatalf("webhook: %d %v", status, err)
	}
	hello, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return m.Body == "hello clinic" })
	if err != nil {
		t.Fatal(err)
	}
	// The nurse answers: a secure-link text goes out through the outbox.
	before := len(s.Twilio.Sent())
	s.send(ctx, s.nurse, hello.RoomID, "your results are in")
	if _, err = s.Twilio.WaitForSent(ctx, before+1); err != nil {
		t.Fatal(err)
	}

	if code, body := httpGet(t, s.PublicURL+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, _ := httpGet(t, s.PublicURL+"/metrics"); code == http.StatusOK {
		t.Fatal("metrics are served on the public listener")
	}
	code, body := httpGet(t, "http://"+metricsAddr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`careline_webhook_duration_seconds_count{code="2xx",kind="sms"} 1`,
		`go_sql_open_connections{db_name="careline"}`,
		`careline_messages_total{direction="in",mode="sms",result="ok"} 1`,
		"careline_inbox_depth 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the scrape lacks %s", want)
		}
	}
	// The sender records Twilio's answer just after handing the text over.
	for !strings.Contains(body, `careline_messages_total{direction="out",mode="secure",result="ok"} 1`) || !strings.Contains(body, "careline_outbox_depth 0") {
		select {
		case <-ctx.Done():
			t.Fatalf("the scrape lacks the secure text sent or an empty outbox:\n%s", body)
		case <-time.After(100 * time.Millisecond):
		}
		_, body = httpGet(t, "http://"+metricsAddr+"/metrics")
	}
	if strings.Contains(body, strings.TrimPrefix(patientNumber, "+1")) {
		t.Error("the scrape shows the patient's number")
	}
	if code, body = httpGet(t, "http://"+metricsAddr+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with everything up: %d %q", code, body)
	}

	if err = s.HS.Stop(); err != nil {
		t.Fatal(err)
	}
	for {
		code, body = httpGet(t, "http://"+metricsAddr+"/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "homeserver: ") {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/readyz with the homeserver down: %d %q", code, body)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if code, body = httpGet(t, s.PublicURL+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz with the homeserver down: %d %q", code, body)
	}
}

// TestAuditExportOnlyIntoPrivateRooms: even among administrators only, the audit trail goes
// only into an end-to-end encrypted, invite-only room.
func TestAuditExportOnlyIntoPrivateRooms(t *testing.T) {
	s := startStack(t, stackOptions{})
	ctx := waitCtx(t)
	for _, tc := range []struct {
		req  *mautrix.ReqCreateRoom
		want string
	}{
		// With encryption.require (careline's default) bridgev2 already refuses every message
		// in an unencrypted room ("the message is not encrypted"); careline's own check
		// ("not end-to-end encrypted") stands behind it where require is off.
		{&mautrix.ReqCreateRoom{Preset: "private_chat", Name: "plain", Invite: []id.UserID{bridgeBot}}, "encrypted"},
		{&mautrix.ReqCreateRoom{Preset: "public_chat", Name: "public", Invite: []id.UserID{bridgeBot},
			InitialState: []*event.Event{{Type: event.StateEncryption,
				Content: event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}}}, "anyone may join"},
	} {
		resp, err := s.admin.Client.CreateRoom(ctx, tc.req)
		if err != nil {
			t.Fatal(err)
		}
		s.waitForBot(ctx, s.admin, resp.RoomID)
		s.send(ctx, s.admin, resp.RoomID, "!careline audit-export")
		s.botSays(ctx, s.admin, resp.RoomID, tc.want)
	}
}

// TestStaffPlainNeedsConsent: with network.delivery.staff_plain at its default (false), a
// `!plain` message goes by secure link and staff are told why, until the patient's consent is
// recorded; then it goes as plain SMS.
func TestStaffPlainNeedsConsent(t *testing.T) {
	s := startStack(t, stackOptions{StaffPlainDefault: true})
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	room := s.createDM(ctx, patientNumber)
	if err := s.nurse.WaitForJoin(ctx, room); err != nil {
		t.Fatal(err)
	}
	link := s.secureLink(ctx, room, "!plain lab-value-4417 is normal")
	if sent := s.Twilio.Sent(); strings.Contains(sent[len(sent)-1].Body, "lab-value-4417") {
		t.Fatal("the body went as plain SMS without consent")
	}
	if link == "" {
		t.Fatal("no secure link")
	}
	s.botSays(ctx, s.nurse, room, "`!plain` is honoured only for patients whose consent")

	s.send(ctx, s.nurse, room, "!careline consent verbal, at check-in")
	s.botSays(ctx, s.nurse, room, "Consent to plain SMS recorded")
	before := len(s.Twilio.Sent())
	s.send(ctx, s.nurse, room, "!plain see you at 3pm")
	sent, err := s.Twilio.WaitForSent(ctx, before+1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sent[before].Body, "see you at 3pm") {
		t.Fatalf("with consent, !plain went as %q", sent[before].Body)
	}
}
