package audit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream"
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

func postgresURL() string {
	if u := os.Getenv("CARELINE_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// newPostgresURI creates a database that is dropped when the test ends, and returns its URI.
func newPostgresURI(tb testing.TB) string {
	tb.Helper()
	admin, err := sql.Open("postgres", postgresURL())
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err = admin.PingContext(ctx); err != nil {
		_ = admin.Close()
		tb.Fatalf("PostgreSQL is part of what is tested and is not reachable at %s (set CARELINE_TEST_POSTGRES): %v", postgresURL(), err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "careline_audit_test_" + hex.EncodeToString(b[:])
	if _, err = admin.Exec("CREATE DATABASE " + name); err != nil {
		tb.Fatal(err)
	}
	// Registered first, so it runs after the connections opened later are closed.
	tb.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			tb.Errorf("dropping %s: %v", name, err)
		}
		_ = admin.Close()
	})
	u, _ := url.Parse(postgresURL())
	u.Path = "/" + name
	return u.String()
}

func openPostgres(tb testing.TB) *dbutil.Database {
	tb.Helper()
	return openURI(tb, newPostgresURI(tb), "postgres")
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
