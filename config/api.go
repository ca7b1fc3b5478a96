package config

import (
	"errors"
	"fmt"
	up "go.mau.fi/util/configupgrade"
	"net/url"
	"time"
)

// Reminders is network.reminders: appointment reminders from FHIR Appointments.
type Reminders struct {
	Template string          `yaml:"template"`
	Offsets  []time.Duration `yaml:"offsets"`
}

// API is network.api: the integration API and its outgoing webhooks.
type API struct {
	WebhookURL        string `yaml:"webhook_url"`
	WebhookSecret     string `yaml:"webhook_secret"`
	RequestsPerMinute int    `yaml:"requests_per_minute"`
}

// validateAPI checks network.reminders and network.api.
func (c *Network) validateAPI() []error {
	var errs []error
	if c.Reminders.Template == "" {
		errs = append(errs, errors.New("network.reminders.template is empty: name the template reminders are sent with"))
	}
	seen := map[time.Duration]bool{}
	for _, o := range c.Reminders.Offsets {
		if o < time.Minute || o > 90*24*time.Hour {
			errs = append(errs, fmt.Errorf("network.reminders.offsets: %v is not between 1m and 2160h (90 days)", o))
		}
		if seen[o] {
			errs = append(errs, fmt.Errorf("network.reminders.offsets lists %v twice", o))
		}
		seen[o] = true
	}
	if c.API.RequestsPerMinute < 1 || c.API.RequestsPerMinute > 100_000 {
		errs = append(errs, fmt.Errorf("network.api.requests_per_minute must be between 1 and 100000, not %d", c.API.RequestsPerMinute))
	}
	if c.API.WebhookURL != "" {
		if u, err := url.Parse(c.API.WebhookURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			errs = append(errs, fmt.Errorf("network.api.webhook_url %q is not an http(s) URL", c.API.WebhookURL))
		}
		if len(c.API.WebhookSecret) < 16 {
			errs = append(errs, errors.New("network.api.webhook_secret must be at least 16 characters when network.api.webhook_url is set (receivers check signatures with it)"))
		}
	}
	return errs
}

func upgradeAPI(helper up.Helper) {
	helper.Copy(up.Str, "reminders", "template")
	helper.Copy(up.List, "reminders", "offsets")
	helper.Copy(up.Str, "api", "webhook_url")
	helper.Copy(up.Str, "api", "webhook_secret")
	helper.Copy(up.Int, "api", "requests_per_minute")
}
