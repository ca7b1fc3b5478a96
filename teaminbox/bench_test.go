package teaminbox

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbtest"
)

// BenchmarkPatientsWrote records batches of 12 messages of 12 of 50 patients who already
// wait for a reply, each batch in its own transaction, as the inbox finisher does at 8
// concurrent webhooks, and reports this process's CPU per batch (the database server's, on
// PostgreSQL, is not in it) besides the time.
//
//	go test -tags goolm -run '^$' -bench BenchmarkPatientsWrote -benchtime 2000x ./teaminbox/
func BenchmarkPatientsWrote(b *testing.B) {
	dbtest.ForEachB(b, "careline_teaminbox_bench", func(b *testing.B, db *dbutil.Database) {
		ctx := context.Background()
		s := New(db, zerolog.Nop())
		if err := s.Upgrade(ctx); err != nil {
			b.Fatal(err)
		}
		const patients, batch = 50, 12
		patient := func(i int) string { return fmt.Sprintf("p%027d", i%patients) }
		room := func(i int) string { return fmt.Sprintf("!room%018d:careline.example", i%patients) }
		at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		for i := range patients {
			if _, _, err := s.PatientWrote(ctx, patient(i), room(i), at); err != nil {
				b.Fatal(err)
			}
		}
		msgs := make([]Message, batch)
		b.ReportAllocs()
		cpu0 := dbtest.ProcessCPU()
		b.ResetTimer()
		for n := range b.N {
			at = at.Add(time.Millisecond)
			for i := range msgs {
				k := n*batch + i
				msgs[i] = Message{PatientID: patient(k), RoomID: room(k), At: at}
			}
			err := db.DoTxn(ctx, nil, func(ctx context.Context) error {
				_, err := s.PatientsWrote(ctx, msgs)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		dbtest.ReportCPU(b, cpu0)
	})
}
