package store

import (
	"context"
	"fmt"
	"slices"
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

// TestRecordAndClaim: the outcomes of one batch are recorded in the transaction that claims
// the next, on the texts and on the messages they carry, and a patient whose text was just
// recorded as sent has the next one claimed there. A status callback that came first is not
// moved back. The claim reads past a patient's backlog to the other patients' first texts.
func TestRecordAndClaim(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for i, p := range []string{"a", "b", "c"} {
			if _, err := s.GetOrCreatePatient(ctx, p, "L", fmt.Sprintf("+141555500%02d", i)); err != nil {
				t.Fatal(err)
			}
		}
		enqueue := func(patient, messageID string, kind OutboxKind) *Outgoing {
			t.Helper()
			if messageID != "" {
				m := &Message{ID: messageID, PatientID: patient, Channel: ChannelSMS, Body: "hello", Status: StatusPending, CreatedAt: time.Now()}
				if err := s.SaveMessage(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			o := &Outgoing{LoginID: "L", PatientID: patient, MessageID: messageID, Kind: kind, Body: "text", GiveUpAt: time.Now().Add(time.Hour)}
			if err := s.Enqueue(ctx, o); err != nil {
				t.Fatal(err)
			}
			return o
		}
		a := []*Outgoing{enqueue("a", "ma1", KindMessage)}
		for range 5 {
			a = append(a, enqueue("a", "", KindMessage))
		}
		b1 := enqueue("b", "mb1", KindMessage)
		c1 := enqueue("c", "mc1", KindMessage)
		code := enqueue("a", "", KindCode)

		first, err := s.ClaimDue(ctx, "L", 3, false)
		if err != nil {
			t.Fatal(err)
		}
		if seqs := claimedSeqs(first); !slices.Equal(seqs, []int64{a[0].Seq, b1.Seq, code.Seq}) {
			t.Fatalf("first claim = %v, want a1 %d, b1 %d and the code %d", seqs, a[0].Seq, b1.Seq, code.Seq)
		}
		// b1's callback beats the sender's record.
		if _, _, err = s.UpdateStatus(ctx, "L", b1.Seq, "SMb", StatusDelivered, 0); err != nil {
			t.Fatal(err)
		}
		next, err := s.RecordAndClaim(ctx, []Outcome{
			{Text: first[0], SID: "SMa", Status: StatusQueued},
			{Text: first[1], SID: "SMb", Status: StatusQueued},
			{Text: first[2], Failed: true, ErrorCode: 21610, Error: "opted out"},
		}, "L", 10, true)
		if err != nil {
			t.Fatal(err)
		}
		if seqs := claimedSeqs(next); !slices.Equal(seqs, []int64{a[1].Seq, c1.Seq}) {
			t.Fatalf("second claim = %v, want a2 %d (freed by a1's record) and c1 %d", seqs, a[1].Seq, c1.Seq)
		}
		for _, want := range []struct {
			seq   int64
			state OutboxState
			sid   string
		}{{a[0].Seq, OutboxSent, "SMa"}, {b1.Seq, OutboxSent, "SMb"}, {code.Seq, OutboxFailed, ""}, {a[1].Seq, OutboxSending, ""}} {
			o, err := s.GetOutgoing(ctx, want.seq)
			if err != nil || o.State != want.state || o.TwilioSID != want.sid {
				t.Errorf("text %d: %+v (%v), want %s with SID %q", want.seq, o, err, want.state, want.sid)
			}
		}
		for _, want := range []struct {
			id, sid string
			status  MessageStatus
		}{{"ma1", "SMa", StatusQueued}, {"mb1", "SMb", StatusDelivered}, {"mc1", "", StatusPending}} {
			m, err := s.GetMessage(ctx, want.id)
			if err != nil || m == nil || m.TwilioSID != want.sid || m.Status != want.status {
				t.Errorf("message %s: %+v (%v), want SID %q and %s", want.id, m, err, want.sid, want.status)
			}
		}
	})
}

func claimedSeqs(texts []*Outgoing) []int64 {
	seqs := make([]int64, len(texts))
	for i, o := range texts {
		seqs[i] = o.Seq
	}
	return seqs
}
