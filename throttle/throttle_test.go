package throttle

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

func TestTakeOncePerWindow(t *testing.T) {
	dbtest.ForEach(t, "throttle", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := New(db, zerolog.Nop())
		if err := s.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		base := time.Date(2026, 11, 2, 20, 0, 0, 0, time.UTC)
		every := 12 * time.Hour
		for i, tc := range []struct {
			key  string
			at   time.Time
			want bool
		}{
			{"autoreply:p1", base, true},
			{"autoreply:p1", base.Add(time.Minute), false},
			{"autoreply:p2", base.Add(time.Minute), true},
			{"autoreply:p1", base.Add(every - time.Millisecond), false},
			{"autoreply:p1", base.Add(every), true},
			{"autoreply:p1", base.Add(every + time.Hour), false},
		} {
			got, err := s.Take(ctx, tc.key, tc.at, every)
			if err != nil || got != tc.want {
				t.Errorf("step %d %s at %v: %v %v, want %v", i, tc.key, tc.at, got, err, tc.want)
			}
		}
		// Taken inside a rolled-back transaction, the window is not used up.
		_ = db.DoTxn(ctx, nil, func(ctx context.Context) error {
			if ok, _ := s.Take(ctx, "missed:p3", base, every); !ok {
				t.Error("first take in a transaction refused")
			}
			return context.Canceled
		})
		if ok, _ := s.Take(ctx, "missed:p3", base, every); !ok {
			t.Error("a rolled-back take used up the window")
		}
		// Ten at once: one wins.
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ok, err := s.Take(ctx, "race", base, every); err == nil && ok {
					wins.Add(1)
				} else if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("%d concurrent takes won", wins.Load())
		}
	})
}
