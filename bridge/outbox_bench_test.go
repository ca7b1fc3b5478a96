package bridge

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	_ "go.mau.fi/util/dbutil/litestream"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"

	"github.com/careline/careline/atrest"
	"github.com/careline/careline/config"
	"github.com/careline/careline/internal/pgtest"
	"github.com/careline/careline/internal/twiliofake"
	"github.com/careline/careline/store"
	"github.com/careline/careline/twilioapi"
)

// BenchmarkOutboxDrain measures the outbox alone: texts already written (sealed with
// AES-256-GCM) are drained by the real sender to the fake Twilio over HTTP, with the rate
// limit out of the way. Each text is read, opened, marked sending, sent and recorded.
//
//	go test -tags goolm -run '^$' -bench BenchmarkOutboxDrain -benchtime 2000x ./bridge/
func BenchmarkOutboxDrain(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchmarkOutboxDrain(b, "sqlite3-fk-wal", "file:"+filepath.Join(b.TempDir(), "bench.db")+"?_txlock=immediate")
	})
	b.Run("postgres", func(b *testing.B) {
		benchmarkOutboxDrain(b, pgtest.Driver, pgtest.NewDatabase(b, "careline_outbox_bench"))
	})
}

func benchmarkOutboxDrain(b *testing.B, dialect, uri string) {
	const (
		accountSID = "AC0123456789abcdef0123456789abcdef"
		authToken  = "0123456789abcdef0123456789abcdef"
		clinic     = "+15005550006"
		patients   = 50
	)
	ctx := context.Background()
	db, err := dbutil.NewWithDialect(uri, dialect)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	keys, err := atrest.NewKeyring("k1", map[string][]byte{"k1": bytes.Repeat([]byte{7}, atrest.KeySize)})
	if err != nil {
		b.Fatal(err)
	}
	st := store.New(db, keys, zerolog.Nop())
	if err = st.Upgrade(ctx); err != nil {
		b.Fatal(err)
	}
	fake, err := twiliofake.Start(twiliofake.Options{AccountSID: accountSID, AuthToken: authToken, Numbers: []string{clinic}})
	if err != nil {
		b.Fatal(err)
	}
	defer fake.Close()
	tw, err := twilioapi.New(fake.URL, accountSID, authToken)
	if err != nil {
		b.Fatal(err)
	}
	var cfg config.Network
	cfg.Twilio.MessagesPerSecond, cfg.Twilio.GiveUpAfter = 1e6, time.Hour
	cl := &Client{
		connector: &Connector{Store: st, Config: cfg},
		login:     &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: "bench"}, Log: zerolog.Nop()},
		meta:      &UserLoginMetadata{PhoneNumber: clinic},
		twilio:    tw,
	}
	for i := range patients {
		if _, err = st.GetOrCreatePatient(ctx, fmt.Sprintf("p%d", i), "bench", fmt.Sprintf("+1415555%04d", i)); err != nil {
			b.Fatal(err)
		}
	}
	for i := range b.N {
		o := &store.Outgoing{PatientID: fmt.Sprintf("p%d", i%patients), Kind: store.KindMessage, Body: fmt.Sprintf("bench text %d", i)}
		if err = cl.enqueue(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	cl.startSender()
	cl.wakeSender()
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	sent, err := fake.WaitForSent(waitCtx, b.N)
	elapsed := time.Since(start)
	cl.stopSender()
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if len(sent) != b.N {
		b.Fatalf("%d texts reached Twilio, want %d", len(sent), b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "texts/s")
}
