package testenv

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
)

// TestEncryptedRoundTrip proves the harness: a real Dendrite, two E2EE staff clients, an
// encrypted room, and a message that arrives decrypted.
func TestEncryptedRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real homeserver")
	}
	hs := StartTestHomeserver(t, HomeserverOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	alice, err := hs.NewStaffClient(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := hs.NewStaffClient(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	bob.AutoJoinInvites()

	roomID, err := alice.CreateEncryptedRoom(ctx, "ward 7", bob.UserID)
	if err != nil {
		t.Fatal(err)
	}
	invited, err := bob.WaitForInvite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if invited != roomID {
		t.Fatalf("invited to %s, want %s", invited, roomID)
	}
	if err = bob.WaitForJoin(ctx, roomID); err != nil {
		t.Fatal(err)
	}

	sent, err := alice.SendText(ctx, roomID, "bed 3 needs a callback")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := bob.WaitForMessage(ctx, func(m Message) bool { return m.EventID == sent })
	if err != nil {
		t.Fatalf("%v; decrypt errors: %v", err, bob.DecryptErrors())
	}
	if msg.Body != "bed 3 needs a callback" || !msg.Encrypted || msg.Sender != alice.UserID || msg.MsgType != event.MsgText {
		t.Fatalf("got %+v", msg)
	}

	// Encrypted attachments round-trip too.
	png := []byte("\x89PNG\r\n\x1a\nnot really an image")
	mediaID, err := bob.SendMedia(ctx, roomID, event.MsgImage, png, "image/png", "x.png")
	if err != nil {
		t.Fatal(err)
	}
	media, err := alice.WaitForMessage(ctx, func(m Message) bool { return m.EventID == mediaID })
	if err != nil {
		t.Fatal(err)
	}
	if media.Content.File == nil || !media.Encrypted {
		t.Fatalf("attachment not encrypted: %+v", media.Content)
	}
	data, err := alice.DownloadMedia(ctx, media.Content)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(png) {
		t.Fatalf("downloaded %q", data)
	}

	// Read receipts are visible to the other member.
	if err = bob.MarkRead(ctx, roomID, sent); err != nil {
		t.Fatal(err)
	}
	if reader, err := alice.WaitForReceipt(ctx, roomID, sent); err != nil || reader != bob.UserID {
		t.Fatalf("receipt from %s, %v", reader, err)
	}
}

func TestRegisterAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real homeserver")
	}
	hs := StartTestHomeserver(t, HomeserverOptions{ServerName: "restart.test"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	userID, token, err := hs.RegisterUser(ctx, "carol", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if userID != "@carol:restart.test" || token == "" {
		t.Fatalf("registered %s", userID)
	}
	if _, _, err = hs.RegisterUser(ctx, "carol", "correct horse battery"); err == nil {
		t.Fatal("registering a taken name succeeded")
	}
	if err = hs.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// The account survived: logging in works against the restarted server.
	c, err := hs.LoginStaffClient(ctx, "carol", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close()
	if err = hs.Stop(); err != nil {
		t.Fatal(err)
	}
	if err = hs.Stop(); err != nil {
		t.Fatal(err)
	}
	if hs.Running() {
		t.Fatal("still running after Stop")
	}
}
