package loadtest

import (
	"context"
	"database/sql"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/careline/careline/internal/pgtest"
)

// The server's CPU over a run: the bridge's live backends since the start, exited children
// whole less what they had used before the start, the postmaster's own; other live children
// (the checkpointer, another database's backends) not at all.
func TestPostgresCPUCountsExitedBackends(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	before := pgSample{
		bridge: map[int]bool{10: true, 11: true, 17: true},
		children: map[int]procStat{
			10: {started: 1, cpu: ms(100)},  // the bridge's, alive throughout: +200
			11: {started: 2, cpu: ms(50)},   // the bridge's, exits having used 120 in all: +70
			12: {started: 0, cpu: ms(1000)}, // checkpointer: not counted
			13: {started: 3, cpu: ms(30)},   // exiting at the start, used nothing since: 0
			17: {started: 4, cpu: ms(20)},   // the bridge's, exits having used 25; its PID is reused: +5
			18: {started: 4, cpu: ms(60)},   // another database's, alive throughout: not counted
		},
		postmaster: ms(5), reaped: ms(2000), ok: true,
	}
	after := pgSample{
		bridge: map[int]bool{10: true, 14: true, 17: true},
		children: map[int]procStat{
			10: {started: 1, cpu: ms(300)},
			12: {started: 0, cpu: ms(1200)},
			14: {started: 6, cpu: ms(40)}, // the bridge's, new: +40
			17: {started: 9, cpu: ms(10)}, // the bridge's, new with a reused PID: +10
			18: {started: 4, cpu: ms(90)},
		},
		// Reaped: 11 (120), 13 (30), 17's first (25), and one of the bridge's that started and
		// exited during the run (80): +80.
		postmaster: ms(7), reaped: ms(2000 + 120 + 30 + 25 + 80), ok: true,
	}
	if got, want := postgresCPU(before, after), ms(200+70+5+40+10+80+2); got != want {
		t.Fatalf("postgresCPU = %v, want %v", got, want)
	}
	after.ok = false
	if got := postgresCPU(before, after); got != 0 {
		t.Fatalf("postgresCPU with a failed sample = %v, want 0", got)
	}
}

// A PostgreSQL backend that does work and exits between two samples is counted: its CPU
// reaches the postmaster's reaped CPU once it exits.
func TestPGProbeCountsBackendThatExited(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	uri := pgtest.NewDatabase(t, "careline_pgprobe")
	probe, err := openPGProbe(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	before := probe.sample(ctx)
	if !before.ok {
		t.Fatal("no sample of the server's processes")
	}

	db, err := sql.Open("postgres", uri)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err = conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	// Work until /proc shows at least 5 ticks of it.
	var used procStat
	for used.cpu < 5*clockTick {
		if _, err = conn.ExecContext(ctx, `SELECT count(*) FROM generate_series(1, 200000)`); err != nil {
			t.Fatal(err)
		}
		if used, err = readStat(pid); err != nil {
			t.Fatal(err)
		}
	}
	if mid := probe.sample(ctx); !mid.bridge[pid] || mid.children[pid].started != used.started {
		t.Fatalf("backend %d is not among the bridge's or the postmaster's children: %+v", pid, mid)
	}
	_ = conn.Close()
	_ = db.Close()
	for {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("backend %d did not exit", pid)
		case <-time.After(10 * time.Millisecond):
		}
	}
	after := probe.sample(ctx)
	if _, alive := after.children[pid]; alive {
		t.Fatalf("backend %d exited and is still a child", pid)
	}
	if got := postgresCPU(before, after); got < used.cpu {
		t.Fatalf("postgresCPU = %v, the exited backend alone used %v", got, used.cpu)
	}
}
