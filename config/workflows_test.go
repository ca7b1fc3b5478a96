package config

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestWorkflowSettingsRefusedNamingTheKey(t *testing.T) {
	for _, tc := range []struct {
		edit func(c *Network)
		want string
	}{
		{func(c *Network) { c.Timezone = "Mars/Olympus" }, "network.timezone"},
		{func(c *Network) {
			c.Templates = map[string]TemplateConfig{"lab_ready": {Body: "Hi {first name}"}}
		}, `network.templates: template "lab_ready"`},
		{func(c *Network) { c.OfficeHours.Weekly = map[string]string{"mon": "9-5"} }, "network.office_hours.weekly.mon"},
		{func(c *Network) {
			c.OfficeHours.Weekly = map[string]string{"mon": "09:00-17:00"}
			c.OfficeHours.AutoReply = "Hi {first_name}, we are closed"
		}, "network.office_hours.auto_reply: only {clinic}"},
		{func(c *Network) { c.OfficeHours.ClosedDates = []string{"2026-12-25"} }, "network.office_hours.closed_dates needs"},
		{func(c *Network) { c.MissedCalls.Enabled, c.MissedCalls.Say = true, "" }, "network.missed_calls.say"},
		{func(c *Network) { c.MissedCalls.Enabled, c.MissedCalls.TextEvery = true, 0 }, "network.missed_calls.text_every"},
	} {
		c := exampleNetwork(t)
		tc.edit(c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want it to name %s", err, tc.want)
		}
	}
	c := exampleNetwork(t)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Hours() != nil || c.Location().String() != "America/New_York" || len(c.TemplateSet().Names()) != 0 {
		t.Errorf("example: hours %v, zone %v", c.Hours(), c.Location())
	}
	no := false
	c.Templates = map[string]TemplateConfig{"closure": {Body: "{clinic} is closed", Sensitive: &no}, "lab": {Body: "x"}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.TemplateSet().Get("closure").Sensitive || !c.TemplateSet().Get("lab").Sensitive {
		t.Error("sensitive should default to true and honour false")
	}
}

// The commented examples in the example config must be valid templates once uncommented.
func TestCommentedTemplateExamplesAreValid(t *testing.T) {
	var lines []string
	in := false
	for _, line := range strings.Split(ExampleConfig, "\n") {
		switch {
		case line == "#templates:":
			in = true
			lines = append(lines, "templates:")
		case in && strings.HasPrefix(line, "#    "):
			lines = append(lines, strings.TrimPrefix(line, "#"))
		case in:
			in = false
		}
	}
	var c Network
	if err := yaml.Unmarshal([]byte(strings.Join(lines, "\n")), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Templates) != 6 {
		t.Fatalf("%d examples", len(c.Templates))
	}
	c.Timezone = "UTC"
	if errs := c.Workflows.validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
}

// What an admin wrote survives careline's config upgrader.
func TestUpgraderKeepsWorkflowSettings(t *testing.T) {
	old := `
timezone: Europe/Berlin
templates:
    lab_ready:
        body: "Hi {first_name}, results from {clinic}."
        sensitive: false
office_hours:
    weekly: {mon: "08:00-17:00", tue: "08:00-12:00,13:00-17:00"}
    closed_dates: ["2026-12-25"]
    auto_reply: "{clinic} is closed."
    auto_reply_every: 6h
missed_calls:
    enabled: true
    say: "Hello from {clinic}."
    text: "{clinic} missed your call."
    text_every: 2h
`
	c := upgradedNetwork(t, old)
	if c.Timezone != "Europe/Berlin" || c.Templates["lab_ready"].Body != "Hi {first_name}, results from {clinic}." ||
		c.Templates["lab_ready"].Sensitive == nil || *c.Templates["lab_ready"].Sensitive {
		t.Errorf("templates or zone lost: %+v %q", c.Templates, c.Timezone)
	}
	oh := c.OfficeHours
	if oh.Weekly["tue"] != "08:00-12:00,13:00-17:00" || len(oh.ClosedDates) != 1 || oh.AutoReply != "{clinic} is closed." || oh.AutoReplyEvery != 6*time.Hour {
		t.Errorf("office hours lost: %+v", oh)
	}
	mc := c.MissedCalls
	if !mc.Enabled || mc.Say != "Hello from {clinic}." || mc.Text != "{clinic} missed your call." || mc.TextEvery != 2*time.Hour {
		t.Errorf("missed calls lost: %+v", mc)
	}
}
