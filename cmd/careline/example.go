package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"

	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"

	"github.com/careline/careline/bridge"
	"github.com/careline/careline/config"
)

// exampleConfig is the full example config (careline's network section and bridgev2's sections
// with careline's defaults). mxmain renders its base template before main runs, so careline
// renders the example itself for -e, the same way.
func exampleConfig() (string, error) {
	var buf strings.Builder
	buf.WriteString("# Network-specific config options\nnetwork:\n")
	for _, line := range strings.Split(config.ExampleConfig, "\n") {
		buf.WriteString("    " + line + "\n")
	}
	buf.WriteString("\n")
	tmpl, err := template.New("example-config.yaml").Delims("$<<", ">>").Parse(mxmain.MatrixExampleConfigBase)
	if err != nil {
		return "", err
	}
	err = tmpl.Execute(&buf, (&bridge.Connector{}).GetName())
	return buf.String(), err
}

// exampleConfigPath reports whether -e was given, and the -c path.
func exampleConfigPath(args []string) (string, bool) {
	path, wanted := "config.yaml", false
	for i := 0; i < len(args); i++ {
		switch arg := args[i]; {
		case arg == "-e" || arg == "--generate-example-config":
			wanted = true
		case (arg == "-c" || arg == "--config") && i+1 < len(args):
			path = args[i+1]
			i++
		case strings.HasPrefix(arg, "--config="):
			path = strings.TrimPrefix(arg, "--config=")
		}
	}
	return path, wanted
}

func writeExampleConfig(path string) error {
	cfg, err := exampleConfig()
	if err != nil {
		return err
	}
	if path == "-" {
		fmt.Print(cfg)
		return nil
	}
	if _, err = os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s already exists, please remove it if you want to generate a new example", path)
	}
	if err = os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	fmt.Println("Wrote example config to", path)
	return nil
}
