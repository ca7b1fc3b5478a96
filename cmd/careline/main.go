// Command careline runs the careline bridge: Twilio SMS ↔ end-to-end encrypted Matrix rooms,
// with a secure patient portal. Flags are bridgev2's (-e, -c, -g -r, --ignore-unsupported-server).
package main

import (
	"context"
	"fmt"
	"os"

	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"

	"github.com/careline/careline/bridge"
	"github.com/careline/careline/config"
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
	if len(os.Args) > 1 && os.Args[1] == "report" {
		os.Exit(runReport(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	if path, ok := exampleConfigPath(os.Args[1:]); ok {
		if err := writeExampleConfig(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	m := mxmain.BridgeMain{
		Name:        "careline",
		Description: "A secure texting bridge for healthcare: Twilio SMS and a patient portal, bridged to encrypted Matrix rooms",
		URL:         "https://github.com/careline/careline",
		Version:     "0.1.0",
		Connector:   &bridge.Connector{},
	}
	m.InitVersion(Tag, Commit, BuildTime)
	// The crypto store's pickle key may come from the environment or a file, like the other
	// secrets; bridgev2 opens the crypto store only after PostInit.
	m.PostInit = func() {
		if key, ok, err := config.SecretFromEnv(config.PickleKeyEnv); err != nil {
			m.Log.Fatal().Err(err).Msg("Reading the pickle key")
		} else if ok {
			m.Config.Encryption.PickleKey = key
		}
	}
	m.Run()
}
