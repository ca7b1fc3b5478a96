package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"

	"github.com/careline/careline/internal/localstack"
)

// runMainEnv makes the test binary run careline's main instead of the tests, so a test can
// run the real command line (mxmain's flags, -e, config loading, PostInit) in a child process.
const runMainEnv = "CARELINE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runCareline runs careline with args in dir and returns what it printed and its exit code.
func runCareline(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	// A careline that does not stop on its own has got past the checks under test.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// exampleConfig is what `careline -e -c -` prints: bridgev2's example config with careline's
// network section.
func exampleConfig(t *testing.T) string {
	t.Helper()
	out, errOut, code := runCareline(t, t.TempDir(), "-e", "-c", "-")
	if code != 0 {
		t.Fatalf("careline -e exited %d: %s", code, errOut)
	}
	return out
}

func TestExampleConfigFileIsCurrent(t *testing.T) {
	want := exampleConfig(t)
	got, err := os.ReadFile("../../example-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("example-config.yaml is out of date: run `make example-config`")
	}
	if !strings.Contains(want, "\n    clinic_name:") || !strings.Contains(want, "\nencryption:") {
		t.Fatal("the example config lacks careline's network section or bridgev2's sections")
	}
}

// bridgev2's example config as it is needs three encryption keys and the "*" permission changed;
// careline refuses it naming each, and applies what it needs itself once they are right.
func TestBridgeSettings(t *testing.T) {
	var cfg bridgeconfig.Config
	if err := yaml.Unmarshal([]byte(exampleConfig(t)), &cfg); err != nil {
		t.Fatal(err)
	}
	_, err := bridgeSettings(&cfg, false)
	if err == nil {
		t.Fatal("bridgev2's example config (encryption off, \"*\": relay) was accepted")
	}
	for _, want := range []string{"encryption.allow", "encryption.default", "encryption.require", `"*" (everyone) the level relay`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not name %s: %v", want, err)
		}
	}
	if _, err = bridgeSettings(&cfg, true); err == nil || strings.Contains(err.Error(), "encryption") {
		t.Errorf("with --allow-unencrypted-rooms: %v", err)
	}

	cfg.Encryption.Allow, cfg.Encryption.Default, cfg.Encryption.Require = true, true, true
	cfg.Bridge.Permissions["*"] = &bridgeconfig.PermissionLevelBlock
	notes, err := bridgeSettings(&cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database.Type != "postgres" || cfg.Database.MaxOpenConns != minOpenConnsPostgres {
		t.Fatalf("bridgev2's example PostgreSQL pool: %s max_open_conns %d, want %d", cfg.Database.Type, cfg.Database.MaxOpenConns, minOpenConnsPostgres)
	}
	if cfg.Bridge.PortalEventBuffer != 0 || cfg.Database.MaxIdleConns != minOpenConnsPostgres || len(notes) != 3 {
		t.Fatalf("portal_event_buffer %d, max_idle_conns %d, notes %q", cfg.Bridge.PortalEventBuffer, cfg.Database.MaxIdleConns, notes)
	}
	if notes, _ = bridgeSettings(&cfg, false); len(notes) != 0 {
		t.Fatalf("settings already right still noted: %q", notes)
	}
	cfg.Database.Type, cfg.Database.URI = "sqlite3-fk-wal", "file:careline.db?_txlock=immediate"
	notes, _ = bridgeSettings(&cfg, false)
	if len(notes) != 2 || !strings.Contains(notes[0], "1 connection to SQLite") || !strings.Contains(notes[1], "_stmt_cache_size=256") {
		t.Fatalf("SQLite with bridgev2's pool and without a statement cache: %q", notes)
	}
	if cfg.Database.MaxOpenConns != 1 || cfg.Database.MaxIdleConns != 1 {
		t.Fatalf("SQLite: max_open_conns %d, max_idle_conns %d; want 1 and 1", cfg.Database.MaxOpenConns, cfg.Database.MaxIdleConns)
	}
}

// careline's one SQLite connection checkpoints at walAutocheckpointPages, in and out of
// transactions; litestream's 0 (litestream checkpoints itself) is left alone.
func TestRaiseWALAutocheckpoint(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		driver string
		want   int
	}{{"sqlite3-fk-wal", walAutocheckpointPages}, {"litestream", 0}} {
		db, err := dbutil.NewWithDialect("file:"+filepath.Join(t.TempDir(), "careline.db")+"?_txlock=immediate", c.driver)
		if err != nil {
			t.Fatal(err)
		}
		db.RawDB.SetMaxOpenConns(1) // as postInit sizes it
		raised, err := raiseWALAutocheckpoint(ctx, db)
		if err != nil {
			t.Fatal(err)
		} else if raised != (c.want == walAutocheckpointPages) {
			t.Errorf("%s: raised %v", c.driver, raised)
		}
		read := func(q interface {
			QueryRowContext(context.Context, string, ...any) *sql.Row
		}) (pages int) {
			if err := q.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&pages); err != nil {
				t.Fatal(err)
			}
			return pages
		}
		tx, err := db.RawDB.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		inTx := read(tx)
		if err = tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if got := read(db.RawDB); got != c.want || inTx != c.want {
			t.Errorf("%s: wal_autocheckpoint %d (in a transaction %d), want %d", c.driver, got, inTx, c.want)
		}
		db.Close()
	}
}

// The real command line refuses to start with bridgev2's encryption defaults, before it
// connects anywhere, with the keys to fix in its log and mxmain's configuration exit code.
func TestRefusesToStartUnencrypted(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte(exampleConfig(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	editYAML(t, config, func(cfg map[string]any) {
		set := localstack.SetPath
		set(cfg, "clinic.example", "homeserver", "domain")
		set(cfg, "http://127.0.0.1:1", "homeserver", "address")
		set(cfg, "as-token", "appservice", "as_token")
		set(cfg, "hs-token", "appservice", "hs_token")
		set(cfg, "sqlite3-fk-wal", "database", "type")
		set(cfg, "file:careline.db?_txlock=immediate", "database", "uri")
		set(cfg, map[string]any{"clinic.example": "user"}, "bridge", "permissions")
		set(cfg, map[string]any{"min_level": "info", "writers": []any{map[string]any{"type": "stdout", "format": "json"}}}, "logging")
	})
	out, errOut, code := runCareline(t, dir, "-c", config, "-r", filepath.Join(dir, "registration.yaml"))
	if code != 11 || !strings.Contains(out, "encryption.allow, encryption.default, encryption.require must be true") {
		t.Fatalf("exit %d, log:\n%s\n%s", code, out, errOut)
	}

	editYAML(t, config, func(cfg map[string]any) {
		for _, key := range []string{"allow", "default", "require"} {
			localstack.SetPath(cfg, true, "encryption", key)
		}
		localstack.SetPath(cfg, map[string]any{"clinic.example": "user", "*": "relay"}, "bridge", "permissions")
	})
	out, errOut, code = runCareline(t, dir, "-c", config, "-r", filepath.Join(dir, "registration.yaml"))
	if code != 11 || !strings.Contains(out, `bridge.permissions gives \"*\" (everyone) the level relay`) || strings.Contains(out, "encryption.allow") {
		t.Fatalf("exit %d, log:\n%s\n%s", code, out, errOut)
	}
}

func editYAML(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err = yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	if data, err = yaml.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err = os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
