package bridge

import (
	"testing"

	"maunium.net/go/mautrix/event"
)

func TestStaffOnlyKind(t *testing.T) {
	thread := &event.MessageEventContent{MsgType: event.MsgText, Body: "she called about the dose"}
	thread.RelatesTo = (&event.RelatesTo{}).SetThread("$root", "$root")
	reply := &event.MessageEventContent{MsgType: event.MsgText, Body: "yes, take it with food"}
	reply.RelatesTo = (&event.RelatesTo{}).SetReplyTo("$patient")
	for _, tc := range []struct {
		content *event.MessageEventContent
		want    string
	}{
		{thread, "thread"},
		{reply, ""},
		{&event.MessageEventContent{Body: "!note check the allergy list"}, "note"},
		{&event.MessageEventContent{Body: "!NOTE"}, "note"},
		{&event.MessageEventContent{Body: "!Note\tsecond line"}, "note"},
		{&event.MessageEventContent{Body: "  !note indented"}, "note"},
		{&event.MessageEventContent{Body: "!notes are not notes"}, ""},
		{&event.MessageEventContent{Body: "!notebook"}, ""},
		{&event.MessageEventContent{Body: "please note: fasting from midnight"}, ""},
		{&event.MessageEventContent{Body: "!not"}, ""},
		{&event.MessageEventContent{Body: "!plain !note"}, ""},
		{nil, ""},
	} {
		body := "<nil>"
		if tc.content != nil {
			body = tc.content.Body
		}
		if got := staffOnlyKind(tc.content); got != tc.want {
			t.Errorf("%q: %q, want %q", body, got, tc.want)
		}
	}
}
