package bridge

import (
	"testing"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"
)

// Each entry is named with bridgev2's own level name, as an admin wrote it in the config
// (an entry at "commands" was once recorded as "relay").
func TestPermissionsSummaryUsesBridgev2LevelNames(t *testing.T) {
	var perms bridgeconfig.PermissionConfig
	err := yaml.Unmarshal([]byte(`
"partner.example": commands
"clinic.example": user
"@it:clinic.example": admin
"visitor.example": relay
"@blocked:clinic.example": block
"@odd:clinic.example": {send_events: true, login: true}
`), &perms)
	if err != nil {
		t.Fatal(err)
	}
	got := permissionsSummary(perms)
	want := "@blocked:clinic.example:block,@it:clinic.example:admin,@odd:clinic.example:{login+send_events}," +
		"clinic.example:user,partner.example:commands,visitor.example:relay"
	if got != want {
		t.Fatalf("permissionsSummary =\n %q, want\n %q", got, want)
	}
}
