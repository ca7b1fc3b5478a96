package bridge

import (
	"context"
	"testing"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// A room sync while the patient cannot be read fails instead of renaming the room and the
// patient's ghost "Patient ···????" until the next sync; a patient read gives their name.
func TestChatInfoNamesOnlyFromARead(t *testing.T) {
	f := newInboundFixture(t)
	ctx := context.Background()
	if _, err := f.store.GetOrCreatePatient(ctx, "p1", "L", testPatient); err != nil {
		t.Fatal(err)
	}
	portal := &bridgev2.Portal{Portal: &database.Portal{PortalKey: networkid.PortalKey{ID: "p1", Receiver: "L"}}}
	ghost := &bridgev2.Ghost{Ghost: &database.Ghost{ID: "p1"}}
	want := "Patient ···" + testPatient[len(testPatient)-4:]
	info, err := f.client.GetChatInfo(ctx, portal)
	if err != nil || info.Name == nil || *info.Name != want {
		t.Fatalf("room name: %v (%v), want %q", info, err, want)
	}
	user, err := f.client.GetUserInfo(ctx, ghost)
	if err != nil || user.Name == nil || *user.Name != want {
		t.Fatalf("ghost name: %v (%v), want %q", user, err, want)
	}

	if err = f.store.DB.Close(); err != nil { // every read fails from here on
		t.Fatal(err)
	}
	if info, err = f.client.GetChatInfo(ctx, portal); err == nil {
		t.Fatalf("room info with the patient unreadable: name %q, want an error", *info.Name)
	}
	if user, err = f.client.GetUserInfo(ctx, ghost); err == nil {
		t.Fatalf("ghost info with the patient unreadable: name %q, want an error", *user.Name)
	}
}
