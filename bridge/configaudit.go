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

// permissionsSummary names each configured user or domain with the level bridgev2 gives it.
func permissionsSummary(perms bridgeconfig.PermissionConfig) string {
	keys := make([]string, 0, len(perms))
	for key := range perms {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	entries := make([]string, 0, len(keys))
	for _, key := range keys {
		p := perms[key]
		level := "none"
		switch {
		case p == nil:
		case p.Admin:
			level = "admin"
		case p.Login:
			level = "user"
		case p.SendEvents:
			level = "relay"
		case p.Commands:
			level = "commands"
		}
		entries = append(entries, key+":"+level)
	}
	return strings.Join(entries, ",")
}
