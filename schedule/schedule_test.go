package schedule

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbtest"
)

func newStore(t testing.TB, db *dbutil.Database) *Store {
	t.Helper()
	s := New(db, dbtest.Keyring(t), zerolog.Nop())
	if err := s.Upgrade(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Stands in for the outbox: written in the delivery's transaction.
	if _, err := db.Exec(context.Background(), `CREATE TABLE sent_text (scheduled_id TEXT NOT NULL, body TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return s
}

func sentCount(t *testing.T, db *dbutil.Database, id string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM sent_text WHERE scheduled_id=$1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestScheduleListCancelAndSealedPayload(t *testing.T) {
	dbtest.ForEach(t, "schedule", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := newStore(t, db)
		now := time.Now()
		later := &Send{LoginID: "l", PatientID: "p1", Due: now.Add(2 * time.Hour), CreatedBy: "@nurse:x",
			Payload: Payload{Template: "lab_ready", Values: map[string]string{"what": "blood test"}}}
		sooner := &Send{LoginID: "l", PatientID: "p1", Due: now.Add(time.Hour), CreatedBy: "@nurse:x", Payload: Payload{Text: "secret words"}}
		other := &Send{LoginID: "l", PatientID: "p2", Due: now.Add(time.Hour), CreatedBy: "@nurse:x", Payload: Payload{Text: "x"}}
		for _, send := range []*Send{later, sooner, other} {
			if err := s.Add(ctx, send); err != nil {
				t.Fatal(err)
			}
			if len(send.ID) != idLength {
				t.Errorf("id %q", send.ID)
			}
		}
		var raw []byte
		if err := db.QueryRow(ctx, `SELECT payload_sealed FROM careline_scheduled_send WHERE id=$1`, sooner.ID).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if len(raw) == 0 || bytes.Contains(raw, []byte("secret words")) {
			t.Error("payload stored readable")
		}
		pending, err := s.PendingFor(ctx, "p1")
		if err != nil || len(pending) != 2 || pending[0].ID != sooner.ID || pending[1].Payload.Values["what"] != "blood test" {
			t.Fatalf("pending %+v %v", pending, err)
		}
		// Another patient's ID is not cancelled from this room.
		if ok, err := s.Cancel(ctx, other.ID, "p1", "by @nurse:x"); ok || err != nil {
			t.Errorf("cancelled another patient's send: %v %v", ok, err)
		}
		if ok, err := s.Cancel(ctx, sooner.ID, "p1", "by @nurse:x"); !ok || err != nil {
			t.Errorf("cancel: %v %v", ok, err)
		}
		if ok, _ := s.Cancel(ctx, sooner.ID, "p1", "again"); ok {
			t.Error("cancelled twice")
		}
		if pending, _ = s.PendingFor(ctx, "p1"); len(pending) != 1 || pending[0].ID != later.ID {
			t.Errorf("pending after cancel %+v", pending)
		}
		// Reminders of pending sends are given once per send.
		unreminded := func() []string {
			t.Helper()
			got, err := s.Unreminded(ctx, []string{"p1", "p2", "p3"})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, p := range []string{"p1", "p2", "p3"} {
				if got[p] {
					ids = append(ids, p)
				}
			}
			return ids
		}
		if got := unreminded(); len(got) != 2 || got[0] != "p1" || got[1] != "p2" {
			t.Errorf("unreminded %v, want [p1 p2]", got)
		}
		if fresh, err := s.MarkReminded(ctx, "p1"); err != nil || len(fresh) != 1 {
			t.Errorf("first reminder %d %v", len(fresh), err)
		}
		if got := unreminded(); len(got) != 1 || got[0] != "p2" {
			t.Errorf("unreminded after reminding p1 %v, want [p2]", got)
		}
		if fresh, err := s.MarkReminded(ctx, "p1"); err != nil || len(fresh) != 0 {
			t.Errorf("second reminder %d %v", len(fresh), err)
		}
	})
}

func TestRunnerDeliversOnceAndAtomically(t *testing.T) {
	dbtest.ForEach(t, "schedule_run", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := newStore(t, db)
		now := time.Now()
		due := &Send{LoginID: "l", PatientID: "p", Due: now.Add(-time.Second), CreatedBy: "@a:x", Payload: Payload{Text: "hello"}}
		notYet := &Send{LoginID: "l", PatientID: "p", Due: now.Add(time.Hour), CreatedBy: "@a:x", Payload: Payload{Text: "later"}}
		for _, send := range []*Send{due, notYet} {
			if err := s.Add(ctx, send); err != nil {
				t.Fatal(err)
			}
		}
		failNext := true
		var after []string
		r := &Runner{
			Store: s,
			Deliver: func(ctx context.Context, send *Send) (Outcome, error) {
				if _, err := db.Exec(ctx, `INSERT INTO sent_text (scheduled_id, body) VALUES ($1, $2)`, send.ID, send.Payload.Text); err != nil {
					return Outcome{}, err
				}
				if failNext {
					// As if the process died after writing the text but before finishing.
					failNext = false
					return Outcome{}, errors.New("interrupted")
				}
				return Outcome{State: Sent, Detail: "queued"}, nil
			},
			After: func(ctx context.Context, send *Send, o Outcome) { after = append(after, send.ID+":"+o.State) },
		}
		if err := r.RunDue(ctx, now); err == nil {
			t.Fatal("the interrupted delivery reported no error")
		}
		if n := sentCount(t, db, due.ID); n != 0 {
			t.Fatalf("an interrupted delivery left %d texts behind", n)
		}
		if err := r.RunDue(ctx, now); err != nil {
			t.Fatal(err)
		}
		if err := r.RunDue(ctx, now); err != nil {
			t.Fatal(err)
		}
		if n := sentCount(t, db, due.ID); n != 1 {
			t.Errorf("sent %d times", n)
		}
		if n := sentCount(t, db, notYet.ID); n != 0 {
			t.Errorf("a send not yet due went out")
		}
		if len(after) != 1 || after[0] != due.ID+":"+Sent {
			t.Errorf("after %v", after)
		}
		got, _ := s.Get(ctx, due.ID)
		if got.State != Sent || got.Outcome != "queued" || got.DoneAt.IsZero() {
			t.Errorf("%+v", got)
		}
		if next, err := s.NextDue(ctx); err != nil || next.UnixMilli() != notYet.Due.UnixMilli() {
			t.Errorf("next due %v %v", next, err)
		}
		// A send cancelled while its delivery runs is rolled back.
		r.Deliver = func(ctx context.Context, send *Send) (Outcome, error) {
			if _, err := db.Exec(ctx, `INSERT INTO sent_text (scheduled_id, body) VALUES ($1, $2)`, send.ID, send.Payload.Text); err != nil {
				return Outcome{}, err
			}
			_, err := db.Exec(ctx, `UPDATE careline_scheduled_send SET state='cancelled' WHERE id=$1`, send.ID)
			return Outcome{State: Sent}, err
		}
		if err := r.RunDue(ctx, notYet.Due); err != nil {
			t.Fatal(err)
		}
		if n := sentCount(t, db, notYet.ID); n != 0 {
			t.Errorf("a send cancelled during delivery went out")
		}
	})
}

func TestRunnerWakesForANewSend(t *testing.T) {
	dbtest.ForEach(t, "schedule_wake", func(t *testing.T, db *dbutil.Database) {
		ctx, cancel := context.WithCancel(context.Background())
		s := newStore(t, db)
		delivered := make(chan string, 1)
		r := &Runner{Store: s, Poll: time.Hour, Deliver: func(ctx context.Context, send *Send) (Outcome, error) {
			delivered <- send.ID
			return Outcome{State: Sent}, nil
		}}
		done := r.Start(ctx)
		send := &Send{LoginID: "l", PatientID: "p", Due: time.Now(), CreatedBy: "@a:x", Payload: Payload{Text: "x"}}
		if err := s.Add(ctx, send); err != nil {
			t.Fatal(err)
		}
		r.Wake()
		// The poll is an hour: only the wake-up can deliver it before the test times out.
		if got := <-delivered; got != send.ID {
			t.Errorf("delivered %s", got)
		}
		cancel()
		<-done
	})
}
