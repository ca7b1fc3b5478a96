package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/internal/pgtest"
)

const testIdentityKey = "0123456789abcdef0123456789abcdef-test"

// auditBackend is a fresh database for the CLI to open, as a config would name it.
type auditBackend struct{ dbType, uri string }

func auditBackends(t *testing.T, fn func(t *testing.T, b auditBackend)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, auditBackend{"sqlite3-fk-wal", "file:" + filepath.Join(t.TempDir(), "careline.db") + "?_txlock=immediate"})
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, auditBackend{"postgres", pgtest.NewDatabase(t, "careline_cli_test")})
	})
}

// seed writes n audit entries the way the bridge would, and returns the log for tampering.
func seed(t *testing.T, b auditBackend, n int) (*audit.Log, *dbutil.Database) {
	t.Helper()
	db, err := dbutil.NewWithDialect(b.uri, b.dbType)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	l := audit.New(db, audit.KeyFromSecret(testIdentityKey), zerolog.Nop())
	ctx := context.Background()
	if err = l.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err = l.Append(ctx, audit.Entry{Actor: "@dr.lee:clinic.example", Action: "message.sent", PatientID: "p1", Channel: "sms"}); err != nil {
			t.Fatal(err)
		}
	}
	return l, db
}

func writeConfig(t *testing.T, b auditBackend, identityKey string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := "database:\n    type: " + b.dbType + "\n    uri: " + b.uri + "\n" +
		"network:\n    privacy:\n        identity_key: " + identityKey + "\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func run(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := runAudit(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestAuditVerifyCommand(t *testing.T) {
	auditBackends(t, func(t *testing.T, b auditBackend) {
		_, db := seed(t, b, 6)
		cfg := writeConfig(t, b, testIdentityKey)
		code, out, errOut := run("verify", "-c", cfg)
		if code != 0 || !strings.HasPrefix(out, "audit trail intact: 6 entries (seq 1–6)\n") {
			t.Fatalf("intact trail: exit %d, %q %q", code, out, errOut)
		}
		// The key comes from the config: another identity key makes every entry look edited.
		if code, out, _ = run("verify", "--config", writeConfig(t, b, strings.Repeat("x", 40))); code != 1 || !strings.Contains(out, "entries 1–6 were edited") {
			t.Fatalf("wrong key: exit %d, %q", code, out)
		}
		ctx := context.Background()
		if _, err := db.Exec(ctx, `UPDATE careline_audit SET patient_id = 'p2' WHERE seq = 2`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `DELETE FROM careline_audit WHERE seq IN (4, 5)`); err != nil {
			t.Fatal(err)
		}
		code, out, _ = run("verify", "-c", cfg)
		if code != 1 || !strings.Contains(out, "\n  entry 2 was edited\n  entries 4–5 are missing\n") {
			t.Fatalf("tampered trail: exit %d, %q", code, out)
		}
	})
}

func TestAuditExportCommand(t *testing.T) {
	auditBackends(t, func(t *testing.T, b auditBackend) {
		seed(t, b, 3)
		cfg := writeConfig(t, b, testIdentityKey)
		today := time.Now().UTC().Format(time.DateOnly)

		file := filepath.Join(t.TempDir(), "audit.jsonl")
		code, out, errOut := run("export", "-c", cfg, "--since", today, "--until", today, "--format", "jsonl", "-o", file)
		if code != 0 || out != "" || !strings.Contains(errOut, "wrote 3 entries") {
			t.Fatalf("export: exit %d, %q %q", code, out, errOut)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 3 {
			t.Fatalf("%d lines: %q", len(lines), data)
		}
		var rec struct {
			Seq    int64  `json:"seq"`
			Action string `json:"action"`
		}
		if err = json.Unmarshal([]byte(lines[2]), &rec); err != nil || rec.Seq != 3 || rec.Action != "message.sent" {
			t.Fatalf("last line %q: %v", lines[2], err)
		}
		if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("export file mode: %v %v", fi.Mode(), err)
		}

		// The export was recorded, and appears in the next one, here as CSV on stdout.
		code, out, _ = run("export", "-c", cfg, "--format", "csv", "--since", time.Now().Add(-time.Hour).Format(time.RFC3339))
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if code != 0 || err != nil || len(rows) != 5 || strings.Join(rows[0], ",") != strings.Join(audit.Columns, ",") {
			t.Fatalf("csv export: exit %d, %v, %q", code, err, out)
		}
		if rows[4][0] != "4" || rows[4][2] != cliActor() || rows[4][3] != "audit.exported" || !strings.Contains(rows[4][7], "entries=3") {
			t.Fatalf("export not recorded: %q", rows[4])
		}
		// Nothing is in a range in the past.
		if code, out, _ = run("export", "-c", cfg, "--until", "2020-01-01"); code != 0 || out != "" {
			t.Fatalf("empty range: exit %d, %q", code, out)
		}
		if code, out, _ = run("verify", "-c", cfg); code != 0 || !strings.HasPrefix(out, "audit trail intact: 6 entries") {
			t.Fatalf("after exports: exit %d, %q", code, out)
		}
	})
}

func TestAuditCommandErrors(t *testing.T) {
	dir := t.TempDir()
	sqlite := auditBackend{"sqlite3-fk-wal", "file:" + filepath.Join(dir, "careline.db") + "?_txlock=immediate"}
	seed(t, sqlite, 1)
	good := writeConfig(t, sqlite, testIdentityKey)
	noTrail := auditBackend{"sqlite3-fk-wal", "file:" + filepath.Join(dir, "other.db")}
	if db, err := dbutil.NewWithDialect(noTrail.uri, noTrail.dbType); err != nil {
		t.Fatal(err)
	} else if _, err = db.Exec(context.Background(), "CREATE TABLE x (y INTEGER)"); err != nil {
		t.Fatal(err)
	} else {
		_ = db.Close()
	}
	missingDB := filepath.Join(dir, "missing.db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"verify", "-c", filepath.Join(dir, "nope.yaml")}, "not found"},
		{[]string{"verify", "-c", writeConfig(t, sqlite, "")}, "identity_key is not set"},
		{[]string{"verify", "-c", writeConfig(t, sqlite, "generate")}, "identity_key is not set"},
		{[]string{"verify", "-c", writeConfig(t, auditBackend{"oracle", sqlite.uri}, testIdentityKey)}, `database.type "oracle"`},
		{[]string{"verify", "-c", writeConfig(t, noTrail, testIdentityKey)}, "has no audit trail"},
		{[]string{"verify", "-c", writeConfig(t, auditBackend{"sqlite3-fk-wal", "file:" + missingDB}, testIdentityKey)}, "cannot open the database"},
		{[]string{"export", "-c", good, "--since", "2026-02-30"}, "--since"},
		{[]string{"export", "-c", good, "--until", "yesterday"}, "--until"},
		{[]string{"export", "-c", good, "--since", "2026-02-01", "--until", "2026-01-01"}, "before --until"},
		{[]string{"export", "-c", good, "--format", "xml"}, `unknown --format "xml"`},
		{[]string{"export", "-c", good, "-o", filepath.Join(dir, "no", "such", "dir")}, "no such file"},
		{[]string{"verify", "-c", good, "extra"}, "unexpected argument"},
		{[]string{"verify", "--nope"}, "not defined"},
		{[]string{"purge"}, "unknown audit command"},
	} {
		code, out, errOut := run(c.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, out, errOut, c.want)
		}
	}
	if _, err := os.Stat(missingDB); !os.IsNotExist(err) {
		t.Errorf("verify created %s", missingDB)
	}
	for _, args := range [][]string{nil, {"--help"}, {"-h"}, {"verify", "--help"}, {"export", "-h"}} {
		if code, out, _ := run(args...); code != 0 || !strings.Contains(out, "careline audit export") {
			t.Errorf("%q: exit %d, %q", args, code, out)
		}
	}
}
