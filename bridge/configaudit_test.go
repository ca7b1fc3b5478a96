package bridge

import (
	"testing"

	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
)

func TestPermissionsSummaryNamesEachEntryWithItsLevel(t *testing.T) {
	got := permissionsSummary(bridgeconfig.PermissionConfig{
		"partner.example":         {SendEvents: true, Commands: true},
		"clinic.example":          {SendEvents: true, Commands: true, Login: true},
		"@it:clinic.example":      {SendEvents: true, Commands: true, Login: true, Admin: true},
		"*":                       {Commands: true},
		"@blocked:clinic.example": {},
	})
	want := "*:commands,@blocked:clinic.example:none,@it:clinic.example:admin,clinic.example:user,partner.example:relay"
	if got != want {
		t.Fatalf("permissionsSummary = %q, want %q", got, want)
	}
}
