package e2e

import (
	"context"
	"database/sql"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/localstack"
	"github.com/careline/careline/internal/testenv"
	"github.com/careline/careline/internal/twiliofake"
)

// patientTexts sends an SMS from number and waits until the nurse sees it; it returns the event.
func (s *stack) patientTexts(ctx context.Context, number, body string) testenv.Message {
	s.t.Helper()
	status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: number, To: clinicNumber, Body: body})
	if err != nil || status != http.StatusOK {
		s.t.Fatalf("webhook: %d %v", status, err)
	}
	msg, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool { return m.Body == body })
	if err != nil {
		s.t.Fatal(err)
	}
	if err = s.nurse.WaitForJoin(ctx, msg.RoomID); err != nil {
		s.t.Fatal(err)
	}
	return msg
}

// TestStaffOnlyMessages: a reply in a thread and a `!note` in the main timeline never reach
// the patient (no SMS, nothing in the portal) while the next normal message does; the thread is
// told once, at its first message, and each note is marked with a reaction.
func TestStaffOnlyMessages(t *testing.T) {
	s := startStack(t, stackOptions{})
	keepLogOnFailure(t, s)
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	root := s.patientTexts(ctx, patientNumber, "is the new dose 20 or 40?")
	room := root.RoomID

	inThread := func(text string) id.EventID {
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: text}
		content.RelatesTo = (&event.RelatesTo{}).SetThread(root.EventID, root.EventID)
		evt, err := s.nurse.SendMessage(ctx, room, content)
		if err != nil {
			t.Fatal(err)
		}
		return evt
	}
	first := inThread("Dr Lee wants to check the chart first")
	notice, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
		return m.RoomID == room && m.Sender == bridgeBot && strings.Contains(m.Body, "Staff only")
	})
	if err != nil {
		t.Fatal("the thread was not told it is staff-only: ", err)
	}
	if notice.Content.RelatesTo.GetThreadParent() != root.EventID {
		t.Fatalf("the staff-only notice is not in the thread: %+v", notice.Content.RelatesTo)
	}
	inThread("chart says 20")
	note, err := s.nurse.SendText(ctx, room, "!NOTE she sounded confused on the phone")
	if err != nil {
		t.Fatal(err)
	}
	if _, err = s.nurse.WaitForEvent(ctx, func(evt *event.Event) bool {
		if evt.RoomID != room || evt.Sender != bridgeBot || evt.Type != event.EventReaction {
			return false
		}
		r, ok := evt.Content.Parsed.(*event.ReactionEventContent)
		return ok && r.RelatesTo.EventID == note && strings.Contains(r.RelatesTo.Key, "staff only")
	}); err != nil {
		t.Fatal("the note was not marked staff-only: ", err)
	}
	// bridgev2 handles a room's events in order, so once the normal message has gone out the
	// three staff-only messages before it have been decided.
	if _, err = s.nurse.SendText(ctx, room, "Please take 20 mg each morning"); err != nil {
		t.Fatal(err)
	}
	sent, err := s.Twilio.WaitForSent(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.sentTo(patientNumber)); n != 1 {
		t.Fatalf("%d texts to the patient, want 1 (the normal message)", n)
	}
	db := s.openDB(t)
	var kept int
	if err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM careline_message WHERE mx_event_id IN ($1, $2)`, string(first), string(note)).Scan(&kept); err != nil || kept != 0 {
		t.Fatalf("%d staff-only messages in careline's patient records (%v)", kept, err)
	}
	waitForAudit(ctx, t, db, "note.kept", s.nurse.UserID.String(), "", 3)
	notices := 0
	for _, m := range s.nurse.Messages() {
		if m.RoomID == room && m.Sender == bridgeBot && strings.Contains(m.Body, "Staff only") {
			notices++
		}
	}
	if notices != 1 {
		t.Errorf("the thread was told %d times that it is staff-only, want once", notices)
	}
	link := linkPattern.FindString(sent[0].Body)
	if link == "" {
		t.Fatalf("no portal link in the SMS %q", sent[0].Body)
	}
	page := s.portalThread(t, ctx, link, patientNumber)
	if !strings.Contains(page, "Please take 20 mg each morning") {
		t.Fatalf("the portal does not show the normal message:\n%s", page)
	}
	for _, secret := range []string{"Dr Lee wants", "chart says", "confused"} {
		if strings.Contains(page, secret) {
			t.Fatalf("the portal shows the staff-only %q:\n%s", secret, page)
		}
	}
}

var queueLine = regexp.MustCompile(`https://matrix\.to/#/(!\S+) · ([^·]+) · waiting`)

// queueRooms runs `queue` in the bot room and returns the rooms it lists with their owner.
func (s *stack) queueRooms(ctx context.Context, botRoom id.RoomID) (rooms []id.RoomID, owners []string) {
	s.t.Helper()
	answer := s.command(ctx, s.nurse, botRoom, "queue", "waiting")
	for _, m := range queueLine.FindAllStringSubmatch(answer.Body, -1) {
		rooms = append(rooms, id.RoomID(m[1]))
		owners = append(owners, strings.TrimSpace(m[2]))
	}
	return rooms, owners
}

// TestOwnershipAndQueue: claim, assign, unassign, close and reopen change the pinned state
// and are audited; refusals say why; `queue` lists exactly the rooms whose patient wrote last
// (not keywords, not notes), oldest first; a new message from the patient reopens a closed
// conversation and mentions its owner.
func TestOwnershipAndQueue(t *testing.T) {
	s := startStack(t, stackOptions{CareTeam: []string{"doctor"}})
	keepLogOnFailure(t, s)
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	botRoom := s.botRoom(ctx, s.nurse)
	const second, keywordOnly = "+14155550124", "+14155550125"
	roomA := s.patientTexts(ctx, patientNumber, "my knee hurts").RoomID
	roomB := s.patientTexts(ctx, second, "can I get a refill?").RoomID
	s.patientTexts(ctx, keywordOnly, "HELP")
	if rooms, owners := s.queueRooms(ctx, botRoom); len(rooms) != 2 || rooms[0] != roomA || rooms[1] != roomB || owners[0] != "unassigned" {
		t.Fatalf("queue %v %v, want [%s %s] unassigned", rooms, owners, roomA, roomB)
	}

	// pinnedSays waits until the room's first pinned event is a notice saying want (the pin
	// follows the notice that announces the change).
	pinnedSays := func(room id.RoomID, want string) {
		t.Helper()
		last := ""
		err := waitUntil(ctx, "the pinned state "+want, func() bool {
			var pins event.PinnedEventsEventContent
			if err := s.nurse.Client.StateEvent(ctx, room, event.StatePinnedEvents, "", &pins); err != nil || len(pins.Pinned) == 0 {
				return false
			}
			for _, m := range s.nurse.Messages() {
				if m.EventID == pins.Pinned[0] {
					last = m.Body
					return strings.Contains(m.Body, want)
				}
			}
			return false
		})
		if err != nil {
			t.Fatalf("%v; the pinned notice says %q", err, last)
		}
	}
	nurse := s.nurse.UserID.String()
	doctor := "@doctor:" + localstack.ServerName // invited to every patient room; no client needed
	s.command(ctx, s.nurse, roomA, "!careline claim", nurse+" claimed the conversation")
	pinnedSays(roomA, "Conversation open · owner: "+nurse)
	s.command(ctx, s.nurse, roomA, "!careline claim", "already owns")
	s.command(ctx, s.nurse, roomB, "!careline assign nurse", "is not a Matrix ID")
	s.command(ctx, s.nurse, roomB, "!careline assign @stranger:"+localstack.ServerName, "is not in this room")
	s.command(ctx, s.nurse, roomB, "!careline assign "+doctor, "assigned the conversation to "+doctor)
	s.command(ctx, s.nurse, roomB, "!careline unassign", "removed the owner")
	pinnedSays(roomB, "owner: nobody")
	s.command(ctx, s.nurse, roomB, "!careline assign "+doctor, "assigned the conversation to "+doctor)

	// A note is not a reply; a normal message is.
	s.send(ctx, s.nurse, roomA, "!note ask Dr Lee")
	s.send(ctx, s.nurse, roomA, "We will call you today")
	if _, err := s.Twilio.WaitForSent(ctx, 2); err != nil { // HELP's answer and the reply
		t.Fatal(err)
	}
	db := s.openDB(t)
	if err := waitUntil(ctx, "the reply to end A's wait", func() bool {
		var waiting sql.NullInt64
		err := db.QueryRowContext(ctx, `SELECT waiting_since FROM careline_teaminbox_conversation WHERE room_id=$1`, string(roomA)).Scan(&waiting)
		return err == nil && !waiting.Valid
	}); err != nil {
		t.Fatal(err)
	}
	if rooms, owners := s.queueRooms(ctx, botRoom); len(rooms) != 1 || rooms[0] != roomB || owners[0] != "assigned to "+doctor {
		t.Fatalf("queue %v %v after the reply to A, want [%s] assigned to %s", rooms, owners, roomB, doctor)
	}

	s.command(ctx, s.nurse, roomB, "!careline close", "closed the conversation")
	pinnedSays(roomB, "Conversation closed · owner: "+doctor)
	s.command(ctx, s.nurse, roomB, "!careline close", "already closed")
	s.command(ctx, s.nurse, botRoom, "queue", "No conversation is waiting")

	// The patient writes again: open again, in the queue, the owner mentioned.
	seen := map[id.EventID]bool{}
	for _, m := range s.nurse.Messages() {
		seen[m.EventID] = true
	}
	s.patientTexts(ctx, second, "still waiting for the refill")
	reopened := s.botSaysNew(ctx, s.nurse, roomB, "the patient wrote again", seen)
	if reopened.Content.Mentions == nil || len(reopened.Content.Mentions.UserIDs) != 1 || reopened.Content.Mentions.UserIDs[0].String() != doctor {
		t.Fatalf("the reopen notice does not mention the owner: %+v", reopened.Content.Mentions)
	}
	pinnedSays(roomB, "Conversation open · owner: "+doctor)
	if rooms, _ := s.queueRooms(ctx, botRoom); len(rooms) != 1 || rooms[0] != roomB {
		t.Fatalf("queue %v after the patient wrote again, want [%s]", rooms, roomB)
	}
	s.command(ctx, s.nurse, roomA, "!careline close", "closed")
	s.command(ctx, s.nurse, roomA, "!careline reopen", "reopened the conversation")
	s.command(ctx, s.nurse, roomA, "!careline reopen", "already open")

	for action, n := range map[string]int{"conversation.assigned": 3, "conversation.unassigned": 1, "conversation.closed": 2, "conversation.reopened": 2} {
		var got int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM careline_audit WHERE action=$1`, action).Scan(&got); err != nil || got != n {
			t.Errorf("%d %s entries in the audit trail (%v), want %d", got, action, err, n)
		}
	}
}

// TestNudgeOnce: with network.inbox.nudge_after at 2s, an unanswered patient message gets one
// mention of the care team in its room; a second message in the same wait brings no second
// nudge (checked once a later conversation's nudge, due after it, has arrived).
func TestNudgeOnce(t *testing.T) {
	s := startStack(t, stackOptions{Network: func(network map[string]any) {
		localstack.SetPath(network, "2s", "inbox", "nudge_after")
	}})
	keepLogOnFailure(t, s)
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	nudges := func(room id.RoomID) []testenv.Message {
		var out []testenv.Message
		for _, m := range s.nurse.Messages() {
			if m.RoomID == room && m.Sender == bridgeBot && strings.Contains(m.Body, "for a reply") {
				out = append(out, m)
			}
		}
		return out
	}
	roomA := s.patientTexts(ctx, patientNumber, "are my results back?").RoomID
	if err := waitUntil(ctx, "the nudge in A", func() bool { return len(nudges(roomA)) > 0 }); err != nil {
		t.Fatal(err)
	}
	nudge := nudges(roomA)[0]
	if !strings.Contains(nudge.Body, s.nurse.UserID.String()+": the patient has waited") ||
		nudge.Content.Mentions == nil || len(nudge.Content.Mentions.UserIDs) != 1 || nudge.Content.Mentions.UserIDs[0] != s.nurse.UserID {
		t.Fatalf("the nudge does not mention the care team: %q %+v", nudge.Body, nudge.Content.Mentions)
	}
	s.patientTexts(ctx, patientNumber, "hello?")
	roomB := s.patientTexts(ctx, "+14155550124", "I need a refill").RoomID
	if err := waitUntil(ctx, "the nudge in B", func() bool { return len(nudges(roomB)) > 0 }); err != nil {
		t.Fatal(err)
	}
	if n := len(nudges(roomA)); n != 1 {
		t.Fatalf("%d nudges in A for one wait, want 1", n)
	}
	waitForAudit(ctx, t, s.openDB(t), "conversation.nudged", "system", "unanswered since", 2)
}

// TestMissedCallReopens: a missed call from the patient of a closed conversation opens it
// again, mentions its owner and puts it in the queue.
func TestMissedCallReopens(t *testing.T) {
	s := startStack(t, stackOptions{Network: func(network map[string]any) {
		localstack.SetPath(network, true, "missed_calls", "enabled")
		localstack.SetPath(network, "You have reached {clinic}.", "missed_calls", "say")
	}})
	keepLogOnFailure(t, s)
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	botRoom := s.botRoom(ctx, s.nurse)
	room := s.patientTexts(ctx, patientNumber, "thanks, all good").RoomID
	s.command(ctx, s.nurse, room, "!careline claim", "claimed the conversation")
	s.command(ctx, s.nurse, room, "!careline close", "closed the conversation")
	s.command(ctx, s.nurse, botRoom, "queue", "No conversation is waiting")
	seen := map[id.EventID]bool{}
	for _, m := range s.nurse.Messages() {
		seen[m.EventID] = true
	}
	voiceURL := s.PublicURL + "/twilio/" + accountSID + "-" + strings.TrimPrefix(clinicNumber, "+") + "/voice"
	if status, _, err := s.Twilio.Call(ctx, voiceURL, patientNumber, clinicNumber); err != nil || status != http.StatusOK {
		t.Fatalf("voice webhook: %d %v", status, err)
	}
	reopened := s.botSaysNew(ctx, s.nurse, room, "the patient wrote again", seen)
	if reopened.Content.Mentions == nil || len(reopened.Content.Mentions.UserIDs) != 1 || reopened.Content.Mentions.UserIDs[0] != s.nurse.UserID {
		t.Fatalf("the reopen notice does not mention the owner: %+v", reopened.Content.Mentions)
	}
	if rooms, _ := s.queueRooms(ctx, botRoom); len(rooms) != 1 || rooms[0] != room {
		t.Fatalf("queue %v after the missed call, want [%s]", rooms, room)
	}
}
