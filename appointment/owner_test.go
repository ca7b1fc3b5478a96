package appointment

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

// An appointment moved to another patient with SQL does not open, so it reminds nobody else.
func TestAppointmentIsBoundToItsPatient(t *testing.T) {
	dbtest.ForEach(t, "careline_appointment_owner", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := New(db, dbtest.Keyring(t), zerolog.Nop())
		if err := s.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		a := &Appointment{ID: "ap1", PatientID: "p1", Status: "booked", Start: time.Now().Add(72 * time.Hour), Resource: []byte(`{"resourceType":"Appointment"}`)}
		if _, err := s.Put(ctx, a, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "ap1"); err != nil {
			t.Fatalf("in its own row: %v", err)
		}
		if _, err := db.Exec(ctx, `UPDATE careline_appointment SET patient_id='p2' WHERE id='ap1'`); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "ap1"); !errors.Is(err, atrest.ErrCorrupt) {
			t.Fatalf("moved to another patient: %v", err)
		}
	})
}
