package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"maunium.net/go/mautrix/event"
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
			s := startStack(t, stackOptions{Postgres: postgres, Network: func(network map[string]any) {
				workflowTemplates(network)
				if !postgres {
					// The admin chose to show names in room names.
					localstack.SetPath(network, "{first_name} {last_name} ···{last4}", "privacy", "patient_name")
				}
			},
				Permissions: map[string]string{"@partner:" + localstack.ServerName: "commands"}})
			keepLogOnFailure(t, s)
			// Long: it runs the portal in Chromium and three staff clients.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
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
			if !postgres {
				if _, err := s.nurse.WaitForEvent(ctx, func(evt *event.Event) bool {
					return evt.RoomID == room && evt.Type == event.StateRoomName && evt.Content.AsRoomName().Name == "Ana López ···0123"
				}); err != nil {
					t.Error("the room was not renamed after the pattern with the recorded name: ", err)
				}
			}
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

// TestBroadcastResumesAfterACrash: a broadcast to opted-out, invalid, duplicate, nameless and
// ordinary numbers is killed with SIGKILL midway; after the restart it finishes, nobody got
// the text twice, and the report counts each kind.
func TestBroadcastResumesAfterACrash(t *testing.T) {
	s := startStack(t, stackOptions{Network: func(network map[string]any) {
		workflowTemplates(network)
		// Slow enough that the kill lands in the middle.
		localstack.SetPath(network, 2, "twilio", "messages_per_second")
	}})
	keepLogOnFailure(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s.mustLogin(ctx)
	const optedOut = "+14155550190"
	if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: optedOut, To: clinicNumber, Body: "STOP"}); err != nil || status != 200 {
		t.Fatalf("webhook: %d %v", status, err)
	}
	if _, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return m.Notice && strings.Contains(m.Body, "opted out") }); err != nil {
		t.Fatal(err)
	}
	named := []string{"+14155550191", "+14155550192", "+14155550193", "+14155550194", "+14155550195"}
	for i, number := range named {
		room := s.createDM(ctx, number)
		if err := s.nurse.WaitForJoin(ctx, room); err != nil {
			t.Fatal(err)
		}
		s.command(ctx, s.nurse, room, "!careline name Pat"+string(rune('A'+i)), "Name recorded")
	}
	const nameless = "+14155550196"
	targets := strings.Join(append(append([]string{}, named...), optedOut, "12345", nameless, "+1 415 555 0191"), ",")
	botRoom := s.botRoom(ctx, s.admin)
	started := s.command(ctx, s.admin, botRoom, `broadcast greeting `+targets+` date="Mon, Jan 4"`, "📣 Broadcast")
	if !strings.Contains(started.Body, "to 9 numbers") {
		t.Errorf("start: %q", started.Body)
	}
	if err := waitUntil(ctx, "two texts of the broadcast", func() bool { return len(s.broadcastTexts()) >= 2 }); err != nil {
		t.Fatal(err)
	}
	s.KillBridge()
	if n := len(s.broadcastTexts()); n >= len(named) {
		t.Logf("the kill came after all %d texts; the resume still must not repeat any", n)
	}
	if err := s.StartBridge(ctx); err != nil {
		t.Fatal(err)
	}
	report := s.botSays(ctx, s.admin, botRoom, "finished")
	for _, want := range []string{"5 sent", "skipped 4", "1 opted out", "1 invalid number", "1 listed twice", "1 missing a value", "0 failed"} {
		if !strings.Contains(report.Body, want) {
			t.Errorf("the report %q lacks %q", report.Body, want)
		}
	}
	got := map[string]int{}
	for _, m := range s.broadcastTexts() {
		got[m.To]++
	}
	for i, number := range named {
		want := "Hello Pat" + string(rune('A'+i)) + ", " + clinicName + " is open again on Mon, Jan 4."
		if got[number] != 1 {
			t.Errorf("%s got the broadcast %d times", number, got[number])
		}
		for _, m := range s.sentTo(number) {
			if strings.HasPrefix(m.Body, "Hello") && m.Body != want {
				t.Errorf("%s got %q, want %q", number, m.Body, want)
			}
		}
	}
	if got[optedOut]+got[nameless] != 0 || len(s.sentTo(optedOut)) != 0 {
		t.Errorf("texts went to the opted-out or nameless patient: %v", got)
	}
	// Each patient's room shows what went.
	if _, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
		return m.Sender == bridgeBot && strings.Contains(m.Body, "📣 Broadcast") && strings.Contains(m.Body, "Hello PatA")
	}); err != nil {
		t.Error("the broadcast is not shown in the patient's room: ", err)
	}
	db := s.openDB(t)
	waitForAudit(ctx, t, db, "broadcast.finished", localstack.AdminUser, "5 sent, 4 skipped, 0 failed", 1)
	waitForAudit(ctx, t, db, "broadcast.sent", localstack.AdminUser, "template greeting", 5)
}

// broadcastTexts are the broadcast's texts the fake Twilio received.
func (s *stack) broadcastTexts() []twiliofake.SentMessage {
	var out []twiliofake.SentMessage
	for _, m := range s.Twilio.Sent() {
		if strings.HasPrefix(m.Body, "Hello Pat") {
			out = append(out, m)
		}
	}
	return out
}

// TestAfterHoursAutoReply: while the clinic is closed (today is a closed date), a patient's
// text gets the generic auto-reply once per window and the room says so; STOP and HELP get
// none, and an opted-out patient none.
func TestAfterHoursAutoReply(t *testing.T) {
	today := time.Now().In(mustZone(t, "Pacific/Auckland")).Format(time.DateOnly)
	tomorrow := time.Now().In(mustZone(t, "Pacific/Auckland")).AddDate(0, 0, 1).Format(time.DateOnly)
	s := startStack(t, stackOptions{Network: func(network map[string]any) {
		localstack.SetPath(network, "Pacific/Auckland", "timezone")
		week := map[string]any{}
		for _, d := range []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"} {
			week[d] = "00:00-24:00"
		}
		localstack.SetPath(network, map[string]any{
			"weekly": week, "closed_dates": []string{today, tomorrow},
			"auto_reply": "{clinic} is closed now. In an emergency call 911.", "auto_reply_every": "12h",
		}, "office_hours")
	}})
	keepLogOnFailure(t, s)
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	autoReply := clinicName + " is closed now. In an emergency call 911."
	text := func(from, body string) {
		t.Helper()
		if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: from, To: clinicNumber, Body: body}); err != nil || status != 200 {
			t.Fatalf("webhook: %d %v", status, err)
		}
		if _, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return m.Body == body }); err != nil {
			t.Fatal(err)
		}
	}
	replies := func(number string) int {
		n := 0
		for _, m := range s.sentTo(number) {
			if m.Body == autoReply {
				n++
			}
		}
		return n
	}
	text(patientNumber, "is the clinic open?")
	_, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return m.Notice && strings.Contains(m.Body, "after-hours auto-reply") })
	if err != nil {
		t.Fatal(err)
	}
	if err = waitUntil(ctx, "the auto-reply", func() bool { return replies(patientNumber) == 1 }); err != nil {
		t.Fatal(err)
	}
	// Within the window: no second reply; HELP never gets one.
	text(patientNumber, "hello again")
	text(patientNumber, "HELP")
	// A second patient's STOP gets no auto-reply either.
	const other = "+14155550177"
	text(other, "STOP")
	text(other, "are you there?")
	text(patientNumber, "last one")
	// The sync point: a message is audited as received after its workflows ran, so once all
	// six are in the trail every auto-reply decision has been made.
	db := s.openDB(t)
	if err = waitUntil(ctx, "six received messages in the audit trail", func() bool {
		var n int
		_ = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM careline_audit WHERE action='message.received'`).Scan(&n)
		return n == 6
	}); err != nil {
		t.Fatal(err)
	}
	if n := replies(patientNumber); n != 1 {
		t.Errorf("%d auto-replies to one patient within the window", n)
	}
	if n := len(s.sentTo(other)); n != 0 {
		t.Errorf("%d texts to a patient who sent STOP", n)
	}
	waitForAudit(ctx, t, db, "autoreply.sent", "system", "after hours", 1)
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestMissedCallTextBack: with missed calls on, careline points the number's voice URL at
// itself; a signed call is answered with <Say>, the caller gets one text per window and a
// room showing the call; a forged call gets 403 and changes nothing.
func TestMissedCallTextBack(t *testing.T) {
	s := startStack(t, stackOptions{Network: func(network map[string]any) {
		localstack.SetPath(network, true, "missed_calls", "enabled")
		localstack.SetPath(network, "You have reached {clinic}. Please text us.", "missed_calls", "say")
		localstack.SetPath(network, "{clinic} missed your call. Text us here.", "missed_calls", "text")
	}})
	keepLogOnFailure(t, s)
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	voiceURL := s.PublicURL + "/twilio/" + accountSID + "-" + strings.TrimPrefix(clinicNumber, "+") + "/voice"
	if got := s.Twilio.VoiceURL(clinicNumber); got != voiceURL {
		t.Fatalf("the number's voice URL is %q, want %q", got, voiceURL)
	}
	const caller = "+14155550160"
	textBack := clinicName + " missed your call. Text us here."
	missedNotices := func() int {
		n := 0
		for _, m := range s.nurse.Messages() {
			if m.Sender == bridgeBot && strings.Contains(m.Body, "📞 Missed call") {
				n++
			}
		}
		return n
	}
	call := func(from string) string {
		t.Helper()
		status, twiml, err := s.Twilio.Call(ctx, voiceURL, from, clinicNumber)
		if err != nil || status != 200 {
			t.Fatalf("voice webhook: %d %v", status, err)
		}
		if !strings.Contains(twiml, "<Response><Say>You have reached "+clinicName+". Please text us.</Say></Response>") {
			t.Fatalf("the answer is not the spoken message: %s", twiml)
		}
		return twiml
	}
	call(caller)
	notice, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
		return m.Sender == bridgeBot && strings.Contains(m.Body, "📞 Missed call") && strings.Contains(m.Body, "got a text")
	})
	if err != nil {
		t.Fatal("the new caller's room does not show the call: ", err)
	}
	if err = waitUntil(ctx, "the text-back", func() bool { return len(s.sentTo(caller)) == 1 }); err != nil {
		t.Fatal(err)
	}
	if got := s.sentTo(caller)[0].Body; got != textBack {
		t.Errorf("text-back %q, want %q", got, textBack)
	}

	// Forged: signed with another token. Refused, nothing recorded.
	params := url.Values{"AccountSid": {accountSID}, "CallSid": {"CA0000"}, "From": {"+14155550161"}, "To": {clinicNumber}, "CallStatus": {"ringing"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, voiceURL, strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twiliofake.Sign("ffffffffffffffffffffffffffffffff", voiceURL, params))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a forged voice webhook got %d, want 403", resp.StatusCode)
	}

	// A second call within text_every: answered, shown, no second text.
	call(caller)
	if _, err = s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
		return m.RoomID == notice.RoomID && strings.Contains(m.Body, "📞 Missed call") && strings.Contains(m.Body, "no text went")
	}); err != nil {
		t.Fatal(err)
	}
	// A withheld number: answered, nobody to text or show.
	call("Anonymous")
	// The sync point for both: a last caller's notice has arrived after them.
	call("+14155550162")
	if err = waitUntil(ctx, "the last caller's notice", func() bool { return missedNotices() == 3 }); err != nil {
		t.Fatal(err)
	}
	if n := len(s.sentTo(caller)); n != 1 {
		t.Errorf("%d texts to a caller within text_every", n)
	}
	if n := len(s.sentTo("+14155550161")); n != 0 {
		t.Errorf("the forged call texted %d times", n)
	}
	db := s.openDB(t)
	var calls int
	if err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM careline_audit WHERE action='call.missed'`).Scan(&calls); err != nil || calls != 3 {
		t.Errorf("%d call.missed audit entries (%v), want 3", calls, err)
	}
}
