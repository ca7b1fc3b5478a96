package loadtest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/careline/careline/internal/localstack"
	"github.com/careline/careline/internal/pgtest"
)

// The harness against the real careline binary. Only counts are checked, never speed.
func TestAgainstCareline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs careline")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "careline")
	if err := localstack.BuildCareline(ctx, bin); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run("load/"+db, func(t *testing.T) { testLoad(ctx, t, bin, db) })
	}
	t.Run("memory", func(t *testing.T) { testMemory(ctx, t, bin) })
}

// Every webhook the harness sends is acknowledged and reaches the stub homeserver as a
// message, closed and open loop, and the process figures are read.
func testLoad(ctx context.Context, t *testing.T, bin, db string) {
	rec := &Recorder{}
	opts := BridgeOptions{Kind: Careline, Bin: bin, Dir: t.TempDir(), OnMessage: rec.OnMessage}
	if db == "postgres" {
		opts.DatabaseURI = pgtest.NewDatabase(t, "careline_loadtest")
	}
	b, err := StartBridge(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err = Warm(ctx, b, rec, 0, 5, 2); err != nil {
		t.Fatal(err)
	}
	for _, load := range []Load{
		{Messages: 40, Patients: 5, Concurrency: 4},
		{Messages: 20, Patients: 5, Concurrency: 8, Rate: 100},
	} {
		res, err := Run(ctx, b, rec, load)
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors != 0 || res.Acked != load.Messages || res.Arrived != load.Messages {
			t.Fatalf("%+v: %d errors (%s), %d acknowledged, %d arrived; want all %d", load, res.Errors, res.FirstError, res.Acked, res.Arrived, load.Messages)
		}
		if res.RSS <= 0 || res.LoadToolCPU <= 0 || res.E2EP99 < res.E2EP50 || res.AckP99 < res.AckP50 {
			t.Fatalf("implausible figures: %+v", res)
		}
		if db == "postgres" && res.PostgresCommits <= 0 {
			t.Fatalf("no PostgreSQL commits counted: %+v", res)
		}
	}
}

// The memory measurement seeds the database, restarts careline and serves a thread page to
// every active session.
func testMemory(ctx context.Context, t *testing.T, bin string) {
	rec := &Recorder{}
	b, err := StartBridge(ctx, BridgeOptions{Kind: Careline, Bin: bin, Dir: t.TempDir(), OnMessage: rec.OnMessage})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	res, err := MeasureMemory(ctx, b, rec, 300, 10)
	if err != nil {
		t.Fatal(err)
	}
	if res.ThreadPages != 10 || res.IdleRSS <= 0 || res.ActiveRSS <= 0 {
		t.Fatalf("%+v", res)
	}
	db, _, err := b.openDB()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, table := range []string{"careline_patient", "portal", "ghost"} {
		var n int
		if err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 300 {
			t.Errorf("%s has %d rows, want 300 (290 dormant + 10 active)", table, n)
		}
	}
}
