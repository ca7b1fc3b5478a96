package audit

import (
	"context"
	"testing"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbtest"
)

// BenchmarkAppendAll appends batches of 12 entries, the inbox finisher's batch at 8 concurrent
// webhooks, each in its own transaction, and reports this process's CPU per batch (the
// database server's, on PostgreSQL, is not in it) besides the time.
//
//	go test -tags goolm -run '^$' -bench BenchmarkAppendAll -benchtime 2000x ./audit/
func BenchmarkAppendAll(b *testing.B) {
	dbtest.ForEachB(b, "careline_audit_bench", func(b *testing.B, db *dbutil.Database) {
		ctx := context.Background()
		l := New(db, testKey, zerolog.Nop())
		if err := l.Upgrade(ctx); err != nil {
			b.Fatal(err)
		}
		batch := make([]Entry, 12)
		b.ReportAllocs()
		cpu0 := dbtest.ProcessCPU()
		b.ResetTimer()
		for range b.N {
			for i := range batch {
				batch[i] = Entry{Actor: "patient:p0123456789abcdefghijklmnopq", Action: "message.received", PatientID: "p0123456789abcdefghijklmnopq",
					Channel: "sms", TwilioSID: "SM0123456789abcdef0123456789abcdef", Detail: "0 attachments"}
			}
			err := db.DoTxn(ctx, nil, func(ctx context.Context) error { return l.AppendAll(ctx, batch) })
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		dbtest.ReportCPU(b, cpu0)
	})
}
