package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/localstack"
)

// inboxSpace waits until careline has created owner's space ("" for Needs reply) and the nurse
// has joined it, and returns it.
func (s *stack) inboxSpace(ctx context.Context, db *sql.DB, owner string) id.RoomID {
	s.t.Helper()
	var space string
	if err := waitUntil(ctx, "the space of "+owner, func() bool {
		return db.QueryRowContext(ctx, `SELECT space_id FROM careline_teaminbox_space WHERE owner=$1`, owner).Scan(&space) == nil
	}); err != nil {
		s.t.Fatal(err)
	}
	if err := s.nurse.WaitForJoin(ctx, id.RoomID(space)); err != nil {
		s.t.Fatal(err)
	}
	return id.RoomID(space)
}

// spaceRooms returns the rooms a space holds now, as its m.space.child state says (a child with
// no via is removed), sorted.
func (s *stack) spaceRooms(ctx context.Context, space id.RoomID) []id.RoomID {
	s.t.Helper()
	state, err := s.nurse.Client.State(ctx, space)
	if err != nil {
		s.t.Fatal(err)
	}
	var rooms []id.RoomID
	for key, evt := range state[event.StateSpaceChild] {
		if child, ok := evt.Content.Parsed.(*event.SpaceChildEventContent); ok && len(child.Via) > 0 {
			rooms = append(rooms, id.RoomID(key))
		}
	}
	slices.Sort(rooms)
	return rooms
}

// spaceHolds waits until the space holds exactly rooms.
func (s *stack) spaceHolds(ctx context.Context, what string, space id.RoomID, rooms ...id.RoomID) {
	s.t.Helper()
	slices.Sort(rooms)
	var got []id.RoomID
	if err := waitUntil(ctx, what, func() bool {
		got = s.spaceRooms(ctx, space)
		return slices.Equal(got, rooms)
	}); err != nil {
		s.t.Fatalf("%v: the space holds %v, want %v", err, got, rooms)
	}
}

// TestInboxSpaces: the "Needs reply" space holds exactly the rooms whose patient wrote last in
// an open conversation, and the nurse's own space the open conversations assigned to her; rooms
// come and go as patients write, staff reply, claim, close and the patient reopens; after a
// restart the same spaces go on (and a care team member added meanwhile is invited); their
// state holds room IDs, never a number or a name.
func TestInboxSpaces(t *testing.T) {
	s := startStack(t, stackOptions{})
	keepLogOnFailure(t, s)
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	db := s.openDB(t)
	const second = "+14155550124"
	roomA := s.patientTexts(ctx, patientNumber, "my knee hurts").RoomID
	s.command(ctx, s.nurse, roomA, "!careline name Alberta Quist", "Name recorded")
	needs := s.inboxSpace(ctx, db, "")
	s.spaceHolds(ctx, "A waiting", needs, roomA)
	roomB := s.patientTexts(ctx, second, "can I get a refill?").RoomID
	s.spaceHolds(ctx, "A and B waiting", needs, roomA, roomB)

	s.send(ctx, s.nurse, roomA, "!note check the chart") // not a reply
	s.send(ctx, s.nurse, roomA, "We will call you today")
	s.spaceHolds(ctx, "A answered", needs, roomB)

	s.command(ctx, s.nurse, roomB, "!careline claim", "claimed the conversation")
	mine := s.inboxSpace(ctx, db, s.nurse.UserID.String())
	s.spaceHolds(ctx, "B claimed", mine, roomB)
	s.spaceHolds(ctx, "B still waiting", needs, roomB)

	s.command(ctx, s.nurse, roomB, "!careline close", "closed the conversation")
	s.spaceHolds(ctx, "B closed: out of Needs reply", needs)
	s.spaceHolds(ctx, "B closed: out of the nurse's space", mine)

	s.patientTexts(ctx, second, "still waiting for the refill")
	s.spaceHolds(ctx, "B reopened by the patient", needs, roomB)
	s.spaceHolds(ctx, "B reopened, still the nurse's", mine, roomB)

	// A restart keeps the same spaces and goes on changing them; a care team member added to
	// the config meanwhile is invited to Needs reply.
	s.StopBridge()
	doctor := id.NewUserID("doctor", localstack.ServerName)
	if err := s.EditConfig(func(cfg map[string]any) {
		network := cfg["network"].(map[string]any)
		network["care_team"] = append(network["care_team"].([]any), doctor.String())
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.StartBridge(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.nurse.WaitForMembership(ctx, needs, doctor, event.MembershipInvite); err != nil {
		t.Fatal("a care team member added to the config was not invited to Needs reply: ", err)
	}
	s.patientTexts(ctx, patientNumber, "the knee is worse")
	s.spaceHolds(ctx, "A waiting again after the restart", needs, roomA, roomB)
	s.command(ctx, s.nurse, roomB, "!careline unassign", "removed the owner")
	s.spaceHolds(ctx, "B unassigned", mine)
	var spaces int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM careline_teaminbox_space`).Scan(&spaces); err != nil || spaces != 2 {
		t.Fatalf("%d spaces after the restart (%v), want the same 2", spaces, err)
	}

	// What the spaces' state holds: room IDs as child keys with only a via; the nurse's
	// display name may appear, no patient's number or name.
	for _, space := range []id.RoomID{needs, mine} {
		state, err := s.nurse.Client.State(ctx, space)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(state)
		for _, secret := range []string{patientNumber, strings.TrimPrefix(patientNumber, "+1"), second, strings.TrimPrefix(second, "+1"), "Alberta", "Quist"} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("the state of space %s holds %q", space, secret)
			}
		}
		for key, evt := range state[event.StateSpaceChild] {
			if key != roomA.String() && key != roomB.String() {
				t.Errorf("space %s has a child %q that is not a patient room", space, key)
			}
			for field := range evt.Content.Raw {
				if field != "via" {
					t.Errorf("space %s child %s has a field %q", space, key, field)
				}
			}
		}
	}
}
