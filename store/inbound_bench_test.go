package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbtest"
)

// BenchmarkSaveInbound stores SMS webhooks of 50 known patients from 8 goroutines at once, as
// careline-load's 8 concurrent webhooks do, and reports this process's CPU per message (the
// database server's, on PostgreSQL, is not in it) besides the time.
//
//	go test -tags goolm -run '^$' -bench BenchmarkSaveInbound -benchtime 4000x ./store/
func BenchmarkSaveInbound(b *testing.B) {
	dbtest.ForEachB(b, "careline_store_bench", func(b *testing.B, db *dbutil.Database) {
		ctx := context.Background()
		s := New(db, dbtest.Keyring(b), zerolog.Nop())
		if err := s.Upgrade(ctx); err != nil {
			b.Fatal(err)
		}
		const patients = 50
		for i := range patients {
			if _, err := s.GetOrCreatePatient(ctx, fmt.Sprintf("p%02d", i), "L", fmt.Sprintf("+1415555%04d", i)); err != nil {
				b.Fatal(err)
			}
		}
		var seq atomic.Int64
		b.SetParallelism(8)
		b.ReportAllocs()
		cpu0 := dbtest.ProcessCPU()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := seq.Add(1)
				i := n % patients
				in := &Inbound{MessageID: fmt.Sprintf("SM%032d", n), LoginID: "L", PatientID: fmt.Sprintf("p%02d", i),
					Channel: ChannelSMS, From: fmt.Sprintf("+1415555%04d", i), Body: "my knee still hurts after the appointment"}
				if _, isNew, err := s.SaveInbound(ctx, in); err != nil || !isNew {
					b.Error(isNew, err)
					return
				}
			}
		})
		b.StopTimer()
		dbtest.ReportCPU(b, cpu0)
	})
}
