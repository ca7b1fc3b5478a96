package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream"
	"gopkg.in/yaml.v3"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/config"
)

const auditUsage = `Usage:
  careline audit verify [-c config.yaml]
      Check that no audit entry was edited, deleted or reordered.
      Exits 0 if the trail is intact, 1 if it is not, 2 if it could not be checked.

  careline audit export [-c config.yaml] [--since DATE] [--until DATE] [--format jsonl|csv] [-o FILE]
      Write the audit entries to FILE (default: standard output), oldest first.
      DATE is YYYY-MM-DD (UTC; --until includes that whole day) or an RFC 3339 time.
      The export itself is recorded in the trail.

The database and the audit key come from the bridge's config file. A relative SQLite path is
relative to the current directory, as for the bridge.
`

// runAudit runs `careline audit …` with the arguments after "audit" and returns the exit code.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, auditUsage)
		return 0
	}
	var err error
	var intact bool
	switch args[0] {
	case "verify":
		intact, err = auditVerify(ctx, args[1:], stdout)
	case "export":
		intact, err = true, auditExport(ctx, args[1:], stdout, stderr)
	default:
		err = fmt.Errorf("unknown audit command %q\n\n%s", args[0], auditUsage)
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, auditUsage)
		return 0
	case err != nil:
		fmt.Fprintln(stderr, "careline audit:", err)
		return 2
	case !intact:
		return 1
	}
	return 0
}

// auditFlags parses a subcommand's flags; -c/--config is common to all.
func auditFlags(name string, args []string, define func(fs *flag.FlagSet)) (string, error) {
	fs := flag.NewFlagSet("careline audit "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by runAudit, with the usage
	config := "config.yaml"
	fs.StringVar(&config, "c", config, "")
	fs.StringVar(&config, "config", config, "")
	if define != nil {
		define(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		return "", fmt.Errorf("%w\n\n%s", err, auditUsage)
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("unexpected argument %q\n\n%s", fs.Arg(0), auditUsage)
	}
	return config, nil
}

func auditVerify(ctx context.Context, args []string, stdout io.Writer) (bool, error) {
	path, err := auditFlags("verify", args, nil)
	if err != nil {
		return false, err
	}
	l, closeDB, err := openAudit(ctx, path)
	if err != nil {
		return false, err
	}
	defer closeDB()
	r, err := l.Verify(ctx)
	if err != nil {
		return false, err
	}
	if r.Intact() {
		if r.Entries == 0 {
			fmt.Fprintln(stdout, "audit trail intact: 0 entries")
		} else {
			fmt.Fprintf(stdout, "audit trail intact: %d entries (seq %d–%d)\n", r.Entries, r.FirstSeq, r.LastSeq)
		}
		if len(r.HeadHash) > 0 {
			// Kept elsewhere, this lets a later run notice a trail cut back to an earlier entry.
			fmt.Fprintf(stdout, "newest entry hash: %s\n", hex.EncodeToString(r.HeadHash))
		}
		return true, nil
	}
	fmt.Fprintf(stdout, "audit trail NOT intact: %d entries checked (seq %d–%d), %d problems:\n", r.Entries, r.FirstSeq, r.LastSeq, len(r.Problems))
	for _, p := range r.Problems {
		fmt.Fprintln(stdout, "  "+p.What)
	}
	return false, nil
}

func auditExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var sinceArg, untilArg, format, out string
	path, err := auditFlags("export", args, func(fs *flag.FlagSet) {
		fs.StringVar(&sinceArg, "since", "", "")
		fs.StringVar(&untilArg, "until", "", "")
		fs.StringVar(&format, "format", "jsonl", "")
		fs.StringVar(&out, "o", "", "")
	})
	if err != nil {
		return err
	}
	since, until, err := audit.ParseRange(sinceArg, untilArg)
	if err != nil {
		return err
	}
	if err = audit.CheckFormat(format); err != nil {
		return err
	}
	l, closeDB, err := openAudit(ctx, path)
	if err != nil {
		return err
	}
	defer closeDB()

	w, file := stdout, (*os.File)(nil)
	if out != "" {
		// The export names patients and who acted on them: readable by its owner only.
		if file, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
			return err
		}
		w = file
	}
	n, err := l.Export(ctx, w, since, until, format)
	if file != nil {
		err = errors.Join(err, file.Close()) // a failed write may only show on Close
	}
	// Record the export even when it failed part way: some entries may have left already.
	detail := audit.ExportDetail(format, since, until, n, err == nil)
	if _, aerr := l.Append(ctx, audit.Entry{Actor: cliActor(), Action: "audit.exported", Detail: detail}); aerr != nil {
		return errors.Join(err, fmt.Errorf("recording the export: %w", aerr))
	}
	if err != nil {
		return err
	}
	if out != "" {
		fmt.Fprintf(stderr, "wrote %d entries to %s\n", n, out)
	}
	return nil
}

// cliActor names who ran a careline subcommand in the audit trail: the operating-system
// account, since the command line has no Matrix identity.
func cliActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

// auditConfig is the part of the bridge's config the audit commands need.
type auditConfig struct {
	Database struct {
		Type string `yaml:"type"`
		URI  string `yaml:"uri"`
	} `yaml:"database"`
	Network struct {
		Privacy struct {
			IdentityKey string `yaml:"identity_key"`
		} `yaml:"privacy"`
		Retention struct {
			Audit time.Duration `yaml:"audit"`
		} `yaml:"retention"`
	} `yaml:"network"`
}

// openAudit opens the audit trail of the bridge configured in path.
func openAudit(ctx context.Context, path string) (*audit.Log, func(), error) {
	cfg, db, err := openBridgeDatabase(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	closeDB := func() { _ = db.Close() }
	l := audit.New(db, audit.KeyFromSecret(cfg.Network.Privacy.IdentityKey), zerolog.Nop())
	if cfg.Network.Retention.Audit > 0 {
		l.SetRetention(cfg.Network.Retention.Audit)
	}
	// Brings the tables to this version's schema; refuses a database from a newer careline.
	if err = l.Upgrade(ctx); err != nil {
		closeDB()
		return nil, nil, err
	}
	return l, closeDB, nil
}

// openBridgeDatabase opens the existing database of the bridge configured in path, for the
// command-line tools; it must hold careline's audit trail (careline ran on it).
func openBridgeDatabase(ctx context.Context, path string) (*auditConfig, *dbutil.Database, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("config file %s not found: pass the bridge's config with -c", path)
	} else if err != nil {
		return nil, nil, err
	}
	var cfg auditConfig
	if err = yaml.Unmarshal(data, &cfg); err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if cfg.Database.Type == "" || cfg.Database.URI == "" {
		return nil, nil, fmt.Errorf("%s has no database.type or database.uri", path)
	}
	secret := cfg.Network.Privacy.IdentityKey
	if key, ok, err := config.SecretFromEnv(config.IdentityKeyEnv); err != nil {
		return nil, nil, err
	} else if ok {
		secret = key
	}
	if len(secret) < 32 || secret == "generate" {
		return nil, nil, fmt.Errorf("%s: network.privacy.identity_key is not set; the audit and token keys are derived from it", path)
	}
	uri := cfg.Database.URI
	if strings.HasPrefix(uri, "file:") && !strings.Contains(uri, "mode=") {
		// Open an existing database only: a wrong path must not leave an empty one behind.
		if strings.Contains(uri, "?") {
			uri += "&mode=rw"
		} else {
			uri += "?mode=rw"
		}
	}
	typ := cfg.Database.Type
	if _, err := usePgx(&typ, &uri); err != nil { // the bridge's own driver
		return nil, nil, err
	}
	db, err := dbutil.NewWithDialect(uri, typ)
	if err != nil {
		return nil, nil, fmt.Errorf("database.type %q: %w", cfg.Database.Type, err)
	}
	// The URI is not repeated in errors: it may hold a password.
	if err = db.RawDB.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, nil, fmt.Errorf("cannot open the database configured in %s: %w", path, err)
	}
	if ok, err := db.TableExists(ctx, "careline_audit_head"); err != nil || !ok {
		_ = db.Close()
		return nil, nil, errors.Join(err, fmt.Errorf("the database configured in %s has no audit trail: has careline run on it?", path))
	}
	return &cfg, db, nil
}
