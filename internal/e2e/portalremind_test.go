package e2e

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/localstack"
	"github.com/careline/careline/internal/testenv"
)

// linkTexts returns the links of the texts sent to number, in order (code texts have none).
func (s *stack) linkTexts(number string) (links, bodies []string) {
	for _, m := range s.sentTo(number) {
		if link := linkPattern.FindString(m.Body); link != "" {
			links, bodies = append(links, link), append(bodies, m.Body)
		}
	}
	return links, bodies
}

// TestPortalReminder: with network.portal.remind_after at 1m, a secure message unopened that
// long brings one more text with a fresh link and no content, which opens the message, and a
// notice to staff under the message; still unopened a period after the reminder, staff are told
// once; a message the patient opened brings no reminder. The test moves the messages' and
// reminders' recorded times back instead of waiting (its clock), after pushing them forward
// while it opens a link first; a message more than two periods old is left alone.
func TestPortalReminder(t *testing.T) {
	s := startStack(t, stackOptions{Network: func(network map[string]any) {
		localstack.SetPath(network, "1m", "portal", "remind_after")
	}})
	keepLogOnFailure(t, s)
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	db, err := sql.Open(s.dbDriver, strings.Replace(s.dbURI, "mode=ro", "mode=rw", 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	shift := func(table, column, where string, arg any, ms int64) {
		t.Helper()
		if _, err := db.ExecContext(ctx, `UPDATE `+table+` SET `+column+` = `+column+` + $1 WHERE `+where, ms, arg); err != nil {
			t.Fatal(err)
		}
	}
	const numberB, numberC = "+14155550124", "+14155550125"
	numbers := map[string]string{"A": patientNumber, "B": numberB, "C": numberC}
	words := map[string]string{"A": "your MRI result is ready", "B": "the biopsy came back", "C": "your refill is approved"}
	rooms, firstLinks := map[string]id.RoomID{}, map[string]string{}
	for _, who := range []string{"A", "B", "C"} {
		rooms[who] = s.patientTexts(ctx, numbers[who], "hello from "+who).RoomID
		firstLinks[who] = s.secureLink(ctx, rooms[who], words[who])
		// An hour ahead: not due while the test opens C's link.
		shift("careline_message", "created_at", "mx_room_id = $2 AND NOT from_patient", rooms[who].String(), 3600_000)
	}
	if page := s.portalThread(t, ctx, firstLinks["C"], numberC); !strings.Contains(page, words["C"]) {
		t.Fatalf("C's portal does not show the message:\n%s", page)
	}
	readIn := func(who string) bool {
		var unread int
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM careline_message WHERE mx_room_id = $1 AND NOT from_patient AND read_at IS NULL`,
			rooms[who].String()).Scan(&unread)
		return err == nil && unread == 0
	}
	if err = waitUntil(ctx, "C's message read", func() bool { return readIn("C") }); err != nil {
		t.Fatal(err)
	}
	// 90 s old: due, and inside the window of messages still reminded (one to two periods old).
	due := time.Now().Add(-90 * time.Second).UnixMilli()
	for who := range rooms {
		if _, err = db.ExecContext(ctx, `UPDATE careline_message SET created_at = $1 WHERE mx_room_id = $2 AND NOT from_patient`,
			due, rooms[who].String()); err != nil {
			t.Fatal(err)
		}
	}

	for _, who := range []string{"A", "B"} {
		if err = waitUntil(ctx, who+"'s reminder", func() bool { links, _ := s.linkTexts(numbers[who]); return len(links) >= 2 }); err != nil {
			t.Fatal(err)
		}
		links, bodies := s.linkTexts(numbers[who])
		if links[1] == firstLinks[who] {
			t.Fatalf("%s's reminder carries the old link", who)
		}
		if strings.Contains(bodies[1], words[who]) || strings.Contains(strings.Replace(bodies[1], links[1], "", 1), "MRI") {
			t.Fatalf("%s's reminder carries content: %q", who, bodies[1])
		}
		notice, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
			return m.RoomID == rooms[who] && m.Sender == bridgeBot && strings.Contains(m.Body, "texted them once more")
		})
		if err != nil {
			t.Fatalf("staff were not told of %s's reminder: %v", who, err)
		}
		if notice.Content.RelatesTo.GetReplyTo() == "" {
			t.Errorf("the reminder notice in %s's room does not answer the message", who)
		}
	}
	links, _ := s.linkTexts(patientNumber)
	if page := s.portalThread(t, ctx, links[1], patientNumber); !strings.Contains(page, words["A"]) {
		t.Fatalf("the reminder's link does not show A's message:\n%s", page)
	}
	if err = waitUntil(ctx, "A's message read", func() bool { return readIn("A") }); err != nil {
		t.Fatal(err)
	}

	// A period after the reminders: B (never opened) is reported, A (opened) is not.
	shift("careline_portalremind", "reminded_at", "room_id = $2", rooms["A"].String(), -120_000)
	shift("careline_portalremind", "reminded_at", "room_id = $2", rooms["B"].String(), -120_000)
	told, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
		return m.RoomID == rooms["B"] && m.Sender == bridgeBot && strings.Contains(m.Body, "still not opened")
	})
	if err != nil {
		t.Fatal("staff were not told that B's message stays unopened: ", err)
	}
	if told.Content.Mentions == nil || len(told.Content.Mentions.UserIDs) != 1 || told.Content.Mentions.UserIDs[0] != s.nurse.UserID {
		t.Errorf("the unopened notice does not mention the care team: %+v", told.Content.Mentions)
	}
	auditDB := s.openDB(t)
	waitForAudit(ctx, t, auditDB, "portal.unopened_reported", "system", "", 1)
	waitForAudit(ctx, t, auditDB, "portal.reminded", "system", "", 2)
	for who, want := range map[string]int{"A": 2, "B": 2, "C": 1} {
		if links, _ := s.linkTexts(numbers[who]); len(links) != want {
			t.Errorf("%s got %d texts with a link, want %d", who, len(links), want)
		}
	}
	for _, m := range s.nurse.Messages() {
		if m.Sender == bridgeBot && strings.Contains(m.Body, "still not opened") && m.RoomID != rooms["B"] {
			t.Errorf("staff were told of an unopened message in %s", m.RoomID)
		}
	}
}
