// Command demo starts a complete local careline on embedded defaults: SQLite, a local Dendrite
// homeserver, and a local SMS sink (the fake Twilio) whose web page shows every text careline
// sends and lets you text the clinic as a patient. Run it with `make demo`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/careline/careline/internal/localstack"
)

const (
	smsSinkAddr = "127.0.0.1:29390"
	publicAddr  = "127.0.0.1:29380"
	password    = "careline-demo"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	dir, err := filepath.Abs(".demo")
	if err != nil {
		return err
	}
	if err = os.RemoveAll(dir); err != nil {
		return err
	}
	if err = os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fmt.Println("Building careline and Dendrite (the first time takes a minute or two)...")
	bin := filepath.Join(dir, "careline")
	if err = localstack.BuildCareline(ctx, bin); err != nil {
		return err
	}
	startCtx, startCancel := context.WithTimeout(ctx, 5*time.Minute)
	defer startCancel()
	stack, err := localstack.Start(startCtx, localstack.Options{
		Dir: dir, CarelineBin: bin, TwilioAddr: smsSinkAddr, PublicAddr: publicAddr,
		CareTeam: []string{"@nurse:" + localstack.ServerName},
	})
	if err != nil {
		return err
	}
	defer stack.Close()
	for _, user := range []string{"admin", "nurse"} {
		if _, _, err = stack.HS.RegisterUser(startCtx, user, password); err != nil {
			return fmt.Errorf("registering %s: %w", user, err)
		}
	}
	if status, out, err := stack.Login(startCtx, localstack.AccountSID, localstack.AuthToken); err != nil || status != 200 {
		return fmt.Errorf("connecting the demo Twilio number: HTTP %d %v %v", status, out, err)
	}
	fmt.Printf(`
careline demo is running (everything on 127.0.0.1, data in %s).

  SMS sink (texts careline sends; text the clinic as a patient): http://%s/
  Matrix homeserver for any Matrix client:                       %s
      staff accounts: nurse / %s (care team), admin / %s (clinic admin)
  Patient portal and Twilio webhooks:                            %s
  Clinic number: %s

Try it: on the SMS sink page, text the clinic from +14155550123. A room "Patient ···0123"
appears for the nurse; reply there and the sink shows the secure-link text. Open its link
(the code arrives in the sink too) to read and answer as the patient.

Logs: %s. Press Ctrl-C to stop.
`, dir, smsSinkAddr, stack.HS.URL, password, password, stack.PublicURL, localstack.ClinicNumber, filepath.Join(dir, "bridge.log"))
	<-ctx.Done()
	fmt.Println("\nStopping...")
	return nil
}
