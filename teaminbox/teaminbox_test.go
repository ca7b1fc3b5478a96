package teaminbox

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbtest"
)

func TestConversationLifecycle(t *testing.T) {
	dbtest.ForEach(t, "teaminbox", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := New(db, zerolog.Nop())
		if err := s.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
		waitingRooms := func() []string {
			t.Helper()
			w, err := s.Waiting(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var rooms []string
			for _, c := range w {
				rooms = append(rooms, c.RoomID)
			}
			return rooms
		}
		// A never-seen conversation is open, unassigned, not waiting.
		if c, err := s.Get(ctx, "p1"); err != nil || !c.Open() || c.Waiting() || c.Assignee != "" {
			t.Fatalf("new conversation: %+v %v", c, err)
		}
		// Two patients write; p2 first. A second message keeps the oldest wait.
		mustWrite(t, s, "p2", "!r2", t0)
		mustWrite(t, s, "p1", "!r1", t0.Add(time.Minute))
		mustWrite(t, s, "p2", "!r2", t0.Add(2*time.Minute))
		if got := waitingRooms(); len(got) != 2 || got[0] != "!r2" || got[1] != "!r1" {
			t.Fatalf("queue %v, want [!r2 !r1]", got)
		}
		if c, _ := s.Get(ctx, "p2"); !c.WaitingSince.Equal(t0) || !c.LastPatientAt.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("p2 waiting since %v (last %v), want %v", c.WaitingSince, c.LastPatientAt, t0)
		}
		// A staff reply ends p2's wait and records the first response time once.
		if ok, err := s.StaffReplied(ctx, "p2", "!r2", "@lee:x", t0.Add(10*time.Minute)); err != nil || !ok {
			t.Fatalf("reply: %v %v", ok, err)
		}
		if ok, _ := s.StaffReplied(ctx, "p2", "!r2", "@kim:x", t0.Add(11*time.Minute)); ok {
			t.Fatal("a second reply answered a wait again")
		}
		if got := waitingRooms(); len(got) != 1 || got[0] != "!r1" {
			t.Fatalf("queue %v, want [!r1]", got)
		}
		// Assign, then close: closed conversations leave the queue.
		if prev, err := s.Assign(ctx, "p1", "!r1", "@lee:x"); err != nil || prev != "" {
			t.Fatalf("assign: %q %v", prev, err)
		}
		if mine, _ := s.AssignedTo(ctx, "@lee:x"); len(mine) != 1 || mine[0].PatientID != "p1" {
			t.Fatalf("assigned to lee: %v", mine)
		}
		if ok, err := s.Close(ctx, "p1", "!r1", t0.Add(20*time.Minute)); err != nil || !ok {
			t.Fatalf("close: %v %v", ok, err)
		}
		if ok, _ := s.Close(ctx, "p1", "!r1", t0.Add(21*time.Minute)); ok {
			t.Fatal("closing a closed conversation reported a change")
		}
		if got := waitingRooms(); len(got) != 0 {
			t.Fatalf("queue %v after close, want empty", got)
		}
		if mine, _ := s.AssignedTo(ctx, "@lee:x"); len(mine) != 0 {
			t.Fatalf("a closed conversation is still listed as lee's: %v", mine)
		}
		// The patient writes again: reopened, waiting from this message, owner kept.
		c, reopened, err := s.PatientWrote(ctx, "p1", "!r1", t0.Add(time.Hour))
		if err != nil || !reopened || !c.Open() || !c.WaitingSince.Equal(t0.Add(time.Hour)) || c.Assignee != "@lee:x" {
			t.Fatalf("reopen by patient: %+v reopened=%v %v", c, reopened, err)
		}
		if _, reopened, _ = s.PatientWrote(ctx, "p1", "!r1", t0.Add(2*time.Hour)); reopened {
			t.Fatal("a message to an open conversation reported a reopen")
		}
		// Manual close and reopen: not waiting after reopen by staff.
		_, _ = s.Close(ctx, "p1", "!r1", t0.Add(3*time.Hour))
		if ok, err := s.Reopen(ctx, "p1", "!r1"); err != nil || !ok {
			t.Fatalf("reopen: %v %v", ok, err)
		}
		if ok, _ := s.Reopen(ctx, "p1", "!r1"); ok {
			t.Fatal("reopening an open conversation reported a change")
		}
		if c, _ := s.Get(ctx, "p1"); !c.Open() || c.Waiting() {
			t.Fatalf("after staff reopen: %+v", c)
		}
		// Threads are announced once.
		if first, _ := s.FirstInThread(ctx, "!r1", "$root"); !first {
			t.Fatal("first thread message not reported first")
		}
		if first, _ := s.FirstInThread(ctx, "!r1", "$root"); first {
			t.Fatal("second thread message reported first")
		}
	})
}

func mustWrite(t *testing.T, s *Store, patientID, roomID string, at time.Time) {
	t.Helper()
	if _, _, err := s.PatientWrote(context.Background(), patientID, roomID, at); err != nil {
		t.Fatal(err)
	}
}

// TestPatientsWroteInOneGo: messages of several patients recorded at once change each
// conversation as the same messages one by one would, and say what changed: a reopen, a new
// wait or a new room moves the spaces, a further message to a waiting conversation does not.
func TestPatientsWroteInOneGo(t *testing.T) {
	dbtest.ForEach(t, "teaminboxbatch", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := New(db, zerolog.Nop())
		if err := s.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
		mustWrite(t, s, "waiting", "!w", t0)
		mustWrite(t, s, "closed", "!c", t0)
		if _, err := s.Assign(ctx, "closed", "!c", "@lee:x"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Close(ctx, "closed", "!c", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, s, "answered", "!a", t0)
		if _, err := s.StaffReplied(ctx, "answered", "!a", "@lee:x", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, s, "moved", "!old", t0)
		at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Hour) }
		wrote, err := s.PatientsWrote(ctx, []Message{
			{"closed", "!c", at(1)}, {"new", "!n", at(2)}, {"waiting", "!w", at(3)}, {"closed", "!c", at(4)},
			{"answered", "!a", at(5)}, {"moved", "!new", at(6)}, {"new", "!n", at(7)},
		})
		if err != nil {
			t.Fatal(err)
		}
		type want struct {
			patient, room          string
			reopened, spaces       bool
			waitingSince, lastSeen time.Time
		}
		wants := []want{
			{"closed", "!c", true, true, at(1), at(4)},
			{"new", "!n", false, true, at(2), at(7)},
			{"waiting", "!w", false, false, t0, at(3)},
			{"answered", "!a", false, true, at(5), at(5)},
			{"moved", "!new", false, true, t0, at(6)},
		}
		if len(wrote) != len(wants) {
			t.Fatalf("%d results, want %d: %+v", len(wrote), len(wants), wrote)
		}
		for i, w := range wants {
			got := wrote[i]
			if got.Conv.PatientID != w.patient || got.Conv.RoomID != w.room || got.Reopened != w.reopened || got.SpacesChanged != w.spaces ||
				!got.Conv.WaitingSince.Equal(w.waitingSince) || !got.Conv.LastPatientAt.Equal(w.lastSeen) || !got.Conv.Waiting() {
				t.Errorf("%s: got %+v (conv %+v), want %+v", w.patient, got, got.Conv, w)
			}
			stored, err := s.Get(ctx, w.patient)
			if err != nil || *stored != *got.Conv {
				t.Errorf("%s: stored %+v, returned %+v (%v)", w.patient, stored, got.Conv, err)
			}
		}
		if wrote[0].Conv.Assignee != "@lee:x" {
			t.Errorf("reopening dropped the owner: %+v", wrote[0].Conv)
		}
	})
}
