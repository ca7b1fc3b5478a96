package config

import (
	"fmt"
	"strings"

	up "go.mau.fi/util/configupgrade"
)

// Federation is the `network.federation` section: partner clinics on other homeservers.
type Federation struct {
	// Clinics maps a partner's server name to the clinic name patients see after a partner's
	// name ("Dr. Ortiz, Valley Cardiology"). A server not listed is shown by its name.
	Clinics map[string]string `yaml:"clinics"`
	// HistoryVisibility is what a partner invited with invite-partner can read of the room's
	// earlier events: invited (from their invite), joined (from their join) or shared (all).
	HistoryVisibility string `yaml:"history_visibility"`
}

// Room history visibilities a partner's invite may set (m.room.history_visibility values;
// world_readable is never allowed for a patient's room).
var historyVisibilities = []string{"invited", "joined", "shared"}

func (f *Federation) validate() []error {
	var errs []error
	for server, clinic := range f.Clinics {
		if !validServerName(server) {
			errs = append(errs, fmt.Errorf("network.federation.clinics: %q is not a Matrix server name (like cardio.example or cardio.example:8448)", server))
		}
		if strings.TrimSpace(clinic) == "" {
			errs = append(errs, fmt.Errorf("network.federation.clinics.%s: the clinic name is empty", server))
		}
	}
	valid := false
	for _, v := range historyVisibilities {
		valid = valid || f.HistoryVisibility == v
	}
	if !valid {
		errs = append(errs, fmt.Errorf("network.federation.history_visibility must be one of %s, not %q",
			strings.Join(historyVisibilities, ", "), f.HistoryVisibility))
	}
	return errs
}

// ClinicOf is the clinic name for a partner's server: its entry in clinics, else the server name.
func (f *Federation) ClinicOf(server string) string {
	if name := f.Clinics[server]; name != "" {
		return name
	}
	return server
}

// validServerName is a loose check of a Matrix server name: a host name or IP literal, and an
// optional port; enough to catch a user ID or a URL pasted as a key.
func validServerName(name string) bool {
	if name == "" || strings.ContainsAny(name, "@/ \t") {
		return false
	}
	host := name
	if strings.HasPrefix(name, "[") { // IPv6 literal
		end := strings.Index(name, "]")
		if end < 0 {
			return false
		}
		host, name = name[:end+1], name[end+1:]
		if name != "" && !strings.HasPrefix(name, ":") {
			return false
		}
		name = strings.TrimPrefix(name, ":")
		return host != "[]" && (name == "" || isPort(name))
	}
	host, port, hasPort := strings.Cut(name, ":")
	return host != "" && (!hasPort || isPort(port))
}

func isPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func upgradeFederation(helper up.Helper) {
	helper.Copy(up.Map, "federation", "clinics")
	helper.Copy(up.Str, "federation", "history_visibility")
}
