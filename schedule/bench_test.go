package schedule

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbtest"
)

// BenchmarkRunDue: how many due sends a round hands over per second, each in its own
// transaction with a one-row delivery (the outbox insert stands in).
func BenchmarkRunDue(b *testing.B) {
	dbtest.ForEachB(b, "schedule_bench", func(b *testing.B, db *dbutil.Database) {
		ctx := context.Background()
		s := newStore(b, db)
		for i := 0; i < b.N; i++ {
			if err := s.Add(ctx, &Send{LoginID: "l", PatientID: "p", Due: time.Now(), CreatedBy: "@a:x", Payload: Payload{Text: "hello"}}); err != nil {
				b.Fatal(err)
			}
		}
		r := &Runner{Store: s, Deliver: func(ctx context.Context, send *Send) (Outcome, error) {
			_, err := db.Exec(ctx, `INSERT INTO sent_text (scheduled_id, body) VALUES ($1, $2)`, send.ID, send.Payload.Text)
			return Outcome{State: Sent}, err
		}}
		b.ResetTimer()
		if err := r.RunDue(ctx, time.Now()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if n := sentTotal(b, db); n != b.N {
			b.Fatalf("%d sent of %d", n, b.N)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
	})
}

func sentTotal(tb testing.TB, db *dbutil.Database) int {
	var n int
	if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM sent_text`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}
