package names

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbtest"
)

func TestNamesSealedNewestWinsAndSearch(t *testing.T) {
	dbtest.ForEach(t, "names", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := New(db, dbtest.Keyring(t), zerolog.Nop())
		if err := s.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
		set := func(n Name) bool {
			t.Helper()
			ok, err := s.Set(ctx, &n)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !set(Name{PatientID: "p1", LoginID: "l1", First: "Ana", Last: "Lopez", Source: SourceStaff, RecordedBy: "@n:x", RecordedAt: t0}) {
			t.Fatal("first record not written")
		}
		// An older record from an integration does not overwrite a newer one from staff.
		if set(Name{PatientID: "p1", LoginID: "l1", First: "Anna", Source: SourceFHIR, RecordedBy: "ehr", RecordedAt: t0.Add(-time.Hour)}) {
			t.Error("older record won")
		}
		if !set(Name{PatientID: "p1", LoginID: "l1", First: "Ana María", Last: "López", Source: SourceFHIR, RecordedBy: "ehr", RecordedAt: t0.Add(time.Hour)}) {
			t.Error("newer record lost")
		}
		set(Name{PatientID: "p2", LoginID: "l1", First: "Bob", Source: SourceStaff, RecordedBy: "@n:x", RecordedAt: t0})
		set(Name{PatientID: "p3", LoginID: "l2", First: "Ana", Last: "Other", Source: SourceStaff, RecordedBy: "@n:x", RecordedAt: t0})
		n, err := s.Get(ctx, "p1")
		if err != nil || n.Full() != "Ana María López" || n.Source != SourceFHIR {
			t.Errorf("%+v %v", n, err)
		}
		if n, _ := s.Get(ctx, "p2"); n == nil || n.Last != "" {
			t.Errorf("no last name: %+v", n)
		}
		if n, _ := s.Get(ctx, "nobody"); n != nil {
			t.Errorf("%+v", n)
		}
		rows, err := db.Query(ctx, `SELECT first_sealed, COALESCE(last_sealed, '') FROM careline_patient_name`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var first, last []byte
			_ = rows.Scan(&first, &last)
			if bytes.Contains(first, []byte("Ana María")) || bytes.Contains(first, []byte("Bob")) || bytes.Contains(last, []byte("López")) {
				t.Error("a name is stored readable")
			}
		}
		rows.Close()
		for query, want := range map[string]int{"ana": 1, "ANA lóp": 1, "lopez": 1, "maria": 1, "o": 2, "zed": 0, "": 0} {
			found, err := s.Search(ctx, "l1", query, 10)
			if err != nil || len(found) != want {
				t.Errorf("search %q: %d %v, want %d", query, len(found), err, want)
			}
		}
	})
}
