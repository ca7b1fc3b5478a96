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

// procCPU is utime + stime of a process. The command name in field 2 may contain spaces and
// parentheses, so fields are counted after its closing parenthesis.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(data[end+1:]))
	// After the name: state(3) ... utime(14) stime(15); fields[0] is field 3.
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad CPU times", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
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

// postgresBackends lists the PostgreSQL server processes serving the bridge's database (not
// this connection), so their CPU can be read from /proc: the server is shared with other users.
func postgresBackends(ctx context.Context, uri string) []int {
	db, err := sql.Open("postgres", uri)
	if err != nil {
		return nil
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var pids []int
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// postgresCPU is the CPU time of each of the bridge's PostgreSQL backends now. A backend that
// started during a run counts from zero; one that ended during it is missed (the bridge keeps
// its pool open, so that is rare).
func postgresCPU(ctx context.Context, uri string) map[int]time.Duration {
	out := map[int]time.Duration{}
	for _, pid := range postgresBackends(ctx, uri) {
		if cpu, err := procCPU(pid); err == nil {
			out[pid] = cpu
		}
	}
	return out
}

func postgresCPUDelta(before, after map[int]time.Duration) time.Duration {
	var total time.Duration
	for pid, cpu := range after {
		total += cpu - before[pid]
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

// postgresCommits is the number of transactions committed in the bridge's database so far
// (pg_stat_database; PostgreSQL publishes it within a second of each commit).
func postgresCommits(ctx context.Context, uri string) int64 {
	db, err := sql.Open("postgres", uri)
	if err != nil {
		return 0
	}
	defer db.Close()
	var n int64
	_ = db.QueryRowContext(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	return n
}
