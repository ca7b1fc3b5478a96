// Package dbtest runs a test against both databases careline supports: a fresh SQLite file
// and a fresh PostgreSQL database (internal/pgtest), with a test keyring for sealed columns.
package dbtest

import (
	"bytes"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream" // the sqlite3-fk-wal dialect

	"github.com/careline/careline/atrest"
	"github.com/careline/careline/internal/cmem"
	"github.com/careline/careline/internal/pgtest"
)

// ForEach runs fn once on SQLite and once on PostgreSQL, each in its own subtest.
func ForEach(t *testing.T, prefix string, fn func(t *testing.T, db *dbutil.Database)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLite(t, prefix)) })
	t.Run("postgres", func(t *testing.T) { fn(t, openPostgres(t, prefix)) })
}

// ForEachB runs a benchmark once on a fresh SQLite database and once on a fresh PostgreSQL
// one, each in its own sub-benchmark ("sqlite", "postgres").
func ForEachB(b *testing.B, prefix string, fn func(b *testing.B, db *dbutil.Database)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, openSQLite(b, prefix)) })
	b.Run("postgres", func(b *testing.B) { fn(b, openPostgres(b, prefix)) })
}

// openSQLite is a fresh SQLite database, set up as careline runs it, closed after the test.
func openSQLite(tb testing.TB, prefix string) *dbutil.Database {
	db, err := dbutil.NewWithDialect("file:"+filepath.Join(tb.TempDir(), prefix+".db")+"?_txlock=immediate&_stmt_cache_size=256", "sqlite3-fk-wal")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	singleConnection(db)
	return db
}

// openPostgres is a fresh PostgreSQL database, closed after the test.
func openPostgres(tb testing.TB, prefix string) *dbutil.Database {
	db, err := dbutil.NewWithDialect(pgtest.NewDatabase(tb, prefix), pgtest.Driver)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// singleConnection gives a SQLite database the one connection careline runs it with
// (cmd/careline's bridge settings) and the C heap (package cmem), and makes a query outside
// the transaction its goroutine holds panic at once: with one connection it would wait forever
// for itself.
func singleConnection(db *dbutil.Database) {
	cmem.KeepFreed()
	db.RawDB.SetMaxOpenConns(1)
	db.DeadlockDetection = true
}

// Keyring is a fixed at-rest keyring for tests.
func Keyring(t testing.TB) *atrest.Keyring {
	t.Helper()
	kr, err := atrest.NewKeyring("test", map[string][]byte{"test": bytes.Repeat([]byte{7}, atrest.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// ReportCPU reports this process's CPU per operation since ProcessCPU read since: a
// benchmark's own cost, which on PostgreSQL leaves out the server's.
func ReportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64((ProcessCPU()-since).Microseconds())/float64(b.N), "cpu-µs/op")
}

// ProcessCPU is the CPU this process has used, user and system: a benchmark's own cost per
// operation, which on PostgreSQL leaves out the server's.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
