package bridge

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/audit"
)

// A login that arrives while Start is still preparing careline's tables waits for them, and
// is told careline is starting when it cannot wait longer.
func TestWaitTablesReady(t *testing.T) {
	c := &Connector{tablesReady: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.waitTablesReady(ctx); !errors.Is(err, errStillStarting) {
		t.Fatalf("before the tables are ready: %v, want errStillStarting", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- c.waitTablesReady(context.Background()) }()
	close(c.tablesReady)
	if err := <-waited; err != nil {
		t.Fatalf("once the tables are ready: %v", err)
	}
}

// Every path bridgev2 can take into careline before Start has finished (it serves the
// provisioning API and hands on Matrix events before it starts the network connector) waits
// for careline's tables before touching anything, and says careline is still starting when it
// cannot wait longer. The connector has no store, portal or team inbox: a path that touched
// one before waiting would panic.
func TestPathsDuringStartWaitForTables(t *testing.T) {
	c := &Connector{tablesReady: make(chan struct{})}
	cl := &Client{connector: c, login: &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: "L"}, Log: zerolog.Nop()}}
	admin := &bridgev2.User{Permissions: bridgeconfig.Permissions{Admin: true}}
	portal := &bridgev2.Portal{Portal: &database.Portal{PortalKey: networkid.PortalKey{ID: "p1", Receiver: "L"}, MXID: "!room:example.org"}}
	ghost := &bridgev2.Ghost{Ghost: &database.Ghost{ID: "p1"}}
	evt := &event.Event{ID: "$staff", Sender: "@nurse:example.org"}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as when startWait has run out

	provisioning := func(err error) bool {
		var resp bridgev2.RespError
		return errors.As(err, &resp) && resp.StatusCode == http.StatusServiceUnavailable && resp.Err == errStillStarting.Error()
	}
	inRoom := func(err error) bool {
		var status bridgev2.MessageStatus
		return errors.As(err, &status) && errors.Is(err, errStillStarting) && status.SendNotice && status.Message == errStillStarting.Error()
	}
	for _, tc := range []struct {
		name   string
		call   func() error
		answer func(error) bool // the answer the caller shows
	}{
		{"CreateLogin: provisioning login/start, the login command", func() error {
			_, err := c.CreateLogin(ctx, admin, loginFlowID)
			return err
		}, provisioning},
		{"ResolveIdentifier: provisioning resolve_identifier and create_dm, start-chat, inviting a patient's ghost", func() error {
			_, err := cl.ResolveIdentifier(ctx, "+14155550123", true)
			return err
		}, provisioning},
		{"GetChatInfo: a room upgrade (tombstone), sync commands", func() error {
			_, err := cl.GetChatInfo(ctx, portal)
			return err
		}, func(err error) bool { return errors.Is(err, errStillStarting) }},
		{"GetUserInfo: a ghost's profile", func() error {
			_, err := cl.GetUserInfo(ctx, ghost)
			return err
		}, func(err error) bool { return errors.Is(err, errStillStarting) }},
		{"HandleMatrixMessage: a staff message sent during a restart", func() error {
			_, err := cl.HandleMatrixMessage(ctx, &bridgev2.MatrixMessage{MatrixEventBase: bridgev2.MatrixEventBase[*event.MessageEventContent]{
				Event: evt, Portal: portal, Content: &event.MessageEventContent{MsgType: event.MsgText, Body: "Your results are in"},
			}})
			return err
		}, inRoom},
		{"HandleMatrixMessageRemove: a staff redaction during a restart", func() error {
			return cl.HandleMatrixMessageRemove(ctx, &bridgev2.MatrixMessageRemove{
				MatrixEventBase: bridgev2.MatrixEventBase[*event.RedactionEventContent]{Event: evt, Portal: portal, Content: &event.RedactionEventContent{}},
				TargetMessage:   &database.Message{ID: "m1"},
			})
		}, inRoom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("touched careline's parts before waiting for them: %v", r)
				}
			}()
			if err := tc.call(); !tc.answer(err) {
				t.Fatalf("before the tables are ready: %#v, want careline is still starting", err)
			}
		})
	}
}

// A clinic login logged out while careline is starting has its audit entry once the audit
// trail's tables are there, not a failed append before them.
func TestLogoutDuringStartAuditsOnceReady(t *testing.T) {
	db, err := dbutil.NewWithDialect("file:"+filepath.Join(t.TempDir(), "c.db")+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	trail := audit.New(db, audit.KeyFromSecret("a test identity key that is long enough to use"), zerolog.Nop())
	c := &Connector{Audit: trail, tablesReady: make(chan struct{})}
	cl := &Client{connector: c, meta: &UserLoginMetadata{PhoneNumber: testClinic},
		login: &bridgev2.UserLogin{UserLogin: &database.UserLogin{ID: "L", UserMXID: "@admin:example.org"}, Log: zerolog.Nop()}}
	loggedOut := make(chan struct{})
	go func() {
		defer close(loggedOut)
		cl.LogoutRemote(ctx)
	}()
	// Until LogoutRemote waits for the tables: without the wait it would append to a table that
	// is not there, fail (logged) and return.
	for stack := make([]byte, 1<<20); !bytes.Contains(stack[:runtime.Stack(stack, true)], []byte("(*Connector).waitTablesReady")); runtime.Gosched() {
		select {
		case <-loggedOut:
			t.Fatal("the logout went on before careline's tables were there")
		default:
		}
	}
	if err = trail.Upgrade(ctx); err != nil { // what Start does
		t.Fatal(err)
	}
	close(c.tablesReady)
	<-loggedOut
	var n int
	if err = db.QueryRow(ctx, "SELECT COUNT(*) FROM careline_audit WHERE action = 'logout'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("logout audit entries: %d (%v), want 1", n, err)
	}
}

// replyRecorder is the bridge bot as far as a command's reply goes.
type replyRecorder struct {
	bridgev2.MatrixAPI
	replies []string
}

func (r *replyRecorder) SendMessage(_ context.Context, _ id.RoomID, _ event.Type, content *event.Content, _ *bridgev2.MatrixSendExtra) (*mautrix.RespSendEvent, error) {
	r.replies = append(r.replies, content.AsMessage().Body)
	return &mautrix.RespSendEvent{}, nil
}

// Every careline command sent while careline starts (they are registered in Init, so bridgev2
// knows them) waits for careline's tables, and says careline is still starting when it cannot
// wait longer, before touching anything: the connector has no store, portal or team inbox.
func TestCommandsDuringStartWaitForTables(t *testing.T) {
	c := &Connector{tablesReady: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as when startWait has run out
	handlers := c.commandHandlers()
	if len(handlers) < 20 {
		t.Fatalf("%d commands, want careline's 20 or more", len(handlers))
	}
	for _, h := range handlers {
		full := h.(*commands.FullHandler)
		t.Run(full.Name, func(t *testing.T) {
			bot := &replyRecorder{}
			log := zerolog.Nop()
			ce := &commands.Event{Ctx: ctx, Bot: bot, Bridge: &bridgev2.Bridge{Config: &bridgeconfig.BridgeConfig{}},
				Portal: &bridgev2.Portal{Portal: &database.Portal{PortalKey: networkid.PortalKey{ID: "p1", Receiver: "L"}, MXID: "!room:example.org"}},
				User:   &bridgev2.User{Permissions: bridgeconfig.Permissions{Admin: true}},
				RoomID: "!room:example.org", OrigRoomID: "!room:example.org", Command: full.Name, Log: &log}
			full.Func(ce)
			if len(bot.replies) != 1 || bot.replies[0] != errStillStarting.Error() {
				t.Fatalf("replies %q, want only %q", bot.replies, errStillStarting.Error())
			}
		})
	}
}
