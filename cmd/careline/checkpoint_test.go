package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
)

// A row committed on careline's working connection reaches the database file by the
// checkpointer's hand, while the working connection's own checkpoint is far off; once both
// connections are closed the WAL is gone (the checkpointer's close was the last).
func TestWALCheckpointerCopiesTheWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "careline.db")
	uri := "file:" + path + "?_txlock=immediate"
	db, err := dbutil.NewWithDialect(uri, "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	db.RawDB.SetMaxOpenConns(1) // as postInit sizes it
	raised, err := raiseWALAutocheckpoint(ctx, db)
	if err != nil || !raised {
		t.Fatalf("raised %v, %v", raised, err)
	}
	checkpointer := startWALCheckpointer(zerolog.Nop(), db, "sqlite3-fk-wal", uri, raised)
	if checkpointer == nil {
		t.Fatal("no checkpointer for careline's own SQLite settings")
	}
	defer checkpointer.Stop()
	// A few pages, far below walAutocheckpointPages: left to itself the working connection
	// would keep them in the WAL.
	marker := "careline-checkpoint-marker-7f3a"
	if _, err = db.RawDB.ExecContext(ctx, "CREATE TABLE t (v TEXT)"); err != nil {
		t.Fatal(err)
	}
	if _, err = db.RawDB.ExecContext(ctx, "INSERT INTO t (v) VALUES ($1)", marker); err != nil {
		t.Fatal(err)
	}
	inFile := func() bool {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(data, []byte(marker))
	}
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(walCheckpointEvery)
	defer tick.Stop()
	for !inFile() {
		select {
		case <-deadline:
			t.Fatal("the row never reached the database file: nothing checkpointed the WAL")
		case <-tick.C:
		}
	}

	if err = db.Close(); err != nil {
		t.Fatal(err)
	}
	checkpointer.Stop()
	if _, err = os.Stat(path + "-wal"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WAL after both connections closed: %v (want it removed by the last close)", err)
	}
}

// Only careline's own SQLite settings get the checkpointer: not litestream (which checkpoints
// itself), not an interval the admin chose, not PostgreSQL.
func TestWALCheckpointerOnlyForCarelinesSQLite(t *testing.T) {
	uri := "file:" + filepath.Join(t.TempDir(), "careline.db") + "?_txlock=immediate"
	db, err := dbutil.NewWithDialect(uri, "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if c := startWALCheckpointer(zerolog.Nop(), db, "sqlite3-fk-wal", uri, false); c != nil {
		c.Stop()
		t.Error("a checkpointer although careline did not set the interval")
	}
	if c := startWALCheckpointer(zerolog.Nop(), db, "litestream", uri, true); c != nil {
		c.Stop()
		t.Error("a checkpointer for litestream")
	}
	pg := &dbutil.Database{Dialect: dbutil.Postgres}
	if c := startWALCheckpointer(zerolog.Nop(), pg, "postgres", "postgres://127.0.0.1/x", true); c != nil {
		c.Stop()
		t.Error("a checkpointer for PostgreSQL")
	}
}

func TestSQLitePath(t *testing.T) {
	for _, c := range []struct {
		uri, want string
		ok        bool
	}{
		{"file:/var/lib/careline/careline.db?_txlock=immediate&_stmt_cache_size=256", "/var/lib/careline/careline.db", true},
		{"/var/lib/careline/careline.db", "/var/lib/careline/careline.db", true},
		{"file:careline.db", "careline.db", true},
		{"file:/data/my%20clinic.db?_txlock=immediate", "/data/my clinic.db", true},
		{":memory:", "", false},
	} {
		got, ok := sqlitePath(c.uri)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("sqlitePath(%q) = %q, %v; want %q, %v", c.uri, got, ok, c.want, c.ok)
		}
	}
}
