package main

import (
	"fmt"
	"strings"

	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"
)

// carelineDefaults changes bridgev2's example config where careline needs other defaults.
// Each pair is (bridgev2's line, careline's line); a line that is not found is an error, so a
// mautrix upgrade that moves one cannot silently drop a default.
var carelineDefaults = [][2]string{
	// Embedded SQLite by default; PostgreSQL for production (see README).
	{"    type: postgres\n", "    type: sqlite3-fk-wal\n"},
	{"    uri: postgres://user:password@host/database?sslmode=disable\n", "    uri: file:careline.db?_txlock=immediate\n"},
	// One idle connection makes PostgreSQL reconnect for nearly every query under load
	// (measured 130 vs 464 inbound messages/s at 1 and 5 idle connections).
	{"    max_idle_conns: 1\n", "    max_idle_conns: 5\n"},
	// Rooms are always end-to-end encrypted.
	{"    allow: false\n    # Whether to force-enable encryption in all bridged rooms.\n    default: false\n",
		"    allow: true\n    # Whether to force-enable encryption in all bridged rooms.\n    default: true\n"},
	{"    require: false\n", "    require: true\n"},
	// careline's durable inbox needs bridgev2 to handle each event before reporting success.
	{"    portal_event_buffer: 64\n", "    portal_event_buffer: 0\n"},
	// careline tells the patient who wrote ("Dr. Lee, Sunrise Clinic") itself.
	{`            m.text: "<b>{{ .Sender.DisambiguatedName }}</b>: {{ .Message }}"`, `            m.text: "{{ .Message }}"`},
	{`            m.notice: "<b>{{ .Sender.DisambiguatedName }}</b>: {{ .Message }}"`, `            m.notice: "{{ .Message }}"`},
	// No "*": relay entry: with it anyone a staff member invites into a patient's room could
	// text the patient in the clinic's name. Admins list their own domain and partners.
	{"        \"*\": relay\n", ""},
	// Delivered/failed statuses reach staff clients that show them.
	{"    message_status_events: false\n", "    message_status_events: true\n"},
}

func applyDefaults(base string) (string, error) {
	for _, pair := range carelineDefaults {
		if !strings.Contains(base, pair[0]) {
			return "", fmt.Errorf("bridgev2's example config no longer contains %q", strings.TrimSpace(pair[0]))
		}
		base = strings.Replace(base, pair[0], pair[1], 1)
	}
	return base, nil
}

func init() {
	base, err := applyDefaults(mxmain.MatrixExampleConfigBase)
	if err != nil {
		panic(err)
	}
	mxmain.MatrixExampleConfigBase = base
}
