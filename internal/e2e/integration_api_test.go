package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/careline/careline/api"
	"github.com/careline/careline/internal/localstack"
	"github.com/careline/careline/internal/openapicheck"
	"github.com/careline/careline/internal/testenv"
	"github.com/careline/careline/internal/twiliofake"
	"github.com/careline/careline/webhookout"
)

const webhookSecret = "test-webhook-secret-0123456789"

// webhookSink is the EHR's webhook receiver: it keeps every event whose signature checks out
// and counts the ones that do not.
type webhookSink struct {
	mu     sync.Mutex
	events []map[string]any
	forged int
	srv    *httptest.Server
}

func newWebhookSink(t *testing.T) *webhookSink {
	k := &webhookSink{}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		k.mu.Lock()
		defer k.mu.Unlock()
		if !webhookout.Verify(webhookSecret, body, r.Header.Get("X-Careline-Signature")) {
			k.forged++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var e map[string]any
		_ = json.Unmarshal(body, &e)
		k.events = append(k.events, e)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *webhookSink) waitFor(ctx context.Context, match func(map[string]any) bool) (map[string]any, error) {
	for {
		k.mu.Lock()
		for _, e := range k.events {
			if match(e) {
				k.mu.Unlock()
				return e, nil
			}
		}
		k.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no matching webhook: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// apiClient calls careline's integration API and checks every answer against the OpenAPI
// description careline serves.
type apiClient struct {
	t    *testing.T
	base string
	doc  *openapicheck.Doc
}

func (c *apiClient) do(ctx context.Context, method, path, token, contentType, body string, header ...string) (int, http.Header, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, method, c.base+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if _, err := c.doc.Check(method, path, resp.StatusCode, resp.Header, data); err != nil {
		c.t.Errorf("%s %s: the answer does not match the OpenAPI description: %v\n%s", method, path, err, data)
	}
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return resp.StatusCode, resp.Header, out
}

// waitStatus polls GET /api/v1/messages/{id} until it reports want.
func (c *apiClient) waitStatus(ctx context.Context, token, id, want string) {
	c.t.Helper()
	last := ""
	for {
		status, _, out := c.do(ctx, "GET", "/api/v1/messages/"+id, token, "", "")
		if status == 200 {
			last, _ = out["status"].(string)
			if last == want {
				return
			}
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("message %s stayed %q, want %q", id, last, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func apiTokenCLI(t *testing.T, s *stack, args ...string) string {
	t.Helper()
	cmd := exec.Command(carelineBin, append([]string{"api-token"}, append(args, "-c", s.ConfigPath)...)...)
	cmd.Dir = s.Dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("careline api-token %v: %v\n%s", args, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// appointmentJSON is an Appointment as an EHR sends it, with the patient contained.
func appointmentJSON(start time.Time, number string) string {
	return fmt.Sprintf(`{
  "resourceType": "Appointment", "status": "booked", "start": %q,
  "meta": {"source": "ehr.example"}, "serviceType": [{"text": "Follow-up"}],
  "contained": [{"resourceType": "Patient", "id": "pt", "name": [{"given": ["Ana"], "family": "Rivera"}],
                 "telecom": [{"system": "email", "value": "ana@example.org"}, {"system": "phone", "use": "mobile", "value": %q}]}],
  "participant": [{"actor": {"reference": "#pt"}, "status": "needs-action"},
                  {"actor": {"reference": "Practitioner/7", "display": "Dr. Lee"}, "status": "accepted"},
                  {"actor": {"reference": "Location/2", "display": "Main Street"}, "status": "accepted"}]
}`, start.In(time.FixedZone("-0500", -5*3600)).Format(time.RFC3339), number)
}

// reminderTimes returns the reminder extensions of an Appointment as "state@time".
func reminderTimes(a map[string]any) []string {
	var out []string
	exts, _ := a["extension"].([]any)
	for _, e := range exts {
		m, _ := e.(map[string]any)
		if m["url"] != "https://github.com/careline/careline/fhir/StructureDefinition/reminder" {
			continue
		}
		var at, state string
		subs, _ := m["extension"].([]any)
		for _, s := range subs {
			sm, _ := s.(map[string]any)
			if sm["url"] == "at" {
				at, _ = sm["valueDateTime"].(string)
			} else if sm["url"] == "state" {
				state, _ = sm["valueCode"].(string)
			}
		}
		out = append(out, state+"@"+at)
	}
	return out
}

func patientStatus(a map[string]any) string {
	parts, _ := a["participant"].([]any)
	for _, p := range parts {
		m, _ := p.(map[string]any)
		if actor, _ := m["actor"].(map[string]any); actor["reference"] == "#pt" {
			s, _ := m["status"].(string)
			return s
		}
	}
	return ""
}

// TestIntegrationAPI is an EHR using careline: tokens, a secure message to a new patient and
// its statuses, an idempotent retry, a broadcast, FHIR appointments with reminders that move
// and are withdrawn, and reminders answered by SMS and by the portal's button, reaching the
// room, the Appointment and the EHR's webhook. Every answer is checked against the OpenAPI
// description.
func TestIntegrationAPI(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) { testIntegrationAPI(t, kind == "postgres") })
	}
}

func testIntegrationAPI(t *testing.T, postgres bool) {
	sink := newWebhookSink(t)
	s := startStack(t, stackOptions{Postgres: postgres, Network: func(n map[string]any) {
		n["templates"] = map[string]any{
			"appointment_reminder": map[string]any{
				"body":      "Hi {first_name}, {clinic} reminds you of your appointment on {date} at {time} with {provider}. Reply 1 to confirm or 2 to cancel.",
				"sensitive": true,
			},
			"closure": map[string]any{"body": "{clinic} is closed on {date}.", "sensitive": false},
		}
		localstack.SetPath(n, []any{"72h", "24h"}, "reminders", "offsets")
		localstack.SetPath(n, sink.srv.URL, "api", "webhook_url")
		localstack.SetPath(n, webhookSecret, "api", "webhook_secret")
	}})
	keepLogOnFailure(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s.mustLogin(ctx)
	doc, err := openapicheck.Load(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	c := &apiClient{t: t, base: s.PublicURL, doc: doc}
	token := apiTokenCLI(t, s, "create", "ehr")
	other := apiTokenCLI(t, s, "create", "scheduler")
	old := apiTokenCLI(t, s, "create", "old")
	apiTokenCLI(t, s, "revoke", "old")

	step(t, "the description is served without a token", func(t *testing.T) {
		status, _, out := c.do(ctx, "GET", "/api/v1/openapi.json", "", "", "")
		if status != 200 || out["openapi"] != "3.0.3" {
			t.Fatalf("openapi.json: %d", status)
		}
	})

	step(t, "a token is required; wrong and revoked ones are refused", func(t *testing.T) {
		body := `{"to":"+14155550140","body":"should never be sent"}`
		for name, tok := range map[string]string{"missing": "", "wrong": token[:len(token)-3] + "abc", "revoked": old} {
			if status, _, out := c.do(ctx, "POST", "/api/v1/messages", tok, "application/json", body); status != 401 || out["error"] == "" {
				t.Errorf("%s token: %d %v", name, status, out)
			}
		}
		for _, m := range s.Twilio.Sent() {
			if m.To == "+14155550140" {
				t.Fatal("a refused call sent a text")
			}
		}
	})

	const first = "+14155550141" // the patient of the secure message; answers in the portal
	const canary = "Your A1C came back at 6.1, canary-7f3a"
	var msgID, room string
	var notice testenv.Message
	s.Twilio.HoldStatuses()
	step(t, "a message to a new patient arrives securely", func(t *testing.T) {
		status, _, out := c.do(ctx, "POST", "/api/v1/messages", token, "application/json",
			`{"to":"`+first+`","body":"`+canary+`"}`)
		msgID, _ = out["id"].(string)
		room, _ = out["room_id"].(string)
		if status != 202 || msgID == "" || !strings.HasPrefix(room, "!") {
			t.Fatalf("POST: %d %v", status, out)
		}
		var err error
		notice, err = s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return strings.Contains(m.Body, canary) })
		if err != nil {
			t.Fatal(err)
		}
		if string(notice.RoomID) != room || !notice.Encrypted || !strings.Contains(notice.Body, `the integration "ehr"`) || !strings.Contains(notice.Body, "secure link") {
			t.Fatalf("the room shows %+v", notice)
		}
		sent, err := s.Twilio.WaitForSent(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if sent[0].To != first || strings.Contains(sent[0].Body, "6.1") || strings.Contains(sent[0].Body, "canary") || !linkPattern.MatchString(sent[0].Body) {
			t.Fatalf("the SMS is not a content-free secure link: %+v", sent[0])
		}
	})

	step(t, "its status moves queued, sent, delivered", func(t *testing.T) {
		c.waitStatus(ctx, token, msgID, "queued")
		sid := s.Twilio.Sent()[0].Sid
		s.Twilio.ReleaseStatus(sid)
		c.waitStatus(ctx, token, msgID, "sent")
		s.Twilio.ReleaseStatus(sid)
		c.waitStatus(ctx, token, msgID, "delivered")
		status, _, out := c.do(ctx, "GET", "/api/v1/messages/"+msgID, token, "", "")
		if status != 200 || out["mode"] != "secure" {
			t.Fatalf("GET: %d %v", status, out)
		}
		if status, _, _ := c.do(ctx, "GET", "/api/v1/messages/"+msgID, other, "", ""); status != 404 {
			t.Fatalf("another token sees the message: %d", status)
		}
	})

	const second = "+14155550142"
	step(t, "an idempotent retry sends once", func(t *testing.T) {
		body := `{"to":"` + second + `","body":"Please bring your insurance card"}`
		_, _, a := c.do(ctx, "POST", "/api/v1/messages", token, "application/json", body, "Idempotency-Key", "visit-77")
		status, h, b := c.do(ctx, "POST", "/api/v1/messages", token, "application/json", body, "Idempotency-Key", "visit-77")
		if status != 202 || a["id"] != b["id"] || h.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retry: %d %v vs %v", status, a, b)
		}
		// Each send posts its room notice and queues its text together; the room shows them in
		// order, so once the later message is there, a second send of the retried one would be too.
		if status, _, _ := c.do(ctx, "POST", "/api/v1/messages", token, "application/json", `{"to":"`+second+`","body":"later"}`); status != 202 {
			t.Fatal(status)
		}
		later, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return strings.HasSuffix(m.Body, "\nlater") })
		if err != nil {
			t.Fatal(err)
		}
		// The nurse's client may decrypt the first message of a new room after a later one (its
		// room key can arrive late): wait for it before counting.
		if _, err = s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
			return m.RoomID == later.RoomID && strings.Contains(m.Body, "insurance card")
		}); err != nil {
			t.Fatal("the message was never sent: ", err)
		}
		copies := 0
		for _, m := range s.nurse.Messages() {
			if m.RoomID == later.RoomID && strings.Contains(m.Body, "insurance card") {
				copies++
			}
		}
		if copies != 1 {
			t.Fatalf("the retried message was sent %d times", copies)
		}
		waitSentTo(ctx, t, s, second, 2)
	})

	step(t, "a failed message shows in its status and reaches the webhook", func(t *testing.T) {
		const landline = "+14155550146"
		s.Twilio.FailDeliveryTo(landline, 30006)
		status, _, out := c.do(ctx, "POST", "/api/v1/messages", token, "application/json", `{"to":"`+landline+`","body":"Your referral is ready"}`)
		id, _ := out["id"].(string)
		if status != 202 {
			t.Fatalf("POST: %d %v", status, out)
		}
		sent := waitSentTo(ctx, t, s, landline, 1)
		s.Twilio.ReleaseStatus(sent[0].Sid)
		s.Twilio.ReleaseStatus(sent[0].Sid)
		c.waitStatus(ctx, token, id, "failed")
		_, _, out = c.do(ctx, "GET", "/api/v1/messages/"+id, token, "", "")
		if e, _ := out["error"].(string); !strings.Contains(e, "30006") {
			t.Fatalf("the error does not say why: %v", out)
		}
		if _, err := sink.waitFor(ctx, func(e map[string]any) bool { return e["type"] == "message.failed" && e["message_id"] == id }); err != nil {
			t.Fatal(err)
		}
	})

	step(t, "a broadcast skips invalid numbers", func(t *testing.T) {
		status, _, out := c.do(ctx, "POST", "/api/v1/broadcasts", token, "application/json",
			`{"template":"closure","to":["+14155550143","not a number"],"params":{"date":"Fri, Dec 25"}}`)
		id, _ := out["id"].(string)
		if status != 202 || id == "" {
			t.Fatalf("POST: %d %v", status, out)
		}
		for {
			if status, _, out = c.do(ctx, "GET", "/api/v1/broadcasts/"+id, token, "", ""); status == 200 && out["done"] == true {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("broadcast not done: %v", out)
			case <-time.After(100 * time.Millisecond):
			}
		}
		skipped, _ := out["skipped"].(map[string]any)
		if out["sent"] != float64(1) || skipped["invalid_number"] != float64(1) {
			t.Fatalf("broadcast report: %v", out)
		}
		if status, _, _ := c.do(ctx, "GET", "/api/v1/broadcasts/"+id, other, "", ""); status != 404 {
			t.Fatalf("another token sees the broadcast: %d", status)
		}
		if status, _, out := c.do(ctx, "POST", "/api/v1/broadcasts", token, "application/json", `{"template":"closure","to":["+14155550143"]}`); status != 422 || !strings.Contains(out["error"].(string), "date") {
			t.Fatalf("missing value: %d %v", status, out)
		}
	})

	step(t, "an appointment three days ahead schedules reminders; an update moves them; DELETE withdraws them", func(t *testing.T) {
		start := time.Now().Add(72*time.Hour + time.Hour).Truncate(time.Second)
		status, h, out := c.do(ctx, "PUT", "/fhir/r4/Appointment/visit-1", token, "application/fhir+json", appointmentJSON(start, "+14155550144"))
		if status != 201 || h.Get("Location") != "/fhir/r4/Appointment/visit-1" {
			t.Fatalf("PUT: %d %v", status, out)
		}
		want := []string{"scheduled@" + start.Add(-72*time.Hour).UTC().Format(time.RFC3339), "scheduled@" + start.Add(-24*time.Hour).UTC().Format(time.RFC3339)}
		if got := reminderTimes(out); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("reminders %v, want %v", got, want)
		}
		if out["serviceType"] == nil {
			t.Fatal("a field careline does not use was dropped")
		}
		moved := start.Add(24 * time.Hour)
		if status, _, out = c.do(ctx, "PUT", "/fhir/r4/Appointment/visit-1", other, "application/fhir+json", appointmentJSON(moved, "+14155550144")); status != 200 {
			t.Fatalf("update by another token: %d %v", status, out)
		}
		_, _, out = c.do(ctx, "GET", "/fhir/r4/Appointment/visit-1", token, "", "")
		want = []string{"scheduled@" + moved.Add(-72*time.Hour).UTC().Format(time.RFC3339), "scheduled@" + moved.Add(-24*time.Hour).UTC().Format(time.RFC3339)}
		if got := reminderTimes(out); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after the move: %v, want %v", got, want)
		}
		if status, _, _ = c.do(ctx, "DELETE", "/fhir/r4/Appointment/visit-1", token, "", ""); status != 204 {
			t.Fatalf("DELETE: %d", status)
		}
		if status, _, out = c.do(ctx, "GET", "/fhir/r4/Appointment/visit-1", token, "", ""); status != 410 || out["resourceType"] != "OperationOutcome" {
			t.Fatalf("GET after DELETE: %d %v", status, out)
		}
	})

	step(t, "malformed FHIR gets an OperationOutcome", func(t *testing.T) {
		future := time.Now().Add(48 * time.Hour)
		for name, c2 := range map[string]struct {
			body   string
			status int
		}{
			"not JSON":        {`{"resourceType": "Appointment",`, 400},
			"no start":        {strings.Replace(appointmentJSON(future, first), `"start"`, `"end"`, 1), 400},
			"no mobile":       {strings.Replace(appointmentJSON(future, first), `"use": "mobile"`, `"use": "old"`, 1), 422},
			"not a number":    {appointmentJSON(future, "+1 555 12"), 422},
			"already started": {appointmentJSON(time.Now().Add(-time.Hour), first), 422},
		} {
			status, _, out := c.do(ctx, "PUT", "/fhir/r4/Appointment/bad-1", token, "application/fhir+json", c2.body)
			issues, _ := out["issue"].([]any)
			if status != c2.status || out["resourceType"] != "OperationOutcome" || len(issues) != 1 || issues[0].(map[string]any)["diagnostics"] == "" {
				t.Errorf("%s: %d %v", name, status, out)
			}
		}
		if status, _, _ := c.do(ctx, "GET", "/fhir/r4/Appointment/bad-1", token, "", ""); status != 404 {
			t.Fatalf("a refused PUT created the appointment: %d", status)
		}
	})

	// Two appointments whose 72-hour reminder falls due a few seconds from now: one for the
	// patient who answers by SMS, one for the patient who answers in the portal.
	const bySMS = "+14155550145"
	soon := time.Now().Add(72*time.Hour + 3*time.Second)
	for id, number := range map[string]string{"visit-sms": bySMS, "visit-portal": first} {
		if status, _, out := c.do(ctx, "PUT", "/fhir/r4/Appointment/"+id, token, "application/fhir+json", appointmentJSON(soon, number)); status != 201 {
			t.Fatalf("PUT %s: %d %v", id, status, out)
		}
	}
	// And one without a practitioner, whose reminder cannot fill {provider}.
	noProvider := strings.Replace(appointmentJSON(soon, "+14155550147"), `{"actor": {"reference": "Practitioner/7", "display": "Dr. Lee"}, "status": "accepted"},`, "", 1)
	if status, _, out := c.do(ctx, "PUT", "/fhir/r4/Appointment/visit-noprov", token, "application/fhir+json", noProvider); status != 201 {
		t.Fatalf("PUT visit-noprov: %d %v", status, out)
	}

	step(t, "a reminder answered 1 by SMS reaches the room, the Appointment and the webhook", func(t *testing.T) {
		reminder, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
			return strings.Contains(m.Body, "appointment reminder") && strings.Contains(m.Body, "visit-sms")
		})
		if err != nil {
			t.Fatal(err)
		}
		// {date} and {time} in the clinic's zone (the example config's America/New_York).
		newYork, _ := time.LoadLocation("America/New_York")
		when := "on " + soon.In(newYork).Format("Mon, Jan 2") + " at " + soon.In(newYork).Format("3:04 PM")
		if !strings.Contains(reminder.Body, "Hi Ana, "+clinicName) || !strings.Contains(reminder.Body, "with Dr. Lee") || !strings.Contains(reminder.Body, when) {
			t.Fatalf("the reminder staff see: %q", reminder.Body)
		}
		waitSentTo(ctx, t, s, bySMS, 1)
		if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: bySMS, To: clinicNumber, Body: " 1 "}); err != nil || status != 200 {
			t.Fatalf("webhook: %d %v", status, err)
		}
		if _, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return m.Body == " 1 " && m.RoomID == reminder.RoomID }); err != nil {
			t.Fatal("the reply itself was not bridged: ", err)
		}
		if _, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
			return m.Notice && m.RoomID == reminder.RoomID && strings.Contains(m.Body, "The patient confirmed appointment visit-sms")
		}); err != nil {
			t.Fatal(err)
		}
		_, _, out := c.do(ctx, "GET", "/fhir/r4/Appointment/visit-sms", token, "", "")
		if patientStatus(out) != "accepted" {
			t.Fatalf("participant status %q, want accepted", patientStatus(out))
		}
		if _, err := sink.waitFor(ctx, func(e map[string]any) bool {
			return e["type"] == "appointment.confirmed" && e["appointment_id"] == "visit-sms" && e["answered_via"] == "sms"
		}); err != nil {
			t.Fatal(err)
		}
	})

	step(t, "a reminder answered with the portal's Cancel button, and the message read", func(t *testing.T) {
		if _, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
			return strings.Contains(m.Body, "appointment reminder") && strings.Contains(m.Body, "visit-portal")
		}); err != nil {
			t.Fatal(err)
		}
		texts := waitSentTo(ctx, t, s, first, 2)
		link := linkPattern.FindString(texts[len(texts)-1].Body)
		if link == "" {
			t.Fatalf("no link in the reminder's text %q", texts[len(texts)-1].Body)
		}
		browser := newBrowser(t)
		if err := chromedp.Run(browser, chromedp.Navigate(link), chromedp.Click(button("Text me a code"), chromedp.BySearch)); err != nil {
			t.Fatal(pageState(browser), err)
		}
		codes := waitSentTo(ctx, t, s, first, 3)
		var page string
		err := chromedp.Run(browser,
			chromedp.SendKeys(byLabel("input", "Verification code"), codePattern.FindString(codes[2].Body), chromedp.BySearch),
			chromedp.Click(button("Verify"), chromedp.BySearch),
			chromedp.WaitVisible(button("Confirm"), chromedp.BySearch),
			chromedp.Text("body", &page, chromedp.ByQuery),
		)
		if err != nil {
			t.Fatal(pageState(browser), err)
		}
		if !strings.Contains(page, canary) || !strings.Contains(page, "Your appointment") || !strings.Contains(page, "Dr. Lee") {
			t.Fatalf("the thread page:\n%s", page)
		}
		c.waitStatus(ctx, token, msgID, "read")
		err = chromedp.Run(browser,
			chromedp.Click(button("Cancel appointment"), chromedp.BySearch),
			chromedp.WaitVisible(`//p[contains(., 'cannot come')]`, chromedp.BySearch),
		)
		if err != nil {
			t.Fatal(pageState(browser), err)
		}
		if _, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
			return m.Notice && string(m.RoomID) == room && strings.Contains(m.Body, "The patient cancelled appointment visit-portal") && strings.Contains(m.Body, "in the portal")
		}); err != nil {
			t.Fatal(err)
		}
		_, _, out := c.do(ctx, "GET", "/fhir/r4/Appointment/visit-portal", token, "", "")
		if patientStatus(out) != "declined" {
			t.Fatalf("participant status %q, want declined", patientStatus(out))
		}
		if _, err := sink.waitFor(ctx, func(e map[string]any) bool {
			return e["type"] == "appointment.declined" && e["appointment_id"] == "visit-portal" && e["answered_via"] == "portal"
		}); err != nil {
			t.Fatal(err)
		}
	})

	step(t, "a reminder whose template needs a value the appointment lacks is not sent; staff are told", func(t *testing.T) {
		if _, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
			return m.Notice && strings.Contains(m.Body, "visit-noprov") && strings.Contains(m.Body, "was not sent") && strings.Contains(m.Body, "provider")
		}); err != nil {
			t.Fatal(err)
		}
		if n := len(sentTo(s, "+14155550147")); n != 0 {
			t.Fatalf("%d texts went to the patient", n)
		}
		_, _, out := c.do(ctx, "GET", "/fhir/r4/Appointment/visit-noprov", token, "", "")
		if got := reminderTimes(out); len(got) != 2 || !strings.HasPrefix(got[0], "not_sent@") {
			t.Fatalf("reminders %v", got)
		}
	})

	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.forged != 0 {
		t.Fatalf("%d webhooks carried a wrong signature", sink.forged)
	}
	for _, e := range sink.events {
		data, _ := json.Marshal(e)
		if bytes.Contains(data, []byte("Ana")) || bytes.Contains(data, []byte("0145")) || bytes.Contains(data, []byte("Lee")) {
			t.Fatalf("a webhook carries patient data: %s", data)
		}
	}
}

func sentTo(s *stack, number string) []twiliofake.SentMessage {
	var out []twiliofake.SentMessage
	for _, m := range s.Twilio.Sent() {
		if m.To == number {
			out = append(out, m)
		}
	}
	return out
}

// waitSentTo waits until at least n texts went to number and returns them.
func waitSentTo(ctx context.Context, t *testing.T, s *stack, number string, n int) []twiliofake.SentMessage {
	t.Helper()
	for {
		if got := sentTo(s, number); len(got) >= n {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d texts to %s, want %d", len(sentTo(s, number)), number, n)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
