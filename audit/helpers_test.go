package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream"

	"github.com/careline/careline/internal/pgtest"
)

var testKey = KeyFromSecret("a test identity key that is long enough to use")

// forEachDB runs fn against a fresh SQLite database and a fresh PostgreSQL database
// (CARELINE_TEST_POSTGRES, default a local server; skipped with a message if unreachable).
func forEachDB(t *testing.T, fn func(t *testing.T, db *dbutil.Database)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLite(t, "immediate")) })
	t.Run("postgres", func(t *testing.T) { fn(t, openPostgres(t)) })
}

func sqliteURI(tb testing.TB, txlock string) string {
	return "file:" + filepath.Join(tb.TempDir(), "audit.db") + "?_txlock=" + txlock
}

func openSQLite(tb testing.TB, txlock string) *dbutil.Database {
	tb.Helper()
	return openURI(tb, sqliteURI(tb, txlock), "sqlite3-fk-wal")
}

func openURI(tb testing.TB, uri, dialect string) *dbutil.Database {
	tb.Helper()
	db, err := dbutil.NewWithDialect(uri, dialect)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

func openPostgres(tb testing.TB) *dbutil.Database {
	tb.Helper()
	return pgtest.Open(tb, "careline_audit_test")
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func newLog(t *testing.T, db *dbutil.Database) *Log {
	t.Helper()
	l := New(db, testKey, zerolog.Nop())
	if err := l.Upgrade(context.Background()); err != nil {
		t.Fatal(err)
	}
	return l
}

// fill appends n varied entries and returns them as Append returned them.
func fill(t *testing.T, l *Log, n int) []Entry {
	t.Helper()
	var out []Entry
	for i := 1; i <= n; i++ {
		e, err := l.Append(context.Background(), Entry{
			Actor:     fmt.Sprintf("@nurse%d:clinic.example", i%3),
			Action:    []string{"message.sent", "message.received", "delivery.status", "portal.view"}[i%4],
			PatientID: fmt.Sprintf("p%d", i%5),
			Channel:   []string{"sms", "secure", "portal", ""}[i%4],
			TwilioSID: fmt.Sprintf("SM%032d", i),
			Detail:    fmt.Sprintf("n=%d", i),
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func verify(t *testing.T, l *Log) *Report {
	t.Helper()
	r, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func exec(t *testing.T, l *Log, query string, args ...any) {
	t.Helper()
	if _, err := l.db.Exec(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// wantProblems fails unless the report lists exactly these problems (What is not compared).
func wantProblems(t *testing.T, r *Report, want ...Problem) {
	t.Helper()
	ok := len(r.Problems) == len(want)
	for i := 0; ok && i < len(want); i++ {
		p := r.Problems[i]
		ok = p.Seq == want[i].Seq && p.Last == want[i].Last && p.Kind == want[i].Kind
	}
	if !ok {
		t.Fatalf("problems:\n got  %+v\n want %+v", r.Problems, want)
	}
}
