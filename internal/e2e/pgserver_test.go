package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/careline/careline/internal/pgtest"
)

// postgresBin holds Debian's PostgreSQL server binaries.
const postgresBin = "/usr/lib/postgresql/15/bin"

// privatePostgres is a PostgreSQL server of one test, so that the test can stop and start it
// without disturbing the machine's shared server on 5432. It listens on 127.0.0.1 only, with
// trust authentication, and runs as the postgres user (initdb refuses root).
type privatePostgres struct {
	URI  string
	dir  string
	data string
	port int
	t    testing.TB
}

func startPrivatePostgres(t testing.TB) *privatePostgres {
	t.Helper()
	if _, err := os.Stat(filepath.Join(postgresBin, "initdb")); err != nil {
		t.Fatalf("this test needs its own PostgreSQL server and could not find initdb in %s: %v", postgresBin, err)
	}
	dir, err := os.MkdirTemp("", "careline-pg-")
	if err != nil {
		t.Fatal(err)
	}
	pg := &privatePostgres{dir: dir, data: filepath.Join(dir, "data"), t: t}
	t.Cleanup(func() {
		_ = pg.Stop("immediate")
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			if len(log) > 4000 {
				log = log[len(log)-4000:]
			}
			t.Logf("---- private PostgreSQL log (tail) ----\n%s", log)
		}
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, and there is no postgres user to run initdb as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err = os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := pg.command("initdb", "-D", pg.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pg.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	pg.URI = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
	if err = pg.Start(); err != nil {
		t.Fatal(err)
	}
	return pg
}

// command runs a PostgreSQL binary, as the postgres user when the test runs as root.
func (pg *privatePostgres) command(name string, args ...string) *exec.Cmd {
	bin := filepath.Join(postgresBin, name)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	cmd.Dir = pg.dir
	return cmd
}

// Start starts the server (again) and waits until it accepts connections.
func (pg *privatePostgres) Start() error {
	// fsync off: the tests restart the server, not the machine.
	opts := fmt.Sprintf("-h 127.0.0.1 -p %d -k %s -c fsync=off -c max_connections=200", pg.port, pg.dir)
	cmd := pg.command("pg_ctl", "-D", pg.data, "-o", opts, "-l", filepath.Join(pg.dir, "postgres.log"), "-w", "-t", "60", "start")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pg_ctl start: %w\n%s", err, out.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open(pgtest.Driver, pg.URI)
	if err != nil {
		return err
	}
	defer db.Close()
	for {
		if err = db.PingContext(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("private PostgreSQL does not answer: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop stops the server; mode is pg_ctl's: "fast" (clean) or "immediate" (as a crash).
func (pg *privatePostgres) Stop(mode string) error {
	if _, err := os.Stat(filepath.Join(pg.data, "postmaster.pid")); err != nil {
		return nil // not running
	}
	if out, err := pg.command("pg_ctl", "-D", pg.data, "-m", mode, "-w", "stop").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}
