package audit

import (
	"bytes"
	"testing"
	"time"
)

// Distinct entries must never encode alike, whatever their fields contain: otherwise one
// entry's hash would vouch for another.
func FuzzCanonicalEncoding(f *testing.F) {
	f.Add(int64(1), int64(0), "ab", "c", "", "", "", "", []byte{}, int64(1), int64(0), "a", "bc", "", "", "", "", []byte{})
	f.Add(int64(1), int64(0), "x", "", "y", "", "", "", []byte{}, int64(1), int64(0), "x", "y", "", "", "", "", []byte{})
	f.Add(int64(256), int64(0), "", "", "", "", "", "", []byte{1}, int64(1), int64(0), "", "", "", "", "", "", []byte{1, 0})
	f.Add(int64(1), int64(5), "\x00\x00\x00\x01a", "", "", "", "", "", []byte{}, int64(1), int64(5), "", "a", "", "", "", "", []byte{})
	f.Fuzz(func(t *testing.T,
		seqA, atA int64, actorA, actionA, patientA, channelA, sidA, detailA string, prevA []byte,
		seqB, atB int64, actorB, actionB, patientB, channelB, sidB, detailB string, prevB []byte,
	) {
		a := Entry{Seq: seqA, At: time.UnixMilli(atA), Actor: actorA, Action: actionA, PatientID: patientA, Channel: channelA, TwilioSID: sidA, Detail: detailA, PrevHash: prevA}
		b := Entry{Seq: seqB, At: time.UnixMilli(atB), Actor: actorB, Action: actionB, PatientID: patientB, Channel: channelB, TwilioSID: sidB, Detail: detailB, PrevHash: prevB}
		same := a.Seq == b.Seq && a.At.Equal(b.At) && a.Actor == b.Actor && a.Action == b.Action && a.PatientID == b.PatientID &&
			a.Channel == b.Channel && a.TwilioSID == b.TwilioSID && a.Detail == b.Detail && bytes.Equal(a.PrevHash, b.PrevHash)
		if same != bytes.Equal(encode(&a), encode(&b)) {
			t.Fatalf("entries %+v and %+v: same=%v but encodings equal=%v", a, b, same, !same)
		}
	})
}

// Every field is covered by the hash.
func TestHashCoversEveryField(t *testing.T) {
	l := &Log{key: testKey}
	base := Entry{Seq: 3, At: time.UnixMilli(1000), Actor: "a", Action: "b", PatientID: "c", Channel: "d", TwilioSID: "e", Detail: "f", PrevHash: []byte{1}}
	h := l.hash(&base)
	for name, change := range map[string]func(e *Entry){
		"seq": func(e *Entry) { e.Seq++ }, "at": func(e *Entry) { e.At = e.At.Add(time.Millisecond) },
		"actor": func(e *Entry) { e.Actor += "x" }, "action": func(e *Entry) { e.Action += "x" },
		"patient": func(e *Entry) { e.PatientID += "x" }, "channel": func(e *Entry) { e.Channel += "x" },
		"sid": func(e *Entry) { e.TwilioSID += "x" }, "detail": func(e *Entry) { e.Detail += "x" },
		"prev": func(e *Entry) { e.PrevHash = []byte{2} },
	} {
		e := base
		change(&e)
		if bytes.Equal(l.hash(&e), h) {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
	if other := (&Log{key: KeyFromSecret("other")}); bytes.Equal(other.hash(&base), h) {
		t.Error("the hash does not depend on the key")
	}
}
