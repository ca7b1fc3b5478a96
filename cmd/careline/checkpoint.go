package main

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
)

// walCheckpointEvery is how often the checkpointer looks at how far the WAL has grown.
const walCheckpointEvery = 20 * time.Millisecond

// walCheckpointFrames is how many WAL frames not yet copied back make the checkpointer copy
// them under load. A pass copies each page once however often the frames since the last pass
// changed it, and syncs the WAL and the database once: at ~17 frames per message, copying
// every 20 ms (~500 frames at 1,600 msg/s) rewrote the same hot pages dozens of times a
// second. The checkpointer's own CPU per message halves (measured on its thread); 2,000 saved
// less, 8,000 little more.
const walCheckpointFrames = 4_000

// walCheckpointNear is how close to walAutocheckpointPages the WAL may come before the
// checkpointer copies at every look again. The working connection's own checkpoint at that size
// is what lets the WAL start over under load; it copies and syncs, holding every webhook,
// whatever the checkpointer left, which without this was up to ~1,400 frames a time (e2e p99
// 13 -> 16-17 ms at 8 concurrent webhooks).
const walCheckpointNear = 1_000

// walCheckpointWithin bounds how long frames wait to be copied (and the WAL synced) while the
// WAL grows too slowly to reach walCheckpointFrames and never pauses for a look.
const walCheckpointWithin = time.Second

// walCheckpointer copies SQLite's WAL back into the database on a connection of its own.
// Left to careline's one working connection, that copy ran inside whichever statement followed
// the commit that filled the WAL, and its two fsyncs (the WAL's ~40 MB, then the database)
// held that connection, and with it every webhook and the whole inbox, for 30-45 ms every
// ~300 ms under load: most of the end-to-end p99. A PASSIVE checkpoint here takes no lock a
// writer waits for; the working connection keeps its autocheckpoint as a backstop, which under
// sustained load is what lets the WAL start over (a writer restarts it only when every frame
// is copied), with little left to copy by then.
//
// Durability stays SQLite's synchronous=NORMAL (raiseWALAutocheckpoint): a commit survives a
// crash of careline; after a power loss, commits made since a pass last synced the WAL may be
// lost unless the kernel wrote them back. Under load a pass now comes every walCheckpointFrames
// frames (~0.15 s at 8 concurrent webhooks, where it came every 20 ms), within two looks of the
// WAL going quiet, and at the latest walCheckpointWithin after a frame began to wait.
type walCheckpointer struct {
	db   *sql.DB
	shm  string
	log  zerolog.Logger
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// startWALCheckpointer starts the checkpointer for careline's SQLite database, when careline
// chose the working connection's checkpoint interval (raiseWALAutocheckpoint reports raised):
// not for litestream, which checkpoints itself, nor when the admin set an interval. It returns
// nil when it does not start one.
func startWALCheckpointer(log zerolog.Logger, db *dbutil.Database, driver, uri string, raised bool) *walCheckpointer {
	if !raised || db.Dialect != dbutil.SQLite || driver != "sqlite3-fk-wal" {
		return nil
	}
	path, ok := sqlitePath(uri)
	if !ok {
		return nil
	}
	own, err := sql.Open(driver, uri)
	if err != nil {
		log.Warn().Err(err).Msg("Could not open SQLite for the WAL checkpointer; the working connection checkpoints")
		return nil
	}
	own.SetMaxOpenConns(1)
	own.SetMaxIdleConns(1)
	c := &walCheckpointer{db: own, shm: path + "-shm", log: log, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// sqlitePath is the database file a go-sqlite3 URI names ("file:PATH?…" or a plain path).
func sqlitePath(uri string) (string, bool) {
	path, _, _ := strings.Cut(uri, "?")
	if rest, ok := strings.CutPrefix(path, "file:"); ok {
		path = rest
		if unescaped, err := url.PathUnescape(rest); err == nil {
			path = unescaped
		}
	}
	return path, path != "" && path != ":memory:"
}

func (c *walCheckpointer) run() {
	defer close(c.done)
	ticker := time.NewTicker(walCheckpointEvery)
	defer ticker.Stop()
	var trigger walTrigger
	failing, unreadable := false, 0
	for {
		var now time.Time
		select {
		case <-c.stop:
			return
		case now = <-ticker.C:
		}
		wal, err := readWALIndex(c.shm)
		if errors.Is(err, errWALIndex) {
			// Caught half written now and then; never readable would be a WAL index of
			// another layout, and only the working connection's checkpoint left.
			if unreadable++; unreadable == 50 {
				c.log.Warn().Msg("Cannot read SQLite's WAL index; the working connection checkpoints")
			}
			continue
		}
		unreadable = 0
		if err != nil || !trigger.due(now, wal) {
			continue // no WAL open (yet, or removed by the last close), or not yet worth a pass
		}
		var busy, frames, copied int
		err = c.db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
		switch {
		case err != nil && !failing:
			failing = true
			c.log.Warn().Err(err).Msg("Could not checkpoint SQLite's WAL; the working connection checkpoints until this works again")
		case err == nil && failing:
			failing = false
			c.log.Info().Msg("Checkpointing SQLite's WAL works again")
		}
		if err == nil {
			trigger.passed()
		}
	}
}

// walTrigger decides, look by look, when the checkpointer copies the WAL back: once
// walCheckpointFrames frames wait, at every look once the WAL is within walCheckpointNear of
// the working connection's checkpoint, once the WAL stops growing (so an idle bridge's WAL is
// all copied and synced), and at the latest walCheckpointWithin after frames began to wait.
type walTrigger struct {
	last    walIndex  // the WAL at the previous look
	waiting time.Time // when frames were first seen waiting since the last pass
}

func (t *walTrigger) due(now time.Time, wal walIndex) bool {
	pending := wal.pending()
	if pending > 0 && t.waiting.IsZero() {
		t.waiting = now
	}
	grown := wal.mxFrame != t.last.mxFrame
	t.last = wal
	if pending == 0 {
		return false
	}
	return pending >= walCheckpointFrames || int(wal.mxFrame)+walCheckpointNear >= walAutocheckpointPages ||
		!grown || now.Sub(t.waiting) >= walCheckpointWithin
}

// passed records a pass that copied what was there when it began.
func (t *walTrigger) passed() { t.waiting = time.Time{} }

// walIndex is what the checkpointer reads of SQLite's WAL index (the -shm file, which every
// connection to the database maps): how many frames the WAL holds and how many of them are
// copied back into the database. Reading it takes no lock and costs one read of the file, where
// asking SQLite (PRAGMA wal_checkpoint) would copy. Its layout is SQLite's file format
// (https://www.sqlite.org/walformat.html, "The WAL-Index Format"), fixed because connections of
// different SQLite versions share it; in the machine's byte order.
type walIndex struct {
	mxFrame, nBackfill uint32
}

func (w walIndex) pending() int {
	if w.mxFrame <= w.nBackfill {
		return 0
	}
	return int(w.mxFrame - w.nBackfill)
}

// errWALIndex is a WAL index the checkpointer cannot read: not initialised, of a version it
// does not know, or caught half written.
var errWALIndex = errors.New("unreadable SQLite WAL index")

func readWALIndex(path string) (walIndex, error) {
	f, err := os.Open(path)
	if err != nil {
		return walIndex{}, err
	}
	defer f.Close()
	// Two copies of the header (48 bytes each; a writer updates the second first), then the
	// checkpoint information, whose first field is nBackfill.
	var b [100]byte
	if _, err = f.ReadAt(b[:], 0); err != nil {
		return walIndex{}, err
	}
	const walIndexVersion = 3007000
	if binary.NativeEndian.Uint32(b[0:]) != walIndexVersion || b[12] == 0 || !bytes.Equal(b[0:48], b[48:96]) {
		return walIndex{}, errWALIndex
	}
	return walIndex{mxFrame: binary.NativeEndian.Uint32(b[16:]), nBackfill: binary.NativeEndian.Uint32(b[96:])}, nil
}

// Stop ends the checkpointer and closes its connection. Once the bridge has closed its own,
// that close is the last, and SQLite copies whatever is left and removes the WAL.
func (c *walCheckpointer) Stop() {
	if c == nil {
		return
	}
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		if err := c.db.Close(); err != nil {
			c.log.Warn().Err(err).Msg("Closing the WAL checkpointer's connection")
		}
	})
}
