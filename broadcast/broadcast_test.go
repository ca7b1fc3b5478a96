package broadcast

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbtest"
)

// fakeClinic stands in for careline: patients by number, some opted out, some without a name,
// and an "outbox" table written in the delivery's transaction.
type fakeClinic struct {
	db       *dbutil.Database
	store    *Store
	optedOut map[string]bool
	noName   map[string]bool
	// crashAfter cancels the run once this many texts are in the outbox (0: never).
	crashAfter int
	cancel     context.CancelFunc
	failOnce   map[string]bool

	mu       sync.Mutex
	reports  []Counts
	notified []string
}

func (f *fakeClinic) engine() *Engine {
	return &Engine{
		Store: f.store,
		Prepare: func(ctx context.Context, b *Broadcast, t *Target) error {
			if !strings.HasPrefix(t.Number, "+1") {
				t.State, t.Detail = InvalidNumber, "not a phone number"
				return nil
			}
			t.PatientID = "patient-" + strings.TrimPrefix(strings.ReplaceAll(t.Number, " ", ""), "+1")
			return nil
		},
		Deliver: func(ctx context.Context, b *Broadcast, t *Target) error {
			if dup, err := f.store.SentTo(ctx, b.ID, t.PatientID); err != nil || dup {
				t.State = Duplicate
				return err
			}
			switch {
			case f.optedOut[t.PatientID]:
				t.State = OptedOut
				return nil
			case f.noName[t.PatientID]:
				t.State, t.Detail = MissingValue, "first_name"
				return nil
			}
			if _, err := f.db.Exec(ctx, `INSERT INTO fake_outbox (patient_id, body) VALUES ($1, $2)`, t.PatientID, b.Values["when"]); err != nil {
				return err
			}
			if f.failOnce[t.PatientID] {
				// Written, then the process "dies" before the outcome is recorded.
				delete(f.failOnce, t.PatientID)
				return errors.New("connection reset")
			}
			t.State, t.MessageID = Sent, "m-"+t.PatientID
			return nil
		},
		After: func(ctx context.Context, b *Broadcast, t *Target) {
			f.mu.Lock()
			f.notified = append(f.notified, t.PatientID)
			f.mu.Unlock()
			if f.crashAfter > 0 && f.outboxTotal() >= f.crashAfter {
				f.cancel()
			}
		},
		Progress: func(ctx context.Context, b *Broadcast, c Counts) {
			f.mu.Lock()
			f.reports = append(f.reports, c)
			f.mu.Unlock()
		},
		RetryAfter: 1, // a nanosecond: the test must not wait on the clock
	}
}

func (f *fakeClinic) outboxTotal() int {
	var n int
	_ = f.db.QueryRow(context.Background(), `SELECT COUNT(*) FROM fake_outbox`).Scan(&n)
	return n
}

func (f *fakeClinic) outboxFor(t *testing.T) map[string]int {
	t.Helper()
	rows, err := f.db.Query(context.Background(), `SELECT patient_id, COUNT(*) FROM fake_outbox GROUP BY patient_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var (
			p string
			n int
		)
		_ = rows.Scan(&p, &n)
		got[p] = n
	}
	return got
}

func TestBroadcastSkipsReportsAndResumesWithoutSendingTwice(t *testing.T) {
	dbtest.ForEach(t, "broadcast", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := New(db, dbtest.Keyring(t), zerolog.Nop())
		if err := s.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `CREATE TABLE fake_outbox (patient_id TEXT NOT NULL, body TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		numbers := []string{"+1001", "+1002", "not-a-number", "+1003", "+1 002", "+1004", "+1005", "+1006", "+1007", "12"}
		f := &fakeClinic{db: db, store: s,
			optedOut:   map[string]bool{"patient-003": true},
			noName:     map[string]bool{"patient-006": true},
			failOnce:   map[string]bool{"patient-004": true},
			crashAfter: 3,
		}
		b := &Broadcast{LoginID: "l", Template: "closure", Values: map[string]string{"when": "Friday"}, CreatedBy: "@admin:x", Origin: "command", ReportRoom: "!bot:x"}
		if err := s.Create(ctx, b, numbers); err != nil {
			t.Fatal(err)
		}
		var sealed []byte
		_ = db.QueryRow(ctx, `SELECT number_sealed FROM careline_broadcast_target WHERE position=0`).Scan(&sealed)
		if bytes.Contains(sealed, []byte("+1001")) {
			t.Error("a number is stored readable")
		}
		// First run: "crashes" once three texts are out.
		runCtx, cancel := context.WithCancel(ctx)
		f.cancel = cancel
		if err := f.engine().Run(runCtx, b); !errors.Is(err, context.Canceled) {
			t.Fatalf("first run ended with %v, want the crash", err)
		}
		mid, err := s.Counts(ctx, b.ID)
		if err != nil || mid.Done || mid.Pending == 0 || mid.Sent != 3 {
			t.Fatalf("after the crash: %+v %v", mid, err)
		}
		// Restart: a new engine resumes what is unfinished.
		f.crashAfter = 0
		unfinished, err := s.Unfinished(ctx)
		if err != nil || len(unfinished) != 1 || unfinished[0].Values["when"] != "Friday" || unfinished[0].ReportRoom != "!bot:x" {
			t.Fatalf("unfinished %+v %v", unfinished, err)
		}
		if err = f.engine().Run(ctx, unfinished[0]); err != nil {
			t.Fatal(err)
		}
		for patient, n := range f.outboxFor(t) {
			if n != 1 {
				t.Errorf("%s got %d texts", patient, n)
			}
		}
		got, err := s.Counts(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := Counts{Total: 10, Sent: 5, Done: true,
			Skipped: map[string]int{InvalidNumber: 2, OptedOut: 1, Duplicate: 1, MissingValue: 1}}
		if got.Total != want.Total || got.Sent != want.Sent || got.Failed != 0 || got.Pending != 0 || !got.Done ||
			len(got.Skipped) != len(want.Skipped) {
			t.Errorf("report %+v, want %+v", got, want)
		}
		for k, v := range want.Skipped {
			if got.Skipped[k] != v {
				t.Errorf("skipped %s = %d, want %d", k, got.Skipped[k], v)
			}
		}
		if n := len(f.outboxFor(t)); n != 5 {
			t.Errorf("%d patients texted, want 5", n)
		}
		if last := f.reports[len(f.reports)-1]; !last.Done || last.Sent != 5 {
			t.Errorf("final report %+v", last)
		}
		if again, _ := s.Unfinished(ctx); len(again) != 0 {
			t.Errorf("still unfinished: %d", len(again))
		}
		targets, err := s.Targets(ctx, b.ID)
		if err != nil || len(targets) != 10 || targets[4].Number != "+1 002" || targets[4].State != Duplicate {
			t.Errorf("targets %+v %v", targets, err)
		}
	})
}

func TestBroadcastTargetFailsAfterRepeatedErrors(t *testing.T) {
	dbtest.ForEach(t, "broadcast_fail", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := New(db, dbtest.Keyring(t), zerolog.Nop())
		if err := s.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		b := &Broadcast{LoginID: "l", Template: "t", CreatedBy: "api:ehr", Origin: "api"}
		if err := s.Create(ctx, b, []string{"+1001", "+1002"}); err != nil {
			t.Fatal(err)
		}
		calls := 0
		e := &Engine{Store: s, RetryAfter: 1, MaxAttempts: 3, Deliver: func(ctx context.Context, b *Broadcast, t *Target) error {
			calls++
			if t.Position == 0 {
				return errors.New("homeserver unreachable")
			}
			t.State = Sent
			return nil
		}}
		if err := e.Run(ctx, b); err != nil {
			t.Fatal(err)
		}
		c, _ := s.Counts(ctx, b.ID)
		if c.Failed != 1 || c.Sent != 1 || !c.Done || calls != 4 {
			t.Errorf("%+v after %d calls", c, calls)
		}
		targets, _ := s.Targets(ctx, b.ID)
		if targets[0].Detail != "homeserver unreachable" {
			t.Errorf("detail %q", targets[0].Detail)
		}
	})
}
