package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/localstack"
	"github.com/careline/careline/internal/pgtest"
	"github.com/careline/careline/internal/testenv"
)

const (
	accountSID   = localstack.AccountSID
	authToken    = localstack.AuthToken
	clinicNumber = localstack.ClinicNumber
	clinicName   = localstack.ClinicName
)

var carelineBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "careline-e2e-bin-")
	if err != nil {
		panic(err)
	}
	carelineBin = filepath.Join(dir, "careline")
	if err := localstack.BuildCareline(context.Background(), carelineBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// stack is a running system plus two staff members with E2EE clients: the clinic admin who
// connects the Twilio number, and a nurse on the care team.
type stack struct {
	*localstack.Stack
	t     testing.TB
	admin *testenv.StaffClient
	nurse *testenv.StaffClient
	bot   id.UserID // the bridge bot on the stack's homeserver
	// dbDriver and dbURI reach careline's own database ("sqlite3" or pgtest.Driver), for tests
	// that look at its state from outside.
	dbDriver, dbURI string
}

type stackOptions struct {
	Postgres    bool
	DatabaseURI string // a PostgreSQL URI of the test's own server; overrides Postgres
	Network     func(network map[string]any)
	Permissions map[string]string        // added to bridge.permissions
	CareTeam    []string                 // more user localparts invited to every patient room, besides the nurse
	Federation  bool                     // the homeserver federates (named 127.0.0.1:PORT, see testenv.FederationServerName)
	Config      func(cfg map[string]any) // edits the whole config after everything else
	// StaffPlainDefault keeps network.delivery.staff_plain at its default (false). Otherwise
	// the tests' clinic lets staff send `!plain` texts, which many tests use to see bodies.
	StaffPlainDefault bool
}

func startStack(t testing.TB, opts stackOptions) *stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	serverName := localstack.ServerName
	if opts.Federation {
		var err error
		if serverName, err = testenv.FederationServerName(); err != nil {
			t.Fatal(err)
		}
	}
	network := opts.Network
	if !opts.StaffPlainDefault {
		network = func(n map[string]any) {
			if d, ok := n["delivery"].(map[string]any); ok {
				d["staff_plain"] = true
			}
			if opts.Network != nil {
				opts.Network(n)
			}
		}
	}
	lo := localstack.Options{
		Dir: t.TempDir(), CarelineBin: carelineBin, Network: network, Config: opts.Config,
		ServerName: serverName, Federation: opts.Federation,
		CareTeam: []string{"@nurse:" + serverName}, Permissions: opts.Permissions,
		// Tests check the logs at the most verbose level, where the Matrix client logs
		// request bodies; benchmarks log at debug so logging does not skew their numbers.
		LogLevel: "trace",
	}
	for _, member := range opts.CareTeam {
		lo.CareTeam = append(lo.CareTeam, "@"+member+":"+serverName)
	}
	if _, bench := t.(*testing.B); bench {
		lo.LogLevel = "debug"
	}
	if opts.DatabaseURI != "" {
		lo.DatabaseURI = opts.DatabaseURI
	} else if opts.Postgres {
		lo.DatabaseURI = pgtest.NewDatabase(t, "careline_e2e")
	}
	ls, err := localstack.Start(ctx, lo)
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{Stack: ls, t: t, dbDriver: pgtest.Driver, dbURI: lo.DatabaseURI, bot: id.NewUserID("carelinebot", serverName)}
	if lo.DatabaseURI == "" {
		s.dbDriver, s.dbURI = "sqlite3", "file:"+filepath.Join(ls.Dir, "careline.db")+"?mode=ro&_busy_timeout=5000"
	}
	t.Cleanup(func() {
		ls.Close()
		if t.Failed() {
			s.dumpLogs()
		}
	})
	if s.admin, err = ls.HS.NewStaffClient(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	if s.nurse, err = ls.HS.NewStaffClient(ctx, "nurse"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.admin.Close)
	t.Cleanup(s.nurse.Close)
	s.admin.AutoJoinInvites()
	s.nurse.AutoJoinInvites()
	return s
}

func (s *stack) dumpLogs() {
	log := s.BridgeLog()
	if len(log) > 20000 {
		log = log[len(log)-20000:]
	}
	s.t.Logf("---- careline log (tail) ----\n%s", log)
}

func (s *stack) provisionJSON(ctx context.Context, method, path string, body any, wantStatus int) map[string]any {
	s.t.Helper()
	status, out, err := s.Provision(ctx, method, path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if status != wantStatus {
		s.t.Fatalf("%s %s: HTTP %d, want %d: %v", method, path, status, wantStatus, out)
	}
	return out
}

// login connects the clinic number and fails the test if it does not work.
func (s *stack) mustLogin(ctx context.Context) {
	s.t.Helper()
	status, out, err := s.Login(ctx, accountSID, authToken)
	if err != nil || status != http.StatusOK || out["type"] != "complete" {
		s.t.Fatalf("login: HTTP %d %v %v", status, out, err)
	}
}

func (s *stack) createDM(ctx context.Context, number string) id.RoomID {
	s.t.Helper()
	roomID, err := s.CreateDM(ctx, number)
	if err != nil {
		s.t.Fatal(err)
	}
	return roomID
}

func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
