package testenv

import (
	"context"
	"testing"
	"time"
)

// TestFederatedRoundTrip proves the two-server harness: two Dendrites with distinct server
// names federate on loopback, a user on one invites a user on the other into an encrypted
// room, and messages arrive decrypted both ways.
func TestFederatedRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two real homeservers")
	}
	servers := make([]*Homeserver, 2)
	for i := range servers {
		name, err := FederationServerName()
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = StartTestHomeserver(t, HomeserverOptions{ServerName: name, Federation: true})
	}
	if servers[0].ServerName == servers[1].ServerName {
		t.Fatalf("both servers are named %s", servers[0].ServerName)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	alice, err := servers[0].NewStaffClient(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := servers[1].NewStaffClient(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	bob.AutoJoinInvites()

	roomID, err := alice.CreateEncryptedRoom(ctx, "referral", bob.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if err = bob.WaitForJoin(ctx, roomID); err != nil {
		t.Fatal("the remote user did not join over federation: ", err)
	}
	// Alice's server learns of the join over federation; until then she would not share keys.
	if err = alice.WaitForJoinOf(ctx, roomID, bob.UserID); err != nil {
		t.Fatal(err)
	}
	sent, err := alice.SendText(ctx, roomID, "referral for bed 3")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := bob.WaitForMessage(ctx, func(m Message) bool { return m.EventID == sent })
	if err != nil {
		t.Fatalf("%v; decrypt errors: %v", err, bob.DecryptErrors())
	}
	if msg.Body != "referral for bed 3" || !msg.Encrypted {
		t.Fatalf("the remote user got %+v", msg)
	}
	reply, err := bob.SendText(ctx, roomID, "seen, booking")
	if err != nil {
		t.Fatal(err)
	}
	got, err := alice.WaitForMessage(ctx, func(m Message) bool { return m.EventID == reply })
	if err != nil {
		t.Fatalf("%v; decrypt errors: %v", err, alice.DecryptErrors())
	}
	if got.Body != "seen, booking" || !got.Encrypted || got.Sender != bob.UserID {
		t.Fatalf("the local user got %+v", got)
	}
}
