package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/api"
	"github.com/careline/careline/internal/openapicheck"
)

// TestSendsThatAnswerAndReport: a template, a scheduled send and an API send answer the
// patient's wait like a typed message (out of the queue and the Needs reply space, a first
// response recorded for whoever sent it); `report` in the bot room then gives the numbers of the
// known conversation set: six patients wrote (one STOP), four texts went out (one undelivered),
// four first responses (three by the nurse, one by the integration), one patient unanswered.
func TestSendsThatAnswerAndReport(t *testing.T) {
	s := startStack(t, stackOptions{Network: workflowTemplates})
	keepLogOnFailure(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute) // the scheduled send waits a minute
	defer cancel()
	s.mustLogin(ctx)
	db := s.openDB(t)
	botRoom := s.botRoom(ctx, s.nurse)
	token := apiTokenCLI(t, s, "create", "ehr")
	numbers := map[string]string{}
	rooms := map[string]id.RoomID{}
	for i, who := range []string{"template", "scheduled", "api", "unanswered", "stop", "undelivered"} {
		numbers[who] = fmt.Sprintf("+1415555014%d", i)
		body := "a question from " + who
		if who == "stop" {
			body = "STOP"
		}
		rooms[who] = s.patientTexts(ctx, numbers[who], body).RoomID
	}
	needs := s.inboxSpace(ctx, db, "")
	s.spaceHolds(ctx, "five waiting (STOP is not a question)", needs,
		rooms["template"], rooms["scheduled"], rooms["api"], rooms["unanswered"], rooms["undelivered"])

	s.command(ctx, s.nurse, rooms["template"], "!careline template hours", "📝 Template hours")
	s.command(ctx, s.nurse, rooms["scheduled"], "!careline schedule +1m template hours", "⏰ Scheduled")
	doc, err := openapicheck.Load(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	c := &apiClient{t: t, base: s.PublicURL, doc: doc}
	if status, _, out := c.do(ctx, "POST", "/api/v1/messages", token, "application/json",
		`{"to":"`+numbers["api"]+`","body":"Your results are in the portal."}`); status != 202 {
		t.Fatalf("POST /api/v1/messages: %d %v", status, out)
	}
	s.Twilio.FailDeliveryTo(numbers["undelivered"], 30003)
	s.send(ctx, s.nurse, rooms["undelivered"], "We will call you")
	s.spaceHolds(ctx, "the scheduled send still pending", needs, rooms["scheduled"], rooms["unanswered"])
	s.botSays(ctx, s.nurse, rooms["scheduled"], "went")
	s.spaceHolds(ctx, "only the unanswered left", needs, rooms["unanswered"])
	if queued, _ := s.queueRooms(ctx, botRoom); len(queued) != 1 || queued[0] != rooms["unanswered"] {
		t.Fatalf("queue %v, want only %s", queued, rooms["unanswered"])
	}
	if err = waitUntil(ctx, "the undelivered text", func() bool {
		var failed int
		return db.QueryRowContext(ctx, `SELECT COUNT(*) FROM careline_message WHERE status = 'undelivered'`).Scan(&failed) == nil && failed == 1
	}); err != nil {
		t.Fatal(err)
	}

	nurse := s.nurse.UserID.String()
	report := s.command(ctx, s.nurse, botRoom, "report", "Report for").Body
	// One line per fact; the waits themselves depend on the machine's speed, the counts do not.
	hasLine := func(prefix, suffix string) bool {
		for _, line := range strings.Split(report, "\n") {
			line = strings.TrimSpace(line)
			if line == prefix || suffix != "" && strings.HasPrefix(line, prefix) && strings.HasSuffix(line, suffix) {
				return true
			}
		}
		return false
	}
	for _, want := range [][2]string{
		{"Messages in: 6", ""}, {"Messages out: 4", ""}, {"First response: median", "(4 replies)"},
		{nurse + ": median", "(3 replies)"}, {"api:ehr: median", "(1 reply)"},
		{"Unanswered now: 1", ""}, {"Failed deliveries: 1", ""}, {"Opt-outs: 1", ""},
	} {
		if !hasLine(want[0], want[1]) {
			t.Errorf("the report has no line %q … %q:\n%s", want[0], want[1], report)
		}
	}
	for _, secret := range []string{"a question", "Your results", "We will call", "+1415555014"} {
		if strings.Contains(report, secret) {
			t.Errorf("the report holds %q:\n%s", secret, report)
		}
	}
}
