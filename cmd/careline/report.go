package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/careline/careline/store"
	"github.com/careline/careline/teaminbox"
)

const reportUsage = `Usage:
  careline report [--since YYYY-MM-DD] [--until YYYY-MM-DD] [-c config.yaml]
      The team inbox's numbers for a period (both days included, in network.timezone;
      default: the last 30 days): messages in and out, first-response time (median, p90)
      overall and per staff member, conversations unanswered now, failed deliveries and
      opt-outs. Counted from careline's records; no message content is read.
`

// runReport runs `careline report …` and returns the exit code.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	configPath := "config.yaml"
	var period []string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-h", "--help", "help":
			fmt.Fprint(stdout, reportUsage)
			return 0
		case "-c", "--config":
			if i+1 == len(args) {
				fmt.Fprintf(stderr, "careline report: %s needs the config file\n\n%s", args[i], reportUsage)
				return 2
			}
			i++
			configPath = args[i]
		default:
			period = append(period, args[i])
		}
	}
	if err := report(ctx, configPath, period, stdout); err != nil {
		fmt.Fprintln(stderr, "careline report:", err)
		return 1
	}
	return 0
}

func report(ctx context.Context, configPath string, period []string, out io.Writer) error {
	raw, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	var zone struct {
		Network struct {
			Timezone string `yaml:"timezone"`
		} `yaml:"network"`
	}
	if err = yaml.Unmarshal(raw, &zone); err != nil {
		return fmt.Errorf("reading %s: %w", configPath, err)
	}
	loc, err := time.LoadLocation(zone.Network.Timezone)
	if err != nil || zone.Network.Timezone == "" {
		return fmt.Errorf("%s: network.timezone %q is not a time zone name like America/New_York", configPath, zone.Network.Timezone)
	}
	since, until, err := teaminbox.ParsePeriod(period, loc, time.Now())
	if err != nil {
		return err
	}
	_, db, err := openBridgeDatabase(ctx, configPath)
	if err != nil {
		return err
	}
	defer db.Close()
	// Counting reads no sealed column, so no keyring is needed; nothing is upgraded.
	traffic, err := store.New(db, nil, zerolog.Nop()).Traffic(ctx, since, until)
	if err != nil {
		return fmt.Errorf("counting messages: %w", err)
	}
	r, err := teaminbox.New(db, zerolog.Nop()).Report(ctx, since, until, traffic)
	if err != nil {
		return fmt.Errorf("reading the team inbox (has this careline version run on the database?): %w", err)
	}
	_, err = fmt.Fprintln(out, r.Text())
	return err
}
