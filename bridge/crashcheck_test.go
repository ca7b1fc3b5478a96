package bridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/dbtest"
	"github.com/careline/careline/store"
)

// TestPatientMessagesWaitBehindARetry: while a patient's message waits for its retry, the
// patient's later messages wait behind it (they reached the room before it), also after a
// restart; other patients' messages and the patient's earlier ones do not wait.
func TestPatientMessagesWaitBehindARetry(t *testing.T) {
	f := newInboundFixture(t)
	f.c.Config.Twilio.GiveUpAfter = time.Hour
	ctx := context.Background()
	first, patient := f.receive(t, "first")
	// Messages are ordered by received millisecond, then by their (random) SID: the second
	// must arrive a millisecond later to be sure to come after the first.
	for time.Now().UnixMilli() <= first.ReceivedAt.UnixMilli() {
		runtime.Gosched()
	}
	second, _ := f.receive(t, "second")
	f.c.inboundFailed(ctx, &inboxItem{in: first, patient: patient, client: f.client}, errors.New("homeserver down"))
	for _, swept := range []bool{false, true} {
		if _, err := f.c.prepareInbound(ctx, &inboxItem{in: second, patient: patient, client: f.client, swept: swept}); !errors.Is(err, errWaitsBehind) {
			t.Fatalf("the patient's next message (swept %v) went ahead of the one waiting for its retry: %v", swept, err)
		}
	}

	at := first.ReceivedAt
	msg := func(patient, id string, after time.Duration) *store.Inbound {
		return &store.Inbound{MessageID: id, PatientID: patient, ReceivedAt: at.Add(after)}
	}
	restarted := &inbox{c: f.c, ctx: ctx}
	if !restarted.loadRetrying() {
		t.Fatal("could not list the messages waiting for a retry")
	}
	for name, ib := range map[string]*inbox{"running": f.c.inbox, "after a restart": restarted} {
		for _, tc := range []struct {
			in     *store.Inbound
			behind bool
		}{
			{second, true},
			{msg("p1", "SMzz", 0), true}, // same millisecond, listed after it
			{msg("p1", "SM00", 0), false},
			{msg("p1", "SMearlier", -time.Second), false},
			{first, false},
			{msg("p2", "SMother", time.Second), false},
		} {
			if got := ib.behind(tc.in); got != tc.behind {
				t.Errorf("%s: %s of %s behind = %v, want %v", name, tc.in.MessageID, tc.in.PatientID, got, tc.behind)
			}
		}
	}
	f.c.inbox.settledFor(first)
	if f.c.inbox.behind(second) {
		t.Error("the next message still waits after the first reached its room")
	}
	// A message in its room whose row could not be closed is retried, but nothing waits for it.
	f.c.inboundFailed(ctx, &inboxItem{in: first, patient: patient, client: f.client, reachedRoom: true}, errors.New("database busy"))
	if f.c.inbox.behind(second) {
		t.Error("the next message waits behind one already in its room")
	}
}

// bridgeDB is bridgev2's database with a patient's room and ghost, for the crash check's
// records.
func bridgeDB(t *testing.T, raw *dbutil.Database, room networkid.PortalKey, patientID string) *database.Database {
	t.Helper()
	ctx := context.Background()
	db := database.New("careline", database.MetaTypes{}, raw)
	if err := db.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Portal.Insert(ctx, &database.Portal{PortalKey: room, MXID: "!room:example.org"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Ghost.Insert(ctx, &database.Ghost{ID: networkid.UserID(patientID)}); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestCrashCheckFindsPartsByTimestamp: after an interrupted attempt, the parts of a message
// are found in the room by their sender and origin_server_ts alone (the events stay
// encrypted), recorded under their part IDs in bridgev2's message table, and a multi-part
// message half in the room is reported as not in the room, so its missing parts are sent.
// An event bridgev2 recorded for another message of the same millisecond is not taken for it.
func TestCrashCheckFindsPartsByTimestamp(t *testing.T) {
	const ghost = id.UserID("@twilio_p1:example.org")
	room := networkid.PortalKey{ID: "p1", Receiver: "L"}
	at := time.UnixMilli(1_790_000_000_123)
	mms := &store.Message{ID: "SMmms", PatientID: "p1", Body: "see photos", CreatedAt: at}
	photos := []*store.Attachment{{FileName: "a.jpg"}, {FileName: "b.jpg"}}
	encrypted := func(evtID string, ts time.Time) *event.Event {
		return &event.Event{ID: id.EventID(evtID), Sender: ghost, Type: event.EventEncrypted, Timestamp: ts.UnixMilli()}
	}
	// The room, newest first as /messages returns it: an older message, another message of
	// the same millisecond (recorded), the ghost's join, then the MMS's text and first photo.
	halfSent := []*event.Event{
		encrypted("$photo1", at),
		encrypted("$text", at),
		{ID: "$join", Sender: ghost, Type: event.StateMember, StateKey: new(string), Timestamp: at.UnixMilli()},
		encrypted("$other", at),
		encrypted("$older", at.Add(-time.Minute)),
	}
	allSent := append([]*event.Event{encrypted("$photo2", at)}, halfSent...)
	type parts = map[networkid.PartID]id.EventID
	for _, tc := range []struct {
		name     string
		recorded parts // parts of the MMS bridgev2 recorded before the crash
		room     []*event.Event
		inRoom   bool
		want     parts
	}{
		{"crash while the first photo was sent", nil, halfSent, false, parts{"": "$text", "media0": "$photo1"}},
		{"crash while the first photo was sent, text recorded", parts{"": "$text"}, halfSent, false, parts{"": "$text", "media0": "$photo1"}},
		{"crash while the last photo was sent", parts{"": "$text", "media0": "$photo1"}, allSent, true,
			parts{"": "$text", "media0": "$photo1", "media1": "$photo2"}},
		{"all recorded", parts{"": "$text", "media0": "$photo1", "media1": "$photo2"}, nil, true,
			parts{"": "$text", "media0": "$photo1", "media1": "$photo2"}},
		{"no room yet", nil, nil, false, parts{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbtest.ForEach(t, "careline_crashcheck", func(t *testing.T, raw *dbutil.Database) {
				ctx := context.Background()
				db := bridgeDB(t, raw, room, "p1")
				other := &database.Message{ID: "SMother", MXID: "$other", Room: room, SenderID: "p1", SenderMXID: ghost, Timestamp: at}
				if err := db.Message.Insert(ctx, other); err != nil {
					t.Fatal(err)
				}
				for part, mxid := range tc.recorded {
					if err := db.Message.Insert(ctx, &database.Message{ID: "SMmms", PartID: part, MXID: mxid, Room: room, SenderID: "p1", SenderMXID: ghost, Timestamp: at}); err != nil {
						t.Fatal(err)
					}
				}
				var history roomHistory
				if tc.room != nil {
					history = func(context.Context, id.UserID) ([]*event.Event, error) { return tc.room, nil }
				}
				inRoom, err := recoverParts(ctx, db.Message, room, mms, photos, ghost, history)
				if err != nil {
					t.Fatal(err)
				}
				if inRoom != tc.inRoom {
					t.Errorf("in room = %v, want %v", inRoom, tc.inRoom)
				}
				recorded, err := db.Message.GetAllPartsByID(ctx, "L", "SMmms")
				if err != nil {
					t.Fatal(err)
				}
				got := parts{}
				for _, p := range recorded {
					got[p.PartID] = p.MXID
				}
				if !maps.Equal(got, tc.want) {
					t.Errorf("recorded parts %v, want %v", got, tc.want)
				}
			})
		})
	}
}

// uploadOnly is the patient's ghost as convertPatientMessage uses it: uploads only.
type uploadOnly struct {
	bridgev2.MatrixAPI
	uploads []string
}

func (u *uploadOnly) UploadMedia(_ context.Context, _ id.RoomID, _ []byte, fileName, _ string) (id.ContentURIString, *event.EncryptedFileInfo, error) {
	u.uploads = append(u.uploads, fileName)
	return "mxc://example.org/" + id.ContentURIString(fileName), nil, nil
}

// TestHalfSentMessageSendsOnlyItsMissingParts: a multi-part message with some parts in the
// room (recorded by bridgev2, or found by the crash check) is converted again without them,
// and only their media uploaded; one with every part in the room is not sent again.
func TestHalfSentMessageSendsOnlyItsMissingParts(t *testing.T) {
	msg := &store.Message{ID: "SMmms", PatientID: "p1", Body: "see photos"}
	photos := []*store.Attachment{{FileName: "a.jpg", ContentType: "image/jpeg"}, {FileName: "b.jpg", ContentType: "image/jpeg"}}
	recorded := func(parts ...networkid.PartID) []*database.Message {
		var list []*database.Message
		for _, p := range parts {
			list = append(list, &database.Message{ID: "SMmms", PartID: p})
		}
		return list
	}
	for _, tc := range []struct {
		name     string
		existing []*database.Message
		send     []networkid.PartID
		uploads  []string
	}{
		{"nothing in the room", nil, []networkid.PartID{"", "media0", "media1"}, []string{"a.jpg", "b.jpg"}},
		{"text in the room", recorded(""), []networkid.PartID{"media0", "media1"}, []string{"a.jpg", "b.jpg"}},
		{"text and second photo in the room", recorded("", "media1"), []networkid.PartID{"media0"}, []string{"a.jpg"}},
		{"all in the room", recorded("", "media0", "media1"), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			have := partSet(tc.existing)
			if cont := len(missingParts(messageParts(msg, photos), have)) > 0; cont != (len(tc.send) > 0) {
				t.Fatalf("send again = %v, want %v", cont, len(tc.send) > 0)
			}
			intent := &uploadOnly{}
			converted, err := convertPatientMessage(context.Background(), &bridgev2.Portal{Portal: &database.Portal{}}, intent, msg, photos, have)
			if err != nil {
				t.Fatal(err)
			}
			var sent []networkid.PartID
			for _, p := range converted.Parts {
				sent = append(sent, p.ID)
				if p.Extra[partIDField] != string(p.ID) || p.Extra[messageIDField] != msg.ID {
					t.Errorf("part %q carries %v", p.ID, p.Extra)
				}
			}
			if !slices.Equal(sent, tc.send) || !slices.Equal(intent.uploads, tc.uploads) {
				t.Errorf("sent %q uploading %q, want %q uploading %q", sent, intent.uploads, tc.send, tc.uploads)
			}
		})
	}
}

// TestNoSendInFlight: an attempt lets the next one check the room at once only when no
// request of it can still be stored by the homeserver.
func TestNoSendInFlight(t *testing.T) {
	answered := func(status int) error {
		return fmt.Errorf("failed to send message part to Matrix: %w", mautrix.HTTPError{Response: &http.Response{StatusCode: status}})
	}
	transport := func(op string) error {
		return mautrix.HTTPError{WrappedError: &url.Error{Op: "Put", Err: &net.OpError{Op: op, Err: errors.New("refused")}}}
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"failed before sending", &nothingSentError{errors.New("no room")}, true},
		{"refused", answered(http.StatusForbidden), true},
		{"homeserver unreachable", transport("dial"), true},
		{"every part refused", errors.Join(answered(http.StatusForbidden), answered(http.StatusTooManyRequests)), true},
		{"server error", answered(http.StatusInternalServerError), false},
		{"connection broken", transport("read"), false},
		{"one part timed out", errors.Join(answered(http.StatusForbidden), context.DeadlineExceeded), false},
		{"sent but not recorded", fmt.Errorf("%w: failed to save message part to database: %w", bridgev2.ErrDatabaseError, errors.New("disk full")), false},
	} {
		if got := noSendInFlight(tc.err); got != tc.want {
			t.Errorf("%s: no send in flight = %v, want %v", tc.name, got, tc.want)
		}
	}
	started := time.Now()
	ib := &inbox{startedAt: started}
	// Marked by an earlier process long ago: it may have sent the message just before it ended.
	in := &store.Inbound{MessageID: "SM1", SendingAt: started.Add(-time.Hour)}
	if got := ib.settleUntil(in); !got.Equal(started.Add(inboxSettle)) {
		t.Errorf("a message marked sending by an earlier process settles until %v, want %v after this one started", got, inboxSettle)
	}
	ib.attemptAnswered(in)
	if !ib.settleUntil(in).IsZero() || ib.settleUntil(in).IsZero() {
		t.Error("an answered attempt spares the next one settling, once")
	}
	before := time.Now()
	ib.handing(in)
	if got := ib.settleUntil(in); got.Before(before.Add(inboxSettle)) {
		t.Errorf("after an attempt in this process a message settles until %v, want at least %v after the attempt", got, inboxSettle)
	}
}
