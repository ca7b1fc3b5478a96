package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/careline/careline/appointment"
	"github.com/careline/careline/audit"
	"github.com/careline/careline/bridge"
	"github.com/careline/careline/broadcast"
	"github.com/careline/careline/config"
	"github.com/careline/careline/names"
	"github.com/careline/careline/reseal"
	"github.com/careline/careline/schedule"
	"github.com/careline/careline/store"
)

const storageUsage = `Usage:
  careline storage reseal [-c config.yaml] [--batch N]
      Re-seal every stored value (numbers, dates of birth, names, message bodies, files,
      texts waiting to go, scheduled sends, broadcasts, appointments, the Twilio auth token)
      under the active storage key (network.storage.key_id), N rows per transaction
      (default 500). Values already under the active key are left as they are, so the
      command can be stopped and run again; careline may keep running meanwhile. When it
      reports that nothing is left under an old key, remove that key from
      network.storage.old_keys. Exits 0 when every value is under the active key, 1 when
      some value could not be opened, 2 on any other error. The run is recorded in the
      audit trail.
`

// sealedColumns lists every sealed value careline stores. TestEverySealedColumnIsListed fails
// when a table gains a *_sealed column that is not here.
func sealedColumns() []reseal.Column {
	return slices.Concat(store.SealedColumns(), names.SealedColumns(), schedule.SealedColumns(),
		broadcast.SealedColumns(), appointment.SealedColumns(), bridge.SealedColumns())
}

// runStorage runs `careline storage …` and returns the exit code.
func runStorage(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "reseal" {
		if len(args) > 0 && args[0] != "-h" && args[0] != "--help" && args[0] != "help" {
			fmt.Fprintf(stderr, "careline storage: unknown command %q\n\n", args[0])
			fmt.Fprint(stderr, storageUsage)
			return 2
		}
		fmt.Fprint(stdout, storageUsage)
		return 0
	}
	fs := flag.NewFlagSet("careline storage reseal", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath, batch := "config.yaml", 500
	fs.StringVar(&configPath, "c", configPath, "")
	fs.StringVar(&configPath, "config", configPath, "")
	fs.IntVar(&batch, "batch", batch, "")
	if err := fs.Parse(args[1:]); errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, storageUsage)
		return 0
	} else if err != nil || fs.NArg() > 0 || batch < 1 {
		fmt.Fprintf(stderr, "careline storage reseal: %v\n\n%s", errors.Join(err, argError(fs, batch)), storageUsage)
		return 2
	}
	complete, err := resealStorage(ctx, configPath, batch, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "careline storage reseal:", err)
		return 2
	}
	if !complete {
		return 1
	}
	return 0
}

func argError(fs *flag.FlagSet, batch int) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if batch < 1 {
		return fmt.Errorf("--batch must be at least 1, not %d", batch)
	}
	return nil
}

// resealStorage re-seals the database of the bridge configured in path and prints a summary;
// complete is true when every value is under the active key afterwards.
func resealStorage(ctx context.Context, path string, batch int, out io.Writer) (complete bool, err error) {
	cfg, db, err := openBridgeDatabase(ctx, path)
	if err != nil {
		return false, err
	}
	defer db.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	var storage struct {
		Network config.Network `yaml:"network"`
	}
	if err = yaml.Unmarshal(raw, &storage); err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	kr, err := storage.Network.Keyring()
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	trail := audit.New(db, audit.KeyFromSecret(cfg.Network.Privacy.IdentityKey), zerolog.Nop())
	if err = trail.Upgrade(ctx); err != nil {
		return false, err
	}

	var columns []reseal.Column
	for _, col := range sealedColumns() {
		// A table careline has not created yet (a feature this database never used in an
		// older version) holds nothing to re-seal.
		if ok, err := db.TableExists(ctx, col.Table); err != nil {
			return false, err
		} else if ok {
			columns = append(columns, col)
		}
	}
	active := kr.ActiveKeyID()
	fmt.Fprintf(out, "Re-sealing every stored value under the active storage key %q, %d rows per transaction.\n", active, batch)
	res, runErr := reseal.Run(ctx, db, kr, columns, batch, nil)
	for _, c := range res.Columns {
		fmt.Fprintf(out, "  %-52s %s\n", c.Name, columnLine(c))
	}
	total := res.Totals()
	summary := fmt.Sprintf("active=%s resealed=%d current=%d changed_meanwhile=%d unreadable=%d before=%s",
		active, total.Resealed, total.Current, total.Changed, total.Unreadable, keyCounts(total.Before))
	if !errors.Is(runErr, context.Canceled) {
		action := "storage.resealed"
		if runErr != nil {
			action = "storage.reseal_failed"
		}
		if _, aerr := trail.Append(ctx, audit.Entry{Actor: cliActor(), Action: action, Detail: summary}); aerr != nil {
			runErr = errors.Join(runErr, fmt.Errorf("recording the run in the audit trail: %w", aerr))
		}
	}
	if runErr != nil {
		return false, fmt.Errorf("stopped (run the command again to continue; nothing is lost): %w", runErr)
	}
	fmt.Fprintf(out, "Done: %d re-sealed, %d already under %q, %d rewritten by careline meanwhile, %d unreadable.\n",
		total.Resealed, total.Current, active, total.Changed, total.Unreadable)
	if total.Unreadable > 0 {
		fmt.Fprintln(out, "These values open with no configured key (wrong key in the config, or damaged):")
		for _, u := range res.Unreadable {
			fmt.Fprintf(out, "  %s %s: %v\n", u.Column, strings.Join(u.Key, "/"), u.Err)
		}
		fmt.Fprintln(out, "Keep every old key in network.storage.old_keys until they are resolved.")
		return false, nil
	}
	var old []string
	for _, id := range slices.Sorted(maps.Keys(storage.Network.Storage.OldKeys)) {
		if id != active {
			old = append(old, id)
		}
	}
	switch {
	case total.Changed > 0:
		fmt.Fprintln(out, "Some values were rewritten while this ran: run the command again to check them.")
		return false, nil
	case len(old) == 0:
		fmt.Fprintf(out, "Every stored value is under %q; no old keys are configured.\n", active)
	default:
		fmt.Fprintf(out, "Every stored value is under %q. You can remove %s from network.storage.old_keys once careline has been restarted and this command, run again, still re-seals nothing.\n", active, strings.Join(old, ", "))
	}
	return true, nil
}

func columnLine(c reseal.ColumnResult) string {
	line := fmt.Sprintf("%d re-sealed, %d already current", c.Resealed, c.Current)
	if c.Changed > 0 {
		line += fmt.Sprintf(", %d rewritten meanwhile", c.Changed)
	}
	if c.Unreadable > 0 {
		line += fmt.Sprintf(", %d UNREADABLE", c.Unreadable)
	}
	return line
}

func keyCounts(before map[string]int) string {
	if len(before) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(before))
	for _, id := range slices.Sorted(maps.Keys(before)) {
		parts = append(parts, fmt.Sprintf("%s:%d", id, before[id]))
	}
	return strings.Join(parts, ",")
}
