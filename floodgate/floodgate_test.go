package floodgate

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbtest"
)

func TestAdmitAtMostLimitPerWindow(t *testing.T) {
	dbtest.ForEach(t, "floodgate", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		g := New(db, zerolog.Nop())
		if err := g.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		base := time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)
		hour := time.Hour
		for i, tc := range []struct {
			login, patient string
			at             time.Time
			want           bool
			retryAt        time.Time
		}{
			{"L", "p1", base, true, time.Time{}},
			{"L", "p2", base.Add(10 * time.Minute), true, time.Time{}},
			{"L", "p3", base.Add(20 * time.Minute), false, base.Add(hour)},
			{"L", "p1", base.Add(30 * time.Minute), true, time.Time{}},     // admitted before: a retry
			{"other", "p3", base.Add(30 * time.Minute), true, time.Time{}}, // another clinic number has its own places
			{"L", "p3", base.Add(hour - time.Millisecond), false, base.Add(hour)},
			{"L", "p3", base.Add(hour), true, time.Time{}}, // p1's place is free again
			{"L", "p4", base.Add(hour), false, base.Add(10*time.Minute + hour)},
		} {
			ok, retryAt, err := g.Admit(ctx, tc.login, tc.patient, 2, hour, tc.at)
			if err != nil || ok != tc.want || !retryAt.Equal(tc.retryAt) {
				t.Errorf("step %d %s/%s: %v %v %v, want %v %v", i, tc.login, tc.patient, ok, retryAt, err, tc.want, tc.retryAt)
			}
		}
	})
}

// TestAdmitConcurrently: inbox workers admitting at once never pass the limit together.
func TestAdmitConcurrently(t *testing.T) {
	dbtest.ForEach(t, "floodgate", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		g := New(db, zerolog.Nop())
		if err := g.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		var admitted atomic.Int32
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, _, err := g.Admit(ctx, "L", string(rune('a'+i)), 5, time.Hour, now)
				if err != nil {
					t.Error(err)
				} else if ok {
					admitted.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := admitted.Load(); n != 5 {
			t.Fatalf("%d admitted, want 5", n)
		}
	})
}

// TestAdmittedAt: when a held text was let through is known after its place is free again,
// for its retry period.
func TestAdmittedAt(t *testing.T) {
	dbtest.ForEach(t, "floodgate", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		g := New(db, zerolog.Nop())
		if err := g.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		base := time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)
		if ok, _, err := g.Admit(ctx, "L", "p1", 1, time.Hour, base); !ok || err != nil {
			t.Fatal(ok, err)
		}
		// Two hours later p2 takes the place p1 freed; p1's record stays.
		if ok, _, err := g.Admit(ctx, "L", "p2", 1, time.Hour, base.Add(2*time.Hour)); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if at, err := g.AdmittedAt(ctx, "L", "p1"); !at.Equal(base) || err != nil {
			t.Fatalf("p1 admitted at %v %v, want %v", at, err, base)
		}
		if at, err := g.AdmittedAt(ctx, "L", "p3"); !at.IsZero() || err != nil {
			t.Fatalf("p3, never admitted: %v %v", at, err)
		}
	})
}
