package loadtest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of CPU times in /proc/PID/stat; 100 on every Linux
// architecture Go supports.
const clockTick = 10 * time.Millisecond

// ProcSample is what /proc says about one process at one moment.
type ProcSample struct {
	CPU     time.Duration // user + system time since the process started
	RSS     int64         // resident set size, bytes
	PeakRSS int64         // high-water mark of RSS, bytes
}

// SampleProc reads /proc/PID/stat and /proc/PID/status.
func SampleProc(pid int) (ProcSample, error) {
	var s ProcSample
	cpu, err := procCPU(pid)
	if err != nil {
		return s, err
	}
	s.CPU = cpu
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		field, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch field {
		case "VmRSS":
			s.RSS = kb << 10
		case "VmHWM":
			s.PeakRSS = kb << 10
		}
	}
	return s, nil
}

// procStat is what /proc/PID/stat says about a process's lineage and CPU.
type procStat struct {
	ppid     int
	started  int64         // starttime, clock ticks after boot: tells a process from a later one with its PID
	cpu      time.Duration // utime + stime
	childCPU time.Duration // cutime + cstime: the CPU of its children that exited and were waited for
}

// readStat reads /proc/PID/stat. The command name in field 2 may contain spaces and
// parentheses, so fields are counted after its closing parenthesis.
func readStat(pid int) (procStat, error) {
	var s procStat
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return s, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	// After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17) ...
	// starttime(22); fields[0] is field 3.
	fields := strings.Fields(string(data[end+1:]))
	if len(fields) < 20 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	var n [5]int64
	for i, f := range []int{1, 11, 12, 13, 14} {
		if n[i], err = strconv.ParseInt(fields[f], 10, 64); err != nil {
			return s, fmt.Errorf("/proc/%d/stat: bad field %d", pid, f+3)
		}
	}
	if s.started, err = strconv.ParseInt(fields[19], 10, 64); err != nil {
		return s, fmt.Errorf("/proc/%d/stat: bad start time", pid)
	}
	s.ppid = int(n[0])
	s.cpu = time.Duration(n[1]+n[2]) * clockTick
	s.childCPU = time.Duration(n[3]+n[4]) * clockTick
	return s, nil
}

// procCPU is utime + stime of a process.
func procCPU(pid int) (time.Duration, error) {
	s, err := readStat(pid)
	return s.cpu, err
}

// childrenOf reads /proc/PID/stat of every child of parent now, by PID.
func childrenOf(parent int) map[int]procStat {
	out := map[int]procStat{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// A process that exited since ReadDir is not a child any more.
		if s, err := readStat(pid); err == nil && s.ppid == parent {
			out[pid] = s
		}
	}
	return out
}

// SelfCPU is this process's user + system time so far (getrusage: microseconds, finer than
// /proc's clock ticks).
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pgProbe watches the PostgreSQL server of the bridge's database over a run, on one
// connection held for the whole run: a connection opened and closed for each look would be a
// backend exiting during the run, counted with the bridge's.
type pgProbe struct {
	db         *sql.DB
	conn       *sql.Conn
	postmaster int // the server's parent process, whose children the backends are
}

func openPGProbe(ctx context.Context, uri string) (*pgProbe, error) {
	db, err := sql.Open("postgres", uri)
	if err != nil {
		return nil, err
	}
	p := &pgProbe{db: db}
	if p.conn, err = db.Conn(ctx); err != nil {
		db.Close()
		return nil, err
	}
	var self int
	if err = p.conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&self); err != nil {
		p.Close()
		return nil, err
	}
	s, err := readStat(self)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("PostgreSQL is not on this machine (its backend %d: %w)", self, err)
	}
	p.postmaster = s.ppid
	return p, nil
}

func (p *pgProbe) Close() {
	if p.conn != nil {
		p.conn.Close()
	}
	p.db.Close()
}

// pgSample is the server's processes at one moment.
type pgSample struct {
	bridge   map[int]bool     // backends serving the bridge's database (not the probe's)
	children map[int]procStat // every child of the postmaster, by PID
	// postmaster is the postmaster's own CPU (it forks every backend) and reaped the CPU of
	// its children that exited and were waited for, which is where an exited backend's CPU
	// goes.
	postmaster, reaped time.Duration
	ok                 bool
}

// sample reads the server's processes. The children are read between two reads of the
// postmaster's reaped CPU and again if it moved: a child that exits in between would
// otherwise be missed or counted twice.
func (p *pgProbe) sample(ctx context.Context) pgSample {
	s := pgSample{bridge: map[int]bool{}}
	rows, err := p.conn.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		return s
	}
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			s.bridge[pid] = true
		}
	}
	if rows.Close() != nil || rows.Err() != nil {
		return s
	}
	for range 10 {
		before, err := readStat(p.postmaster)
		if err != nil {
			return s
		}
		s.children = childrenOf(p.postmaster)
		after, err := readStat(p.postmaster)
		if err != nil {
			return s
		}
		if after.childCPU == before.childCPU {
			s.postmaster, s.reaped, s.ok = after.cpu, after.childCPU, true
			return s
		}
	}
	return s
}

// commits is the number of transactions committed in the bridge's database so far
// (pg_stat_database; PostgreSQL publishes it within a second of each commit).
func (p *pgProbe) commits(ctx context.Context) int64 {
	var n int64
	_ = p.conn.QueryRowContext(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	return n
}

// postgresCPU is the server's CPU between two samples on the bridge's behalf: the CPU of the
// bridge's backends alive at the end (since the first sample, or since they started), the CPU
// of every child of the postmaster that exited in between (less what it had used before the
// first sample), and the postmaster's own (it forks a backend for every connection opened).
// An exited child is no longer known to be the bridge's, so one of another database, or an
// autovacuum or parallel worker, counts too: nothing else should use the server during a run.
func postgresCPU(before, after pgSample) time.Duration {
	if !before.ok || !after.ok {
		return 0
	}
	total := after.postmaster - before.postmaster + after.reaped - before.reaped
	same := func(a, b procStat) bool { return a.started == b.started }
	for pid, was := range before.children {
		if now, alive := after.children[pid]; !alive || !same(was, now) {
			total -= was.cpu
		}
	}
	for pid, now := range after.children {
		if !after.bridge[pid] && !before.bridge[pid] {
			continue
		}
		total += now.cpu
		if was, ok := before.children[pid]; ok && same(was, now) {
			total -= was.cpu
		}
	}
	return total
}

// LoadAverage is the first line of /proc/loadavg (1, 5 and 15 minute averages).
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
