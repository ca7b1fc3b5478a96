package schedule

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/atrest"
	"github.com/careline/careline/internal/dbtest"
)

// A scheduled send moved to another patient with SQL does not open, so it is not sent to them.
func TestScheduledSendIsBoundToItsPatient(t *testing.T) {
	dbtest.ForEach(t, "careline_schedule_owner", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := New(db, dbtest.Keyring(t), zerolog.Nop())
		if err := s.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		send := &Send{LoginID: "L", PatientID: "p1", Due: time.Now().Add(time.Hour), Payload: Payload{Text: "your biopsy results"}, CreatedBy: "@nurse:x"}
		if err := s.Add(ctx, send); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, send.ID); err != nil || got.Payload.Text != "your biopsy results" {
			t.Fatalf("in its own row: %v", err)
		}
		if _, err := db.Exec(ctx, `UPDATE careline_scheduled_send SET patient_id='p2' WHERE id=$1`, send.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, send.ID); !errors.Is(err, atrest.ErrCorrupt) {
			t.Fatalf("moved to another patient: %v", err)
		}
	})
}
