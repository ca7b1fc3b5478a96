package main

import (
	"database/sql"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
)

// walCheckpointEvery is how often the checkpointer looks for WAL frames to copy back into the
// database. Often enough that the working connection's own checkpoint (walAutocheckpointPages,
// kept as a backstop) finds little left to copy and sync.
const walCheckpointEvery = 20 * time.Millisecond

// walCheckpointer copies SQLite's WAL back into the database on a connection of its own.
// Left to careline's one working connection, that copy ran inside whichever statement followed
// the commit that filled the WAL, and its two fsyncs (the WAL's ~40 MB, then the database)
// held that connection, and with it every webhook and the whole inbox, for 30-45 ms every
// ~300 ms under load: most of the end-to-end p99. A PASSIVE checkpoint here takes no lock a
// writer waits for; the working connection keeps its autocheckpoint as a backstop, which under
// sustained load is what lets the WAL start over (a writer restarts it only when every frame
// is copied), with little left to copy by then.
//
// Durability is unchanged: the same copy with the same syncs, only on another connection.
type walCheckpointer struct {
	db   *sql.DB
	wal  string
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
	c := &walCheckpointer{db: own, wal: path + "-wal", log: log, stop: make(chan struct{}), done: make(chan struct{})}
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
	// The WAL as it was when a pass found every frame copied: while it is unchanged there is
	// nothing to do. mtime alone could miss a write in the same clock tick; size and the next
	// write cover that, and the backstop covers the rest.
	var copiedSize int64
	var copiedMod time.Time
	failing := false
	for {
		select {
		case <-c.stop:
			return
		case <-ticker.C:
		}
		st, err := os.Stat(c.wal)
		if err != nil || (st.Size() == copiedSize && st.ModTime().Equal(copiedMod)) {
			continue // no WAL (yet, or removed by the last close), or nothing new in it
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
		if err == nil && copied >= frames {
			copiedSize, copiedMod = st.Size(), st.ModTime()
		}
	}
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
