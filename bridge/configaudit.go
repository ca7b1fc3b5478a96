package bridge

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"maunium.net/go/mautrix/bridgev2/bridgeconfig"

	"github.com/careline/careline/audit"
)

// auditSettings records, at every start, the settings a privacy officer reviews: how messages
// go out, how long content and the audit trail are kept, who may use the bridge, and whether
// rooms must be encrypted. Between two entries an admin changed the configuration.
func (c *Connector) auditSettings(ctx context.Context) {
	c.audit(ctx, audit.Entry{Actor: "system", Action: "config.loaded", Detail: truncate(c.settingsSummary(), audit.MaxFieldLen)})
}

func (c *Connector) settingsSummary() string {
	parts := []string{
		"delivery.default_mode=" + c.Config.Delivery.DefaultMode,
		"retention.messages=" + c.Config.Retention.Messages.String(),
		"retention.audit=" + c.Config.Retention.Audit.String(),
		fmt.Sprintf("care_team=%d", len(c.Config.CareTeam)),
	}
	if c.Bridge != nil && c.Bridge.Config != nil {
		parts = append(parts, "permissions="+permissionsSummary(c.Bridge.Config.Permissions))
	}
	return strings.Join(parts, " ")
}

// permissionsSummary names each configured user or domain with the level bridgev2 gives it,
// by bridgev2's own level names (block, relay, commands, user, admin); an entry written as a
// map of flags that matches no level is listed by its flags.
func permissionsSummary(perms bridgeconfig.PermissionConfig) string {
	keys := make([]string, 0, len(perms))
	for key := range perms {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	entries := make([]string, 0, len(keys))
	for _, key := range keys {
		entries = append(entries, key+":"+LevelName(perms[key]))
	}
	return strings.Join(entries, ",")
}

var permissionLevels = []struct {
	name  string
	level bridgeconfig.Permissions
}{
	{"block", bridgeconfig.PermissionLevelBlock},
	{"relay", bridgeconfig.PermissionLevelRelay},
	{"commands", bridgeconfig.PermissionLevelCommands},
	{"user", bridgeconfig.PermissionLevelUser},
	{"admin", bridgeconfig.PermissionLevelAdmin},
}

// LevelName is bridgev2's name of a permission level (block, relay, commands, user, admin), or
// the flags of an entry that matches none, e.g. "{commands+send_events}".
func LevelName(p *bridgeconfig.Permissions) string {
	if p == nil {
		return "block"
	}
	for _, l := range permissionLevels {
		if *p == l.level {
			return l.name
		}
	}
	var flags []string
	for name, on := range map[string]bool{"send_events": p.SendEvents, "commands": p.Commands, "login": p.Login,
		"double_puppet": p.DoublePuppet, "admin": p.Admin, "manage_relay": p.ManageRelay} {
		if on {
			flags = append(flags, name)
		}
	}
	slices.Sort(flags)
	return "{" + strings.Join(flags, "+") + "}"
}
