package e2e

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/localstack"
	"github.com/careline/careline/internal/testenv"
)

// TestBotRoomLoginAndStartChat: the clinic admin connects the number with the bot's `login`
// command in an encrypted management room (a wrong token is refused in words), then opens a
// patient's room with `start-chat`, and the care team is invited to it.
func TestBotRoomLoginAndStartChat(t *testing.T) {
	s := startStack(t, stackOptions{})
	ctx := waitCtx(t)
	room := s.botRoom(ctx, s.admin)
	botSays := func(what string) string { t.Helper(); return s.botSays(ctx, s.admin, room, what).Body }
	var err error

	if _, err = s.admin.SendText(ctx, room, "login twilio "+accountSID+" 00000000000000000000000000000000 "+clinicNumber+" -"); err != nil {
		t.Fatal(err)
	}
	if reply := botSays("auth token"); strings.Contains(reply, "00000000000000000000000000000000") {
		t.Fatalf("the refusal repeats the token: %q", reply)
	}
	if _, err = s.admin.SendText(ctx, room, "login twilio "+accountSID+" "+authToken+" "+clinicNumber+" -"); err != nil {
		t.Fatal(err)
	}
	botSays("Connected the Twilio number")

	if _, err = s.admin.SendText(ctx, room, "start-chat +1 (415) 555-0142"); err != nil {
		t.Fatal(err)
	}
	created := botSays("Created chat with")
	if strings.Contains(created, "5550142") {
		t.Fatalf("the bot's reply shows the full number: %q", created)
	}
	patientRoom, err := s.nurse.WaitForInvite(ctx)
	if err != nil {
		t.Fatal("the care team was not invited to the patient's room: ", err)
	}
	if err = s.nurse.WaitForJoin(ctx, patientRoom); err != nil {
		t.Fatal(err)
	}
	if _, err = s.nurse.SendText(ctx, patientRoom, "!plain the clinic is closed on Friday"); err != nil {
		t.Fatal(err)
	}
	sent, err := s.Twilio.WaitForSent(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if sent[0].To != "+14155550142" {
		t.Fatalf("the text went to %s, want the number given to start-chat", sent[0].To)
	}

	// The settings careline started with are in the audit trail, for the privacy officer.
	db, err := sql.Open(s.dbDriver, s.dbURI)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var settings string
	if err = db.QueryRowContext(ctx, `SELECT detail FROM careline_audit WHERE action='config.loaded'`).Scan(&settings); err != nil {
		t.Fatal("no config.loaded entry in the audit trail: ", err)
	}
	for _, want := range []string{"delivery.default_mode=secure", "retention.messages=720h0m0s", localstack.AdminUser + ":admin", localstack.ServerName + ":user"} {
		if !strings.Contains(settings, want) {
			t.Errorf("the audited settings %q lack %q", settings, want)
		}
	}
}

// bridgeBot is the bridge bot's Matrix ID.
var bridgeBot = id.UserID("@carelinebot:" + localstack.ServerName)

// botRoom opens an encrypted management room between a staff member and the bridge bot and
// waits until the bot has joined it.
func (s *stack) botRoom(ctx context.Context, staff *testenv.StaffClient) id.RoomID {
	s.t.Helper()
	room, err := staff.CreateEncryptedRoom(ctx, "careline", s.bot)
	if err != nil {
		s.t.Fatal(err)
	}
	_, err = staff.WaitForEvent(ctx, func(evt *event.Event) bool {
		return evt.RoomID == room && evt.Type == event.StateMember && evt.GetStateKey() == s.bot.String() &&
			evt.Content.AsMember().Membership == event.MembershipJoin
	})
	if err != nil {
		s.t.Fatal("the bot did not join its management room: ", err)
	}
	// bridgev2 marks the room as the management room only after joining (and reading its
	// members); its welcome comes after that. A command sent between the two is taken for a
	// message in a room that is not a portal, which a loaded machine once showed.
	s.botSays(ctx, staff, room, "Hello, I'm a")
	return room
}

// botSays waits until the bot has said something containing what in room, as staff sees it.
func (s *stack) botSays(ctx context.Context, staff *testenv.StaffClient, room id.RoomID, what string) testenv.Message {
	s.t.Helper()
	reply, err := staff.WaitForMessage(ctx, func(m testenv.Message) bool {
		return m.RoomID == room && m.Sender == s.bot && strings.Contains(m.Body, what)
	})
	if err != nil {
		for _, m := range staff.Messages() {
			if m.RoomID == room {
				s.t.Logf("%s: %q", m.Sender, m.Body)
			}
		}
		s.t.Fatalf("the bot never said %q: %v", what, err)
	}
	return reply
}
