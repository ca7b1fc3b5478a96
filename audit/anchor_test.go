package audit

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
)

// cutOldest deletes the entries up to seq and points the purge anchor at entry seq, as a
// database writer without the key would to hide them.
func cutOldest(t *testing.T, l *Log, entries []Entry, seq int64) {
	t.Helper()
	exec(t, l, `DELETE FROM careline_audit WHERE seq <= $1`, seq)
	exec(t, l, `UPDATE careline_audit_head SET purged_seq = $1, purged_hash = $2`, seq, entries[seq-1].Hash)
}

// Deleting the oldest entries and moving the anchor to match is noticed, whether or not
// careline ever purged.
func TestVerifyCatchesOldestEntriesCutWithAnchor(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		l := newLog(t, db)
		entries := fillDays(t, l, 10)
		cutOldest(t, l, entries, 3)
		wantProblems(t, verify(t, l), Problem{Seq: 3, Last: 3, Kind: Anchor})
		// Nor does a later purge launder the forged anchor into a genuine one.
		if _, err := l.PurgeBefore(context.Background(), day0.AddDate(0, 0, 6)); err == nil {
			t.Fatal("purged from a forged anchor")
		}
	})
}

func TestVerifyCatchesAnchorMovedAfterPurge(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		l := newLog(t, db)
		entries := fillDays(t, l, 10)
		if _, err := l.PurgeBefore(context.Background(), day0.AddDate(0, 0, 3)); err != nil {
			t.Fatal(err)
		}
		if r := verify(t, l); !r.Intact() {
			t.Fatalf("after a genuine purge: %+v", r.Problems)
		}
		// The same MAC does not cover a later seq, even with the cutoff copied along.
		cutOldest(t, l, entries, 6)
		wantProblems(t, verify(t, l), Problem{Seq: 6, Last: 6, Kind: Anchor})
	})
}

// A genuine purge whose retention.purge entry was cut from the end (with the head rewound,
// which the chain alone cannot see) is noticed.
func TestVerifyRequiresPurgeEntry(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		l := newLog(t, db)
		entries := fillDays(t, l, 10)
		if _, err := l.PurgeBefore(ctx, day0.AddDate(0, 0, 3)); err != nil {
			t.Fatal(err)
		}
		exec(t, l, `DELETE FROM careline_audit WHERE seq = 11`)
		exec(t, l, `UPDATE careline_audit_head SET last_seq = 10, last_hash = $1`, entries[9].Hash)
		r := verify(t, l)
		wantProblems(t, r, Problem{Seq: 3, Last: 3, Kind: Anchor})
		if !strings.Contains(r.Problems[0].What, "no retention.purge entry") {
			t.Fatalf("problem in words: %q", r.Problems[0].What)
		}
	})
}

// Nothing younger than the audit retention is purged, and a purge that was (by a careline with
// a shorter retention then) is reported.
func TestPurgeRespectsRetention(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		l := newLog(t, db)
		fillDays(t, l, 10) // the clock stays on day 9
		if n, err := l.PurgeBefore(ctx, day0.AddDate(0, 0, 8)); err == nil || n != 0 {
			t.Fatalf("purged %d entries inside the retention (%v)", n, err)
		}
		if r := verify(t, l); !r.Intact() || r.Entries != 10 {
			t.Fatalf("after a refused purge: %+v", r)
		}
		if _, err := l.PurgeBefore(ctx, day0.AddDate(0, 0, 5)); err != nil {
			t.Fatal(err)
		}
		l.SetRetention(30 * 24 * time.Hour)
		wantProblems(t, verify(t, l), Problem{Seq: 5, Last: 5, Kind: Anchor})
	})
}
