package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/localstack"
	"github.com/careline/careline/internal/testenv"
	"github.com/careline/careline/internal/twiliofake"
)

// workflowTemplates are the templates the workflow tests configure.
func workflowTemplates(network map[string]any) {
	localstack.SetPath(network, map[string]any{
		"lab_ready": map[string]any{"body": "Hi {first_name}, your {what} results from {clinic} are ready."},
		"closure":   map[string]any{"body": "{clinic} is closed on {date}. We’re sorry for the trouble.", "sensitive": false},
		"hours":     map[string]any{"body": "{clinic} opens at 8 tomorrow.", "sensitive": false},
		"greeting":  map[string]any{"body": "Hello {first_name}, {clinic} is open again on {date}.", "sensitive": false},
	}, "templates")
}

// sentTo lists the texts the fake Twilio received for a number.
func (s *stack) sentTo(number string) []twiliofake.SentMessage {
	var out []twiliofake.SentMessage
	for _, m := range s.Twilio.Sent() {
		if m.To == number {
			out = append(out, m)
		}
	}
	return out
}

// command sends a bridge command in a room and waits for a new answer of the bot containing want.
func (s *stack) command(ctx context.Context, staff *testenv.StaffClient, room id.RoomID, cmd, want string) testenv.Message {
	s.t.Helper()
	seen := map[id.EventID]bool{}
	for _, m := range staff.Messages() {
		seen[m.EventID] = true
	}
	s.send(ctx, staff, room, cmd)
	return s.botSaysNew(ctx, staff, room, want, seen)
}

// botSaysNew waits until the bot says something containing what in room that is not in seen.
func (s *stack) botSaysNew(ctx context.Context, staff *testenv.StaffClient, room id.RoomID, what string, seen map[id.EventID]bool) testenv.Message {
	s.t.Helper()
	reply, err := staff.WaitForMessage(ctx, func(m testenv.Message) bool {
		return m.RoomID == room && m.Sender == bridgeBot && !seen[m.EventID] && strings.Contains(m.Body, what)
	})
	if err != nil {
		for _, m := range staff.Messages() {
			if m.RoomID == room && !seen[m.EventID] {
				s.t.Logf("%s: %q", m.Sender, m.Body)
			}
		}
		s.t.Fatalf("the bot never said %q: %v", what, err)
	}
	return reply
}

// portalThread opens a secure link in Chromium, verifies with the texted code and returns
// the thread page's text.
func (s *stack) portalThread(t *testing.T, ctx context.Context, link, number string) string {
	t.Helper()
	before := len(s.sentTo(number))
	browser := newBrowser(t)
	err := chromedp.Run(browser, chromedp.Navigate(link), chromedp.WaitVisible(button("Text me a code"), chromedp.BySearch),
		chromedp.Click(button("Text me a code"), chromedp.BySearch))
	if err != nil {
		t.Fatal(pageState(browser), err)
	}
	var code string
	if err = waitUntil(ctx, "the code text", func() bool {
		if sent := s.sentTo(number); len(sent) > before {
			code = codePattern.FindString(sent[len(sent)-1].Body)
		}
		return code != ""
	}); err != nil {
		t.Fatal(err)
	}
	var text string
	err = chromedp.Run(browser,
		chromedp.WaitVisible(byLabel("input", "Verification code"), chromedp.BySearch),
		chromedp.SendKeys(byLabel("input", "Verification code"), code, chromedp.BySearch),
		chromedp.Click(button("Verify"), chromedp.BySearch),
		chromedp.WaitVisible(byLabel("textarea", "Message"), chromedp.BySearch),
		chromedp.Text("body", &text, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(pageState(browser), err)
	}
	return text
}

// TestTemplatesNamesAndFind: a template with a missing value sends nothing and names it; with
// the name recorded it goes by secure link and the portal shows it filled in; a non-sensitive
// one goes as plain SMS and the answer says its cost and the character that forced UCS-2;
// `templates` previews segments; `find` finds the patient by name and by digits, and refuses
// anyone who is not the clinic's own staff.
func TestTemplatesNamesAndFind(t *testing.T) {
	for _, postgres := range []bool{false, true} {
		name := "sqlite"
		if postgres {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) {
			s := startStack(t, stackOptions{Postgres: postgres, Network: workflowTemplates,
				Permissions: map[string]string{"@partner:" + localstack.ServerName: "commands"}})
			keepLogOnFailure(t, s)
			ctx := waitCtx(t)
			s.mustLogin(ctx)
			room := s.createDM(ctx, patientNumber)
			if err := s.nurse.WaitForJoin(ctx, room); err != nil {
				t.Fatal(err)
			}

			missing := s.command(ctx, s.nurse, room, `!careline template lab_ready`, "Nothing was sent")
			for _, want := range []string{"first_name", "what", "name FIRST"} {
				if !strings.Contains(missing.Body, want) {
					t.Errorf("the refusal %q does not name %s", missing.Body, want)
				}
			}
			s.command(ctx, s.nurse, room, `!careline name Ana López`, "Name recorded: Ana López")
			s.command(ctx, s.nurse, room, `!careline template lab_ready`, "needs what")
			if n := len(s.sentTo(patientNumber)); n != 0 {
				t.Fatalf("%d texts went although values were missing", n)
			}

			s.command(ctx, s.nurse, room, `!careline template lab_ready what="blood test"`, "by secure link")
			sent, err := s.Twilio.WaitForSent(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(sent[0].Body, "Ana") || strings.Contains(sent[0].Body, "blood") || linkPattern.FindString(sent[0].Body) == "" {
				t.Fatalf("the secure template's SMS %q carries content or no link", sent[0].Body)
			}
			link := linkPattern.FindString(sent[0].Body)

			plain := s.command(ctx, s.nurse, room, `!careline template closure date="Fri, Dec 25"`, "as plain SMS")
			if !strings.Contains(plain.Body, "1 segment, UCS-2 (forced by the smart quote ’") {
				t.Errorf("the plain send's answer %q does not give its cost and the smart quote", plain.Body)
			}
			sent, err = s.Twilio.WaitForSent(ctx, 2)
			if err != nil {
				t.Fatal(err)
			}
			if want := clinicName + " is closed on Fri, Dec 25. We’re sorry for the trouble."; sent[1].Body != want {
				t.Errorf("plain template went as %q, want %q", sent[1].Body, want)
			}

			list := s.command(ctx, s.nurse, room, `!careline templates`, "Templates")
			for _, want := range []string{"lab_ready — {first_name} {what} — by secure link", "closure — {date} — plain SMS: 1 segment, UCS-2 (forced by the smart quote ’", "hours — plain SMS: 1 segment, GSM-7"} {
				if !strings.Contains(list.Body, want) {
					t.Errorf("templates list lacks %q:\n%s", want, list.Body)
				}
			}

			if !postgres {
				thread := s.portalThread(t, ctx, link, patientNumber)
				if !strings.Contains(thread, "Hi Ana, your blood test results from "+clinicName+" are ready.") {
					t.Errorf("the portal does not show the rendered template:\n%s", thread)
				}
			}

			// find, from the bot room.
			botRoom := s.botRoom(ctx, s.nurse)
			found := s.command(ctx, s.nurse, botRoom, "find lopez", "Ana López")
			if !strings.Contains(found.Body, "https://matrix.to/#/"+room.String()) || !strings.Contains(found.Body, "···0123") {
				t.Errorf("find by name: %q", found.Body)
			}
			found = s.command(ctx, s.nurse, botRoom, "find 0123", "matrix.to")
			if !strings.Contains(found.Body, room.String()) {
				t.Errorf("find by digits: %q", found.Body)
			}
			s.command(ctx, s.nurse, botRoom, "find nobody", "No patient found")
			partner := s.newStaff(ctx, "partner")
			partnerRoom := s.botRoom(ctx, partner)
			refused := s.command(ctx, partner, partnerRoom, "find ana", "Only the clinic's own staff")
			if strings.Contains(refused.Body, "López") || strings.Contains(refused.Body, "matrix.to") {
				t.Errorf("the refusal shows a patient: %q", refused.Body)
			}
			db := s.openDB(t)
			waitForAudit(ctx, t, db, "template.sent", "@nurse:"+localstack.ServerName, "template lab_ready", 1)
			waitForAudit(ctx, t, db, "patients.searched", "@nurse:"+localstack.ServerName, "found", 3)
			waitForAudit(ctx, t, db, "name.recorded", "@nurse:"+localstack.ServerName, "", 1)
		})
	}
}

// TestScheduleSurvivesKill9: a scheduled template goes out once, within a minute of its
// time, although careline was killed with SIGKILL after it was scheduled; a cancelled one
// never goes; a patient writing first reminds staff of what is pending.
func TestScheduleSurvivesKill9(t *testing.T) {
	s := startStack(t, stackOptions{Postgres: true, Network: workflowTemplates})
	keepLogOnFailure(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s.mustLogin(ctx)
	room := s.createDM(ctx, patientNumber)
	if err := s.nurse.WaitForJoin(ctx, room); err != nil {
		t.Fatal(err)
	}
	s.command(ctx, s.nurse, room, `!careline schedule +1m template lab_ready what=x`, "needs first_name")
	kept := s.command(ctx, s.nurse, room, `!careline schedule +1m template hours`, "⏰ Scheduled")
	keptID := strings.Fields(strings.TrimPrefix(kept.Body, "⏰ Scheduled "))[0]
	keptID = strings.TrimSuffix(keptID, ":")
	dropped := s.command(ctx, s.nurse, room, `!careline schedule +1m this must never go`, "⏰ Scheduled")
	droppedID := strings.TrimSuffix(strings.Fields(strings.TrimPrefix(dropped.Body, "⏰ Scheduled "))[0], ":")
	later := s.command(ctx, s.nurse, room, `!careline schedule +2d template hours`, "⏰ Scheduled")
	laterID := strings.TrimSuffix(strings.Fields(strings.TrimPrefix(later.Body, "⏰ Scheduled "))[0], ":")
	list := s.command(ctx, s.nurse, room, `!careline scheduled`, keptID)
	lines := strings.Split(list.Body, "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], keptID) && !strings.HasPrefix(lines[0], droppedID) || !strings.HasPrefix(lines[2], laterID) {
		t.Errorf("scheduled list, one per line starting with its ID:\n%s", list.Body)
	}
	s.command(ctx, s.nurse, room, "!careline unschedule "+droppedID, "Cancelled "+droppedID)
	s.command(ctx, s.nurse, room, "!careline unschedule "+droppedID, "no pending scheduled send")

	s.KillBridge()
	if err := s.StartBridge(ctx); err != nil {
		t.Fatal(err)
	}
	hours := clinicName + " opens at 8 tomorrow."
	if err := waitUntil(ctx, "the scheduled text", func() bool { return len(s.sentTo(patientNumber)) >= 1 }); err != nil {
		t.Fatal(err)
	}
	s.botSays(ctx, s.nurse, room, "Scheduled send "+keptID)

	// The patient writes: staff are reminded once of the send still pending.
	if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: patientNumber, To: clinicNumber, Body: "thanks"}); err != nil || status != 200 {
		t.Fatalf("webhook: %d %v", status, err)
	}
	reminder := s.botSays(ctx, s.nurse, room, "The patient wrote while a scheduled send is pending")
	if !strings.Contains(reminder.Body, laterID) || strings.Contains(reminder.Body, keptID) {
		t.Errorf("reminder %q", reminder.Body)
	}
	// Once more after a second SIGKILL: a later staff message goes, the scheduled one not again.
	s.KillBridge()
	if err := s.StartBridge(ctx); err != nil {
		t.Fatal(err)
	}
	s.send(ctx, s.nurse, room, "!plain see you tomorrow")
	if err := waitUntil(ctx, "the staff text after the restart", func() bool { return len(s.sentTo(patientNumber)) >= 2 }); err != nil {
		t.Fatal(err)
	}
	var scheduled []string
	for _, m := range s.sentTo(patientNumber) {
		if m.Body == hours {
			scheduled = append(scheduled, m.Sid)
		}
		if strings.Contains(m.Body, "never go") {
			t.Error("the cancelled send went out")
		}
	}
	if len(scheduled) != 1 {
		t.Fatalf("the scheduled text went %d times: %v", len(scheduled), s.sentTo(patientNumber))
	}
}
