package bridge

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/dbtest"
	"github.com/careline/careline/internal/twiliofake"
	"github.com/careline/careline/store"
)

// roomlessMatrix is the Matrix side prepareInbound needs: the ghosts' user IDs. It cannot read
// a room, so the crash check relies on bridgev2's records alone.
type roomlessMatrix struct{ bridgev2.MatrixConnector }

func (roomlessMatrix) Init(*bridgev2.Bridge)         {}
func (roomlessMatrix) BotIntent() bridgev2.MatrixAPI { return nil }
func (roomlessMatrix) FormatGhostMXID(user networkid.UserID) id.UserID {
	return id.UserID("@twilio_" + string(user) + ":example.org")
}

type noNetwork struct{ bridgev2.NetworkConnector }

func (noNetwork) Init(*bridgev2.Bridge)              {}
func (noNetwork) GetDBMetaTypes() database.MetaTypes { return database.MetaTypes{} }

// withBridge gives the fixture a bridgev2 bridge on its database, with the patient's room.
func (f *inboundFixture) withBridge(t *testing.T, db *dbutil.Database) *bridgev2.Bridge {
	t.Helper()
	ctx := context.Background()
	br := bridgev2.NewBridge("careline", db, zerolog.Nop(), nil, roomlessMatrix{}, noNetwork{},
		func(*bridgev2.Bridge) bridgev2.CommandProcessor { return nil })
	br.BackgroundCtx = ctx
	if err := br.DB.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	if err := br.DB.Portal.Insert(ctx, &database.Portal{BridgeID: "careline", PortalKey: portalKey("L", "p1"), MXID: "!room:example.org"}); err != nil {
		t.Fatal(err)
	}
	if err := br.DB.Ghost.Insert(ctx, &database.Ghost{BridgeID: "careline", ID: "p1"}); err != nil {
		t.Fatal(err)
	}
	f.c.Bridge = br
	return br
}

// recordInRoom records a message's text in bridgev2's table, as bridgev2 does once the
// homeserver took it: the crash check, if it looks, finds the message in its room.
func recordInRoom(t *testing.T, br *bridgev2.Bridge, in *store.Inbound) {
	t.Helper()
	if err := br.DB.Message.Insert(context.Background(), &database.Message{ID: networkid.MessageID(in.MessageID), MXID: id.EventID("$" + in.MessageID),
		Room: portalKey("L", "p1"), SenderID: "p1", Timestamp: in.ReceivedAt}); err != nil {
		t.Fatal(err)
	}
}

// TestFreshMessageGoesStraightToBridgev2: an SMS the webhook stored with its record and its
// "sending" mark goes to bridgev2 without a commit first, without letting a send settle and
// without looking in the room: in this process nothing of it can be there. The check is
// probed with bridgev2 holding a record of the message (which cannot happen to a fresh one):
// a check would find it and not send it. After a restart the same row is checked (after
// letting a send settle) and found in its room, so it is not sent twice; so is a message
// whose attempt in this process handed it to bridgev2. One that failed before that stays
// fresh.
func TestFreshMessageGoesStraightToBridgev2(t *testing.T) {
	dbtest.ForEach(t, "careline_fresh", func(t *testing.T, db *dbutil.Database) {
		f := newInboundFixtureOn(t, db)
		f.c.Config.Twilio.GiveUpAfter = time.Hour
		br := f.withBridge(t, db)
		ctx := context.Background()
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := db.Exec(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		sendingAt := func(in *store.Inbound) int64 {
			t.Helper()
			var at int64
			if err := db.QueryRow(ctx, `SELECT sending_at FROM careline_inbound WHERE message_id=$1`, in.MessageID).Scan(&at); err != nil {
				t.Fatal(err)
			}
			return at
		}

		in, patient := f.receive(t, "my knee hurts")
		item := &inboxItem{in: in, patient: patient, client: f.client, fresh: !in.SendingAt.IsZero()}
		if !item.fresh {
			t.Fatal("the webhook's SMS is not marked sending with its commit")
		}
		recordInRoom(t, br, in)
		const marked = 1 // a "sending" mark no attempt writes, to see whether one was written
		exec(`UPDATE careline_inbound SET sending_at=$1 WHERE message_id=$2`, marked, in.MessageID)
		job, err := f.c.prepareInbound(ctx, item)
		if err != nil {
			t.Fatal(err)
		}
		if job.inRoom {
			t.Error("a fresh message was looked for in its room")
		}
		if job.msg.Body != "my knee hurts" || job.msg.ID != in.MessageID {
			t.Errorf("the message to bridge: %+v", job.msg)
		}
		if kept := f.c.markSending(ctx, []*inboundJob{job}); len(kept) != 1 || sendingAt(in) != marked {
			t.Errorf("a fresh message was marked again before bridgev2 (%d kept, sending_at %d)", len(kept), sendingAt(in))
		}

		// An MMS is recorded and marked by its worker, once its media are fetched.
		photo, _ := f.receive(t, "the rash", twiliofake.Media{ContentType: "image/png", Data: []byte("\x89PNG....")})
		if !photo.SendingAt.IsZero() {
			t.Fatal("an MMS is marked sending before its media were fetched")
		}
		photoJob, err := f.c.prepareInbound(ctx, &inboxItem{in: photo, patient: patient, client: f.client})
		if err != nil {
			t.Fatal(err)
		}
		if kept := f.c.markSending(ctx, []*inboundJob{photoJob}); len(kept) != 1 || sendingAt(photo) == 0 {
			t.Errorf("an MMS was not marked sending before bridgev2 (%d kept)", len(kept))
		}
		if atts, err := f.store.MessageAttachments(ctx, photo.MessageID); err != nil || len(atts) != 1 {
			t.Errorf("the MMS's record: %d attachments, %v", len(atts), err)
		}

		// After a restart the row's mark is all there is: whenever it was marked, a send of the
		// process before may have left just before this one started. Let it settle, then check.
		exec(`UPDATE careline_inbound SET sending_at=$1 WHERE message_id=$2`, in.ReceivedAt.Add(-time.Hour).UnixMilli(), in.MessageID)
		f.c.inbox = &inbox{c: f.c, startedAt: time.Now()}
		settling := make(chan struct{})
		logs := zerolog.New(&signalOn{text: "Letting an interrupted send settle", signal: settling})
		waitCtx, stop := context.WithCancel(logs.WithContext(ctx))
		go func() { <-settling; stop() }()
		if _, err = f.c.prepareInbound(waitCtx, &inboxItem{in: in, patient: patient, client: f.client, swept: true}); !errors.Is(err, context.Canceled) {
			t.Fatalf("after a restart, a message marked sending just now was not left to settle: %v", err)
		}
		stop()
		f.c.inbox = &inbox{c: f.c, startedAt: time.Now().Add(-inboxSettle)} // started that long ago
		if job, err = f.c.prepareInbound(ctx, &inboxItem{in: in, patient: patient, client: f.client, swept: true}); err != nil || !job.inRoom {
			t.Fatalf("after a restart, a message marked sending by its webhook was not found in its room (in room %v, %v)", job != nil && job.inRoom, err)
		}

		// In this process: a fresh message whose attempt failed before bridgev2 stays fresh; once
		// handed to bridgev2, a failed attempt leaves it to the check as before.
		f.c.inbox = &inbox{c: f.c}
		second, _ := f.receive(t, "and my ankle")
		recordInRoom(t, br, second)
		for _, handed := range []bool{false, true} {
			item := &inboxItem{in: second, patient: patient, client: f.client, fresh: !handed}
			f.c.inboundFailed(ctx, item, errors.New("the homeserver refused"))
			if handed {
				f.c.inbox.attemptAnswered(second) // answered: no settle, only the check
			}
			job, err := f.c.prepareInbound(ctx, &inboxItem{in: second, patient: patient, client: f.client, swept: true})
			if err != nil {
				t.Fatal(err)
			}
			if job.inRoom != handed {
				t.Errorf("retry after an attempt that handed the message to bridgev2 %v: looked in the room %v", handed, job.inRoom)
			}
			if job.fresh == handed {
				t.Errorf("retry after an attempt that handed the message to bridgev2 %v: fresh %v", handed, job.fresh)
			}
		}
	})
}

// signalOn closes signal the first time a log line contains text.
type signalOn struct {
	text   string
	signal chan struct{}
	once   sync.Once
}

func (s *signalOn) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(s.text)) {
		s.once.Do(func() { close(s.signal) })
	}
	return len(p), nil
}
