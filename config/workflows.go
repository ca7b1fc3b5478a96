package config

import (
	"errors"
	"fmt"
	"slices"
	"time"
	_ "time/tzdata" // time zones work in images without /usr/share/zoneinfo

	up "go.mau.fi/util/configupgrade"

	"github.com/careline/careline/officehours"
	"github.com/careline/careline/template"
)

// Workflows are the settings of the clinic workflows: templates, office hours, missed calls.
// They sit directly under `network:`.
type Workflows struct {
	Timezone    string                    `yaml:"timezone"`
	Templates   map[string]TemplateConfig `yaml:"templates"`
	OfficeHours OfficeHoursConfig         `yaml:"office_hours"`
	MissedCalls MissedCallsConfig         `yaml:"missed_calls"`

	// Filled by Validate.
	location  *time.Location
	templates *template.Set
	hours     *officehours.Hours
}

// TemplateConfig is one template as written in the config. Sensitive defaults to true.
type TemplateConfig struct {
	Body      string `yaml:"body"`
	Sensitive *bool  `yaml:"sensitive"`
}

// OfficeHoursConfig is network.office_hours; with no weekly ranges the clinic is always open
// and nothing is auto-replied.
type OfficeHoursConfig struct {
	Weekly         map[string]string `yaml:"weekly"`
	ClosedDates    []string          `yaml:"closed_dates"`
	AutoReply      string            `yaml:"auto_reply"`
	AutoReplyEvery time.Duration     `yaml:"auto_reply_every"`
}

// MissedCallsConfig is network.missed_calls.
type MissedCallsConfig struct {
	Enabled   bool          `yaml:"enabled"`
	Say       string        `yaml:"say"`
	Text      string        `yaml:"text"`
	TextEvery time.Duration `yaml:"text_every"`
}

// Location is the clinic's time zone (valid after Validate).
func (w *Workflows) Location() *time.Location {
	if w.location == nil {
		return time.UTC
	}
	return w.location
}

// TemplateSet is the parsed templates (valid after Validate).
func (w *Workflows) TemplateSet() *template.Set { return w.templates }

// Hours is the parsed office hours, nil when always open (valid after Validate).
func (w *Workflows) Hours() *officehours.Hours { return w.hours }

// onlyClinic checks a text careline fills with {clinic} alone.
func onlyClinic(key, text string) error {
	t, err := template.Parse(key, text, false)
	if err != nil {
		return fmt.Errorf("network.%s: %w", key, err)
	}
	for _, p := range t.Placeholders() {
		if p != "clinic" {
			return fmt.Errorf("network.%s: only {clinic} can be filled in here, not {%s}", key, p)
		}
	}
	return nil
}

func (w *Workflows) validate() []error {
	var errs []error
	loc, err := time.LoadLocation(w.Timezone)
	if err != nil || w.Timezone == "" {
		errs = append(errs, fmt.Errorf("network.timezone %q is not a time zone name like America/New_York", w.Timezone))
	} else {
		w.location = loc
	}
	defs := make(map[string]template.Definition, len(w.Templates))
	for name, tc := range w.Templates {
		defs[name] = template.Definition{Body: tc.Body, Sensitive: tc.Sensitive == nil || *tc.Sensitive}
	}
	if w.templates, err = template.NewSet(defs); err != nil {
		errs = append(errs, fmt.Errorf("network.templates: %w", err))
	}
	if oh := w.OfficeHours; len(oh.Weekly) > 0 {
		if w.hours, err = officehours.Parse(w.Location(), oh.Weekly, oh.ClosedDates); err != nil {
			errs = append(errs, fmt.Errorf("network.office_hours.%w", err))
		}
		if oh.AutoReply != "" {
			if err = onlyClinic("office_hours.auto_reply", oh.AutoReply); err != nil {
				errs = append(errs, err)
			}
		}
		if oh.AutoReplyEvery < time.Minute {
			errs = append(errs, fmt.Errorf("network.office_hours.auto_reply_every must be at least 1m, not %v", oh.AutoReplyEvery))
		}
	} else if len(oh.ClosedDates) > 0 {
		errs = append(errs, errors.New("network.office_hours.closed_dates needs office_hours.weekly: with no weekly hours the clinic counts as always open"))
	}
	if mc := w.MissedCalls; mc.Enabled {
		if mc.Say == "" {
			errs = append(errs, errors.New("network.missed_calls.say is empty: say something to a caller"))
		} else if err = onlyClinic("missed_calls.say", mc.Say); err != nil {
			errs = append(errs, err)
		}
		if mc.Text != "" {
			if err = onlyClinic("missed_calls.text", mc.Text); err != nil {
				errs = append(errs, err)
			}
		}
		if mc.TextEvery < time.Minute {
			errs = append(errs, fmt.Errorf("network.missed_calls.text_every must be at least 1m, not %v", mc.TextEvery))
		}
	}
	return errs
}

// TemplateNames lists the configured templates (for the settings audit).
func (w *Workflows) TemplateNames() []string {
	names := make([]string, 0, len(w.Templates))
	for name := range w.Templates {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func upgradeWorkflows(helper up.Helper) {
	helper.Copy(up.Str, "timezone")
	helper.Copy(up.Map, "templates")
	helper.Copy(up.Map, "office_hours", "weekly")
	helper.Copy(up.List, "office_hours", "closed_dates")
	helper.Copy(up.Str, "office_hours", "auto_reply")
	helper.Copy(up.Str, "office_hours", "auto_reply_every")
	helper.Copy(up.Bool, "missed_calls", "enabled")
	helper.Copy(up.Str, "missed_calls", "say")
	helper.Copy(up.Str, "missed_calls", "text")
	helper.Copy(up.Str, "missed_calls", "text_every")
}
