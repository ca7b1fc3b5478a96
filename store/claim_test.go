package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestClaimSharesFairly: codes and other texts share each claimed batch, each kind at least
// its half while it has texts due, the odd place to the kind whose turn it is; a kind with too
// few leaves its places to the other. Before, codes always went first: a few dozen links
// asking for codes starved staff texts at one text per second.
func TestClaimSharesFairly(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for i, tc := range []struct {
			codes, others, limit int
			codesFirst           bool
			wantCodes, wantOther int
		}{
			{5, 5, 1, true, 1, 0},
			{5, 5, 1, false, 0, 1},
			{5, 5, 4, true, 2, 2},
			{5, 5, 4, false, 2, 2},
			{5, 5, 5, true, 3, 2},
			{5, 5, 5, false, 2, 3},
			{1, 5, 4, true, 1, 3},
			{5, 1, 4, false, 3, 1},
			{5, 0, 4, false, 4, 0},
			{0, 5, 4, true, 0, 4},
			{0, 0, 4, true, 0, 0},
		} {
			login := fmt.Sprintf("L%d", i)
			enqueueKinds(t, s, login, tc.codes, tc.others)
			texts, err := s.ClaimDue(ctx, login, tc.limit, tc.codesFirst)
			if err != nil {
				t.Fatal(err)
			}
			codes, others := 0, 0
			for j, o := range texts {
				if o.Kind == KindCode {
					codes++
				} else {
					others++
				}
				if j == 0 && tc.wantCodes > 0 && tc.wantOther > 0 && (o.Kind == KindCode) != tc.codesFirst {
					t.Errorf("case %d: the batch starts with a %s, not the kind whose turn it is", i, o.Kind)
				}
			}
			if codes != tc.wantCodes || others != tc.wantOther {
				t.Errorf("case %d (%d codes, %d others, limit %d, codes first %v): claimed %d codes and %d others, want %d and %d",
					i, tc.codes, tc.others, tc.limit, tc.codesFirst, codes, others, tc.wantCodes, tc.wantOther)
			}
		}

		// The sender at one text per second, alternating turns, with 30 codes queued ahead
		// of 10 staff texts: half of the first 20 texts are staff texts.
		enqueueKinds(t, s, "rate", 30, 10)
		staff := 0
		for n := range 20 {
			texts, err := s.ClaimDue(ctx, "rate", 1, n%2 == 0)
			if err != nil || len(texts) != 1 {
				t.Fatalf("claim %d: %d texts, %v", n, len(texts), err)
			}
			if texts[0].Kind != KindCode {
				staff++
			}
			if err = s.RecordOutcomes(ctx, []Outcome{{Text: texts[0], SID: fmt.Sprintf("SM%d", n), Status: StatusQueued}}); err != nil {
				t.Fatal(err)
			}
		}
		if staff != 10 {
			t.Fatalf("%d of 20 texts were staff texts, want 10", staff)
		}
	})
}

// enqueueKinds queues codes first, then other texts, each for a patient of its own.
func enqueueKinds(t *testing.T, s *Store, login string, codes, others int) {
	t.Helper()
	ctx := context.Background()
	for j := range codes + others {
		patient := fmt.Sprintf("%s-p%d", login, j)
		if _, err := s.GetOrCreatePatient(ctx, patient, login, fmt.Sprintf("+1415555%04d", j)); err != nil {
			t.Fatal(err)
		}
		kind := KindMessage
		if j < codes {
			kind = KindCode
		}
		if err := s.Enqueue(ctx, &Outgoing{LoginID: login, PatientID: patient, Kind: kind, Body: "text", GiveUpAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCodesSince: the code budget's count, on both databases: codes only, of one login, in
// the window.
func TestCodesSince(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		enqueueKinds(t, s, "L", 2, 1)
		enqueueKinds(t, s, "M", 1, 0)
		if n, err := s.CodesSince(ctx, "L", time.Now().Add(-time.Hour)); n != 2 || err != nil {
			t.Fatalf("codes of L in the last hour: %d %v", n, err)
		}
		if n, err := s.CodesSince(ctx, "L", time.Now().Add(time.Second)); n != 0 || err != nil {
			t.Fatalf("codes of L since a moment from now: %d %v", n, err)
		}
	})
}
