package bridge

import "testing"

// TestInboxLanes: a patient's messages share a shard while any is in the inbox; patients with
// none there spread over the least busy shards, and a patient whose messages all left may
// move.
func TestInboxLanes(t *testing.T) {
	l := newInboxLanes(3)
	a1 := l.enter("a")
	b := l.enter("b")
	c := l.enter("c")
	if a1 == b || b == c || a1 == c {
		t.Fatalf("three patients on three idle shards went to %d, %d, %d", a1, b, c)
	}
	if a2 := l.enter("a"); a2 != a1 {
		t.Fatalf("the patient's second message went to shard %d while the first is in shard %d", a2, a1)
	}
	// Shard a1 now holds 2, the others 1: a new patient goes to one of those.
	if d := l.enter("d"); d == a1 {
		t.Fatalf("a new patient went to the busiest shard %d (loads %v)", d, l.load)
	}
	l.leave("a")
	if a3 := l.enter("a"); a3 != a1 {
		t.Fatalf("the patient's message went to shard %d while an earlier one is still in shard %d", a3, a1)
	}
	l.leave("a")
	l.leave("a")
	if _, ok := l.patient["a"]; ok {
		t.Fatal("a patient with no message in the inbox still holds a lane")
	}
	if l.load[a1] != 0 {
		t.Fatalf("shard %d still counts the patient's messages that left (loads %v)", a1, l.load)
	}
	if e := l.enter("e"); e != a1 {
		t.Fatalf("a new patient went to shard %d, not the idle shard %d (loads %v)", e, a1, l.load)
	}
	l.leave("nobody") // a message that never entered changes nothing
	total := 0
	for _, n := range l.load {
		total += n
	}
	if total != 4 { // b, c, d, e
		t.Fatalf("shards hold %d messages, want 4 (loads %v)", total, l.load)
	}
}
