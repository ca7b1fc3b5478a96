// Command careline runs the careline bridge: Twilio SMS ↔ end-to-end encrypted Matrix rooms,
// with a secure patient portal. Flags are bridgev2's (-e, -c, -g -r, --ignore-unsupported-server).
package main

import (
	"context"
	"os"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"

	"github.com/careline/careline/bridge"
	"github.com/careline/careline/config"
	"github.com/careline/careline/internal/cmem"
)

// Filled in at build time with -ldflags "-X main.Tag=... -X main.Commit=... -X main.BuildTime=...".
var (
	Tag       = "unknown"
	Commit    = "unknown"
	BuildTime = "unknown"
)

func main() {
	// careline's own subcommands run before bridgev2 parses the flags.
	if len(os.Args) > 1 && os.Args[1] == "audit" {
		os.Exit(runAudit(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "api-token" {
		os.Exit(runAPIToken(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "storage" {
		os.Exit(runStorage(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "report" {
		os.Exit(runReport(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	m := mxmain.BridgeMain{
		Name:        "careline",
		Description: "A secure texting bridge for healthcare: Twilio SMS and a patient portal, bridged to encrypted Matrix rooms",
		URL:         "https://github.com/careline/careline",
		Version:     "0.1.0",
		Connector:   &bridge.Connector{},
	}
	m.InitVersion(Tag, Commit, BuildTime)
	m.AdditionalLongFlags = " [--allow-unencrypted-rooms]\n" +
		"  careline audit verify|export …  |  api-token create|list|revoke …  |  report …  |  storage reseal …  (each with --help)"
	// bridgev2 writes the example config (-e) and loads the file; careline then checks
	// bridgev2's sections for what it needs before anything starts.
	var (
		checkpointer *walCheckpointer
		driverNotes  []string
	)
	m.PostInit = func() { checkpointer = postInit(&m, driverNotes) }
	// mxmain's Run, with the driver chosen between loading the config and opening the
	// database, and the WAL checkpointer's connection closed after the bridge's.
	m.PreInit()
	var err error
	if driverNotes, err = usePgx(&m.Config.Database.Type, &m.Config.Database.URI); err != nil {
		m.Log.WithLevel(zerolog.FatalLevel).Err(err).Msg("Configuration error")
		os.Exit(11) // mxmain's exit code for a configuration error
	}
	m.Init()
	m.Start()
	exitCode := m.WaitForInterrupt()
	m.Stop()
	checkpointer.Stop()
	os.Exit(exitCode)
}

// postInit runs after mxmain has loaded the config and opened the database, before the
// bridge starts: it applies careline's needs to bridgev2's settings, or stops with the key to
// fix. The crypto store's pickle key may come from the environment or a file, like the other
// secrets; bridgev2 opens the crypto store only after PostInit.
func postInit(m *mxmain.BridgeMain, driverNotes []string) *walCheckpointer {
	notes, err := bridgeSettings(m.Config, *allowUnencryptedRooms)
	if err != nil {
		m.Log.WithLevel(zerolog.FatalLevel).Err(err).Msg("Configuration error")
		os.Exit(11) // mxmain's exit code for a configuration error
	}
	for _, note := range append(driverNotes, notes...) {
		m.Log.Info().Str("setting", note).Msg("careline's adjustment of a bridgev2 setting")
	}
	if *allowUnencryptedRooms {
		m.Log.Warn().Msg("End-to-end encryption is off (--allow-unencrypted-rooms): for benchmarks only, never with patients")
	}
	if m.DB.Dialect == dbutil.SQLite && !cmem.KeepFreed() {
		// Only speed depends on it: SQLite then runs as with the C library's defaults.
		m.Log.Warn().Msg("Could not make the C heap keep freed memory for SQLite")
	}
	m.DB.RawDB.SetMaxOpenConns(m.Config.Database.MaxOpenConns)
	m.DB.RawDB.SetMaxIdleConns(m.Config.Database.MaxIdleConns)
	raised, err := raiseWALAutocheckpoint(context.Background(), m.DB)
	if err != nil {
		// Only speed depends on it: SQLite's default checkpoints more often, as durably.
		m.Log.Warn().Err(err).Msg("Could not raise SQLite's WAL checkpoint interval")
	}
	if key, ok, err := config.SecretFromEnv(config.PickleKeyEnv); err != nil {
		m.Log.WithLevel(zerolog.FatalLevel).Err(err).Msg("Reading the pickle key")
		os.Exit(11)
	} else if ok {
		m.Config.Encryption.PickleKey = key
	}
	return startWALCheckpointer(m.Log.With().Str("component", "wal_checkpointer").Logger(), m.DB,
		m.Config.Database.Type, m.Config.Database.URI, raised)
}
