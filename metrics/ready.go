package metrics

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Check is one readiness check: nil when the dependency is usable.
type Check func(ctx context.Context) error

// Readiness runs named checks for /readyz.
type Readiness struct {
	mu     sync.Mutex
	checks map[string]Check
}

// Add registers a check under a short name ("database", "homeserver", "twilio", "backlog").
func (rd *Readiness) Add(name string, check Check) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if rd.checks == nil {
		rd.checks = map[string]Check{}
	}
	rd.checks[name] = check
}

// checkTimeout bounds each check, so /readyz answers even when a dependency hangs.
const checkTimeout = 3 * time.Second

// Run runs every check at once and returns the failures by name.
func (rd *Readiness) Run(ctx context.Context) map[string]error {
	rd.mu.Lock()
	checks := make(map[string]Check, len(rd.checks))
	for name, c := range rd.checks {
		checks[name] = c
	}
	rd.mu.Unlock()
	var mu sync.Mutex
	failed := map[string]error{}
	var wg sync.WaitGroup
	for name, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, checkTimeout)
			defer cancel()
			err := check(ctx)
			if err == nil && ctx.Err() != nil {
				err = ctx.Err()
			}
			if err != nil {
				mu.Lock()
				failed[name] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

// ServeHTTP answers 200 "ready" or 503 with one line per failed check, "name: reason".
// It is served only on the private metrics listener: reasons may name hosts.
func (rd *Readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	failed := rd.Run(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(failed) == 0 {
		_, _ = fmt.Fprintln(w, "ready")
		return
	}
	lines := make([]string, 0, len(failed))
	for name, err := range failed {
		lines = append(lines, name+": "+err.Error())
	}
	sort.Strings(lines)
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = fmt.Fprintln(w, strings.Join(lines, "\n"))
}

// MaxBacklogAge is how old the oldest waiting item may be before careline is not ready.
const MaxBacklogAge = time.Minute

// BacklogCheck fails when a queue's oldest item waited longer than MaxBacklogAge.
func BacklogCheck(name string, read func(context.Context) (Backlog, error)) Check {
	return func(ctx context.Context) error {
		b, err := read(ctx)
		if err != nil {
			return fmt.Errorf("reading the %s: %w", name, err)
		}
		if b.OldestAge > MaxBacklogAge {
			return fmt.Errorf("the oldest of %d items in the %s has waited %s (more than %s)", b.Depth, name, b.OldestAge.Round(time.Second), MaxBacklogAge)
		}
		return nil
	}
}

// DatabaseCheck fails when the database does not answer a query.
func DatabaseCheck(db *sql.DB) Check {
	return func(ctx context.Context) error {
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			return fmt.Errorf("the database does not answer: %w", err)
		}
		return nil
	}
}
