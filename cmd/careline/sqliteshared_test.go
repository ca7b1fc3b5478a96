package main

import (
	"context"
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/careline/careline/internal/loadtest"
	"github.com/careline/careline/internal/stubhs"
)

// Other processes open careline's SQLite database while it runs: an admin's sqlite3 shell, a
// backup, `careline audit verify`, the e2e tests. SQLite keeps them consistent through its
// POSIX locks on the -shm file (the WAL index), and on Linux closing any descriptor of that
// file drops every lock the process holds on it. The reverted checkpointer of cf76c97 did,
// every 20 ms; another process that opened the database then took careline for gone and reset
// the index under it: careline died of SIGBUS inside a commit and texts were lost. Here careline
// (its main, from this test binary, on the stub homeserver and the fake Twilio) bridges a
// burst of signed webhooks while this process opens the database, reads it and closes it, over
// and over. careline must still run, every text must reach its room exactly once, and the
// database must be intact. With that checkpointer back it died within the burst in 20 of 20
// runs.
func TestSQLiteSharedWithAnotherProcess(t *testing.T) {
	t.Setenv(runMainEnv, "1") // the bridge processes run careline's main (TestMain)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const texts = 400
	var mu sync.Mutex
	arrived := map[string]int{} // body → times it reached a room
	rec := &loadtest.Recorder{}
	b, err := loadtest.StartBridge(ctx, loadtest.BridgeOptions{Kind: loadtest.Careline, Bin: os.Args[0], Dir: t.TempDir(),
		OnMessage: func(m stubhs.Message) {
			mu.Lock()
			arrived[m.Body]++
			mu.Unlock()
			rec.OnMessage(m)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// What careline printed last, from a crash's first line when it crashed.
	carelineLog := func() string {
		out, _ := os.ReadFile(filepath.Join(b.Opts.Dir, "bridge.out"))
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		from := max(0, len(lines)-10)
		for i, line := range lines {
			if strings.HasPrefix(line, "fatal error") || strings.HasPrefix(line, "panic") || strings.HasPrefix(line, "unexpected fault") || strings.HasPrefix(line, "SIG") {
				from = i
				break
			}
		}
		return strings.Join(lines[from:min(len(lines), from+10)], "\n")
	}
	path := filepath.Join(b.Opts.Dir, "bridge.db")

	type outcome struct {
		res loadtest.Result
		err error
	}
	burst := make(chan outcome, 1)
	go func() {
		res, err := loadtest.Run(ctx, b, rec, loadtest.Load{Messages: texts, Patients: 40, Concurrency: 8})
		burst <- outcome{res, err}
	}()
	// Open, read, close until the burst is bridged; what this process reads never goes back.
	var reads, midway, last int
	var done outcome
	for bridged := false; !bridged; {
		select {
		case done = <-burst:
			bridged = true
		default:
		}
		n, err := countInbound(ctx, path)
		if err != nil {
			t.Fatalf("reading careline's database from another process (read %d): %v", reads+1, err)
		}
		if n < last {
			t.Fatalf("another process read %d inbound texts after %d: the database went back", n, last)
		}
		if n > 0 && n < texts {
			midway++
		}
		last = n
		reads++
		if !alive(b) {
			t.Fatalf("careline stopped while another process read its database (%d reads):\n%s", reads, carelineLog())
		}
	}
	t.Logf("%d opens of the database while careline wrote, %d of them saw the burst half written", reads, midway)
	if done.err != nil {
		t.Fatalf("the burst: %v\n%s", done.err, carelineLog())
	}
	if res := done.res; res.Errors != 0 || res.Acked != texts || res.Arrived != texts {
		t.Fatalf("%d of %d webhooks acknowledged (%d errors, first: %s), %d texts reached a room\n%s",
			res.Acked, texts, res.Errors, res.FirstError, res.Arrived, carelineLog())
	}
	if midway == 0 {
		t.Fatal("no read overlapped careline's writes; nothing was tested")
	}
	if !alive(b) {
		t.Fatalf("careline stopped:\n%s", carelineLog())
	}
	mu.Lock()
	burstTexts := 0
	for body, n := range arrived {
		if !strings.HasPrefix(body, "Load test message ") {
			continue
		}
		burstTexts++
		if n != 1 {
			t.Errorf("%q reached its room %d times", body, n)
		}
	}
	mu.Unlock()
	if burstTexts != texts {
		t.Errorf("%d distinct texts reached a room, want %d", burstTexts, texts)
	}
	db, err := sql.Open("sqlite3-fk-wal", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err = db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q, %v", check, err)
	}
}

// countInbound opens careline's database as another process would (go-sqlite3, WAL), counts
// the inbound texts and closes it.
func countInbound(ctx context.Context, path string) (int, error) {
	db, err := sql.Open("sqlite3-fk-wal", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM careline_inbound").Scan(&n)
	return n, err
}

// alive asks bridgev2's liveness endpoint on careline's appservice listener.
func alive(b *loadtest.Bridge) bool {
	resp, err := http.Get(b.ASURL + "/_matrix/mau/live")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
