package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/careline/careline/apitoken"
	"github.com/careline/careline/audit"
)

const apiTokenUsage = `Usage:
  careline api-token create NAME [-c config.yaml]
      Make a token for an integration (an EHR, a scheduling system) called NAME and print it.
      It is shown once: careline keeps only a keyed hash of it. Calls made with it are
      audited under "api:NAME".

  careline api-token list [-c config.yaml]
      The tokens, when they were made and last used, and whether they are revoked.

  careline api-token revoke NAME [-c config.yaml]
      End a token at once. Its name can then be given to a new token.

NAME: 1 to 64 letters, digits, '.', '_' or '-'. The database and the hashing key come from the
bridge's config file (careline must have run on that database once).
`

// runAPIToken runs `careline api-token …` and returns the exit code.
func runAPIToken(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, apiTokenUsage)
		return 0
	}
	command := args[0]
	configPath, positional, err := apiTokenArgs(args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, apiTokenUsage)
		return 0
	}
	wantArgs := map[string]int{"create": 1, "list": 0, "revoke": 1}
	n, known := wantArgs[command]
	switch {
	case err != nil:
	case !known:
		err = fmt.Errorf("unknown api-token command %q", command)
	case len(positional) != n:
		err = fmt.Errorf("api-token %s takes %d argument(s), got %d", command, n, len(positional))
	case n == 1:
		err = apitoken.CheckName(positional[0])
	}
	if err != nil {
		fmt.Fprintf(stderr, "careline api-token: %v\n\n%s", err, apiTokenUsage)
		return 2
	}
	if err = apiToken(ctx, configPath, command, positional, stdout); err != nil {
		fmt.Fprintln(stderr, "careline api-token:", err)
		return 1
	}
	return 0
}

// apiTokenArgs takes -c/--config from anywhere among the arguments.
func apiTokenArgs(args []string) (string, []string, error) {
	config := "config.yaml"
	var positional []string
	for len(args) > 0 {
		fs := flag.NewFlagSet("careline api-token", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.StringVar(&config, "c", config, "")
		fs.StringVar(&config, "config", config, "")
		if err := fs.Parse(args); err != nil {
			return "", nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return config, positional, nil
}

func apiToken(ctx context.Context, configPath, command string, args []string, stdout io.Writer) error {
	cfg, db, err := openBridgeDatabase(ctx, configPath)
	if err != nil {
		return err
	}
	defer db.Close()
	tokens := apitoken.New(db, apitoken.KeyFromSecret(cfg.Network.Privacy.IdentityKey), zerolog.Nop())
	if err = tokens.Upgrade(ctx); err != nil {
		return err
	}
	trail := audit.New(db, audit.KeyFromSecret(cfg.Network.Privacy.IdentityKey), zerolog.Nop())
	if err = trail.Upgrade(ctx); err != nil {
		return err
	}
	record := func(action, name string) error {
		_, err := trail.Append(ctx, audit.Entry{Actor: cliActor(), Action: action, Detail: "token " + name})
		return err
	}
	switch command {
	case "create":
		tok, err := tokens.Create(ctx, args[0], cliActor())
		if errors.Is(err, apitoken.ErrExists) {
			return fmt.Errorf("a token called %q exists; revoke it first or choose another name", args[0])
		} else if err != nil {
			return err
		}
		if err = record("api_token.created", args[0]); err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
		fmt.Fprintf(os.Stderr, "Token %q created. Copy it now: careline cannot show it again.\n", args[0])
	case "revoke":
		if err := tokens.Revoke(ctx, args[0]); errors.Is(err, apitoken.ErrNotFound) {
			return fmt.Errorf("there is no active token called %q (see careline api-token list)", args[0])
		} else if err != nil {
			return err
		}
		if err = record("api_token.revoked", args[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Token %q revoked.\n", args[0])
	case "list":
		list, err := tokens.List(ctx)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			fmt.Fprintln(stdout, "No API tokens. Create one with: careline api-token create NAME")
			return nil
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tCREATED\tBY\tLAST USED\tSTATE")
		for _, t := range list {
			state := "active"
			if !t.RevokedAt.IsZero() {
				state = "revoked " + t.RevokedAt.UTC().Format(time.DateTime)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.CreatedAt.UTC().Format(time.DateTime), t.CreatedBy, formatUsed(t.LastUsedAt), state)
		}
		return w.Flush()
	}
	return nil
}

func formatUsed(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.DateTime)
}
