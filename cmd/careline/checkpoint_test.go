package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// What the checkpointer reads of the WAL index is what SQLite itself counts: the frames in the
// WAL (a checkpoint's "log" column) and, after a checkpoint, the frames copied back.
func TestReadWALIndexAgreesWithSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "careline.db")
	db, err := dbutil.NewWithDialect("file:"+path+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.RawDB.SetMaxOpenConns(1)
	if raised, err := raiseWALAutocheckpoint(ctx, db); err != nil || !raised {
		t.Fatalf("raised %v, %v", raised, err)
	}
	if _, err = db.RawDB.ExecContext(ctx, "CREATE TABLE t (v TEXT)"); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err = db.RawDB.ExecContext(ctx, "INSERT INTO t (v) VALUES ($1)", strings.Repeat("x", 100*i)); err != nil {
			t.Fatal(err)
		}
	}
	before, err := readWALIndex(path + "-shm")
	if err != nil {
		t.Fatal(err)
	}
	var busy, frames, copied int
	if err = db.RawDB.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
		t.Fatal(err)
	}
	if frames < 50 || copied != frames {
		t.Fatalf("checkpoint: %d frames, %d copied; want every one of at least 50 copied", frames, copied)
	}
	if before.mxFrame != uint32(frames) || before.pending() != frames {
		t.Errorf("before the checkpoint read %d frames, %d waiting; SQLite counted %d, none copied", before.mxFrame, before.pending(), frames)
	}
	after, err := readWALIndex(path + "-shm")
	if err != nil {
		t.Fatal(err)
	}
	if after.mxFrame != uint32(frames) || after.nBackfill != uint32(copied) || after.pending() != 0 {
		t.Errorf("after the checkpoint read %+v; SQLite counted %d frames, %d copied", after, frames, copied)
	}
}

// The checkpointer copies once enough frames wait, or once the WAL stops growing, or when
// frames have waited walCheckpointWithin: not at every look while the WAL grows.
func TestWALTrigger(t *testing.T) {
	start := time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)
	var tr walTrigger
	look := func(i int, mx, backfill uint32) bool {
		return tr.due(start.Add(time.Duration(i)*walCheckpointEvery), walIndex{mxFrame: mx, nBackfill: backfill})
	}
	if look(0, 0, 0) {
		t.Error("a pass for an empty WAL")
	}
	// Growing under load: no pass until walCheckpointFrames wait.
	for i, mx := 1, uint32(0); mx+800 < walCheckpointFrames; i++ {
		mx += 800
		if look(i, mx, 0) {
			t.Fatalf("a pass at %d waiting frames, while the WAL grows", mx)
		}
	}
	if !look(10, walCheckpointFrames, 0) {
		t.Errorf("no pass with %d frames waiting", walCheckpointFrames)
	}
	tr.passed()
	// The pass copied what was there; a few more frames came meanwhile, and the WAL goes on growing.
	if look(11, walCheckpointFrames+100, walCheckpointFrames) {
		t.Error("a pass at 100 waiting frames, while the WAL grows")
	}
	// It stops growing: the rest is copied.
	if !look(12, walCheckpointFrames+100, walCheckpointFrames) {
		t.Error("no pass once the WAL stopped growing")
	}
	tr.passed()
	if look(13, walCheckpointFrames+100, walCheckpointFrames+100) {
		t.Error("a pass with every frame copied")
	}
	// Close to the working connection's own checkpoint: at every look, so that one finds little
	// left to copy.
	near := uint32(walAutocheckpointPages - walCheckpointNear)
	tr = walTrigger{}
	if look(20, near-200, near-400) {
		t.Error("a pass at 200 waiting frames, while the WAL grows, far from the working connection's checkpoint")
	}
	if !look(21, near+200, near-400) {
		t.Errorf("no pass at %d frames in the WAL, near the working connection's checkpoint", near+200)
	}
	tr.passed()
	if !look(22, near+400, near+200) {
		t.Errorf("no pass at %d frames in the WAL, near the working connection's checkpoint", near+400)
	}
	tr = walTrigger{}
	// A slow, steady trickle: copied within walCheckpointWithin of the first waiting frame.
	i, mx := 14, uint32(walCheckpointFrames+100)
	first := i
	for ; ; i++ {
		mx++
		if look(i, mx, walCheckpointFrames+100) {
			break
		}
		if time.Duration(i-first)*walCheckpointEvery > walCheckpointWithin {
			t.Fatalf("frames waited %v without a pass", time.Duration(i-first)*walCheckpointEvery)
		}
	}
	if waited := time.Duration(i-first) * walCheckpointEvery; waited < walCheckpointWithin {
		t.Errorf("a pass after %v of a trickle, before walCheckpointWithin", waited)
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
