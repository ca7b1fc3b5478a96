package appointment

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbtest"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func forEachDB(t *testing.T, fn func(t *testing.T, s *Store, c *clock)) {
	dbtest.ForEach(t, "careline_appointment", func(t *testing.T, db *dbutil.Database) {
		s := New(db, dbtest.Keyring(t), zerolog.Nop())
		c := &clock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
		s.Now = c.now
		if err := s.Upgrade(context.Background()); err != nil {
			t.Fatal(err)
		}
		fn(t, s, c)
	})
}

// recorder is a Sender that records what it was asked to send.
type recorder struct {
	sent     []string // "appointment/offset"
	notSent  []string
	refuse   bool
	messages int
}

func (r *recorder) SendReminder(ctx context.Context, d *Due, mark func(context.Context, string) error) error {
	if r.refuse {
		return fmt.Errorf("%w: template needs {location}", ErrNotSendable)
	}
	r.messages++
	if err := mark(ctx, fmt.Sprintf("m%d", r.messages)); err != nil {
		return err
	}
	r.sent = append(r.sent, fmt.Sprintf("%s/%v", d.Appointment.ID, d.Offset))
	return nil
}

func (r *recorder) ReminderNotSent(ctx context.Context, d *Due, reason error) {
	r.notSent = append(r.notSent, fmt.Sprintf("%s/%v", d.Appointment.ID, d.Offset))
}

var offsets = []time.Duration{72 * time.Hour, 24 * time.Hour}

func states(a *Appointment) string {
	out := ""
	for _, r := range a.Reminders {
		out += fmt.Sprintf("%v=%s@%s ", r.Offset, r.State, r.DueAt.UTC().Format("01-02T15:04"))
	}
	return out
}

func TestScheduleMoveWithdraw(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store, c *clock) {
		ctx := context.Background()
		rec := &recorder{}
		run := NewRunner(s, rec)
		start := c.t.Add(72*time.Hour + time.Hour) // three days and an hour ahead
		a := &Appointment{ID: "a1", PatientID: "p1", Status: "booked", Start: start, Resource: []byte(`{}`)}
		created, err := s.Put(ctx, a, offsets)
		if err != nil || !created {
			t.Fatalf("Put = %v, %v", created, err)
		}
		if got := states(a); got != "72h0m0s=scheduled@11-28T13:00 24h0m0s=scheduled@11-30T13:00 " {
			t.Fatalf("after create: %s", got)
		}
		if next, _ := s.NextDue(ctx); !next.Equal(start.Add(-72 * time.Hour)) {
			t.Fatalf("NextDue = %v", next)
		}
		// Nothing is due before its time.
		c.advance(59 * time.Minute)
		if err = run.SendDue(ctx); err != nil || len(rec.sent) != 0 {
			t.Fatalf("sent early: %v %v", rec.sent, err)
		}
		c.advance(time.Minute)
		if err = run.SendDue(ctx); err != nil || len(rec.sent) != 1 || rec.sent[0] != "a1/72h0m0s" {
			t.Fatalf("at 72h before: %v %v", rec.sent, err)
		}
		if err = run.SendDue(ctx); err != nil || len(rec.sent) != 1 {
			t.Fatalf("sent twice: %v %v", rec.sent, err)
		}
		// An update moves the start a day later: both reminders follow it.
		a.Start = start.Add(24 * time.Hour)
		if created, err = s.Put(ctx, a, offsets); err != nil || created {
			t.Fatalf("update: %v %v", created, err)
		}
		if got := states(a); got != "72h0m0s=scheduled@11-29T13:00 24h0m0s=scheduled@12-01T13:00 " {
			t.Fatalf("after move: %s", got)
		}
		// DELETE withdraws what was not sent.
		if found, err := s.Delete(ctx, "a1"); err != nil || !found {
			t.Fatalf("Delete = %v %v", found, err)
		}
		got, _ := s.Get(ctx, "a1")
		if states(got) != "72h0m0s=withdrawn@11-29T13:00 24h0m0s=withdrawn@12-01T13:00 " || got.DeletedAt.IsZero() {
			t.Fatalf("after delete: %s", states(got))
		}
		c.advance(5 * 24 * time.Hour)
		if err = run.SendDue(ctx); err != nil || len(rec.sent) != 1 {
			t.Fatalf("a withdrawn reminder was sent: %v", rec.sent)
		}
	})
}

func TestCancelledStatusAndPastOffsets(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store, c *clock) {
		ctx := context.Background()
		// 30 hours ahead: the 72h reminder is already past and skipped.
		a := &Appointment{ID: "a2", PatientID: "p1", Status: "booked", Start: c.t.Add(30 * time.Hour), Resource: []byte(`{}`)}
		if _, err := s.Put(ctx, a, offsets); err != nil {
			t.Fatal(err)
		}
		if got := states(a); got != "72h0m0s=skipped@11-26T18:00 24h0m0s=scheduled@11-28T18:00 " {
			t.Fatalf("states %s", got)
		}
		a.Status = "noshow"
		if _, err := s.Put(ctx, a, offsets); err != nil {
			t.Fatal(err)
		}
		if got := states(a); got != "72h0m0s=skipped@11-26T18:00 24h0m0s=withdrawn@11-28T18:00 " {
			t.Fatalf("after noshow: %s", got)
		}
		// Booked again: the reminder comes back.
		a.Status = "booked"
		if _, err := s.Put(ctx, a, offsets); err != nil {
			t.Fatal(err)
		}
		if got := states(a); got != "72h0m0s=skipped@11-26T18:00 24h0m0s=scheduled@11-28T18:00 " {
			t.Fatalf("booked again: %s", got)
		}
	})
}

func TestNotSendableTellsStaff(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store, c *clock) {
		ctx := context.Background()
		rec := &recorder{refuse: true}
		a := &Appointment{ID: "a3", PatientID: "p1", Status: "booked", Start: c.t.Add(25 * time.Hour), Resource: []byte(`{}`)}
		if _, err := s.Put(ctx, a, offsets); err != nil {
			t.Fatal(err)
		}
		c.advance(time.Hour)
		if err := NewRunner(s, rec).SendDue(ctx); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctx, "a3")
		if len(rec.notSent) != 1 || got.Reminders[1].State != NotSent || got.Reminders[1].Note == "" {
			t.Fatalf("not sent %v, %s", rec.notSent, states(got))
		}
	})
}

func TestAnswers(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store, c *clock) {
		ctx := context.Background()
		rec := &recorder{}
		run := NewRunner(s, rec)
		for i, ahead := range []time.Duration{30 * time.Hour, 40 * time.Hour} {
			a := &Appointment{ID: fmt.Sprintf("b%d", i), PatientID: "p1", Status: "booked", Start: c.t.Add(ahead), Resource: []byte(`{}`)}
			if _, err := s.Put(ctx, a, []time.Duration{24 * time.Hour}); err != nil {
				t.Fatal(err)
			}
		}
		if a, err := s.Awaiting(ctx, "p1"); err != nil || a != nil {
			t.Fatalf("awaiting before any reminder: %v %v", a, err)
		}
		c.advance(6 * time.Hour)
		_ = run.SendDue(ctx) // b0's reminder
		c.advance(10 * time.Hour)
		_ = run.SendDue(ctx) // b1's reminder, the newest
		a, err := s.Awaiting(ctx, "p1")
		if err != nil || a == nil || a.ID != "b1" {
			t.Fatalf("awaiting = %v %v, want b1", a, err)
		}
		if ok, err := s.Answer(ctx, "b1", "p2", Accepted, "sms"); ok || err != nil {
			t.Fatal("another patient answered")
		}
		if ok, err := s.Answer(ctx, "b1", "p1", Accepted, "sms"); !ok || err != nil {
			t.Fatalf("Answer = %v %v", ok, err)
		}
		if ok, _ := s.Answer(ctx, "b1", "p1", Declined, "sms"); ok {
			t.Fatal("answered twice")
		}
		if a, _ = s.Awaiting(ctx, "p1"); a == nil || a.ID != "b0" {
			t.Fatalf("next awaiting = %v, want b0", a)
		}
		// Once b0 starts it no longer awaits an answer.
		c.advance(14 * time.Hour)
		if a, _ = s.Awaiting(ctx, "p1"); a != nil {
			t.Fatalf("a started appointment awaits an answer: %v", a.ID)
		}
		if ok, _ := s.Answer(ctx, "b0", "p1", Declined, "sms"); ok {
			t.Fatal("a started appointment was answered")
		}
		got, _ := s.Get(ctx, "b1")
		if got.Answer != Accepted || got.AnsweredVia != "sms" {
			t.Fatalf("b1 %+v", got)
		}
	})
}

func TestPurgeBefore(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store, c *clock) {
		ctx := context.Background()
		for id, start := range map[string]time.Time{"old": c.t.Add(time.Hour), "new": c.t.Add(40 * 24 * time.Hour)} {
			if _, err := s.Put(ctx, &Appointment{ID: id, PatientID: "p1", Status: "booked", Start: start, Resource: []byte(`{}`)}, offsets); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RememberPatient(ctx, "Patient/1", map[string]string{"mobile": "+14155550123"}); err != nil {
			t.Fatal(err)
		}
		n, err := s.PurgeBefore(ctx, c.t.Add(2*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("PurgeBefore = %d, %v", n, err)
		}
		if a, _ := s.Get(ctx, "old"); a != nil {
			t.Fatal("the old appointment is still there")
		}
		if a, _ := s.Get(ctx, "new"); a == nil || len(a.Reminders) != 2 {
			t.Fatal("the future appointment was purged")
		}
		var left int
		_ = s.db.QueryRow(ctx, `SELECT COUNT(*) FROM careline_reminder`).Scan(&left)
		var refs int
		_ = s.db.QueryRow(ctx, `SELECT COUNT(*) FROM careline_patient_reference`).Scan(&refs)
		if left != 2 || refs != 0 {
			t.Fatalf("%d reminders and %d patient references left, want 2 and 0", left, refs)
		}
	})
}
