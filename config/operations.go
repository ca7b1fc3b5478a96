package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	up "go.mau.fi/util/configupgrade"
)

// CodeLimits bound the one-time code texts (toll-fraud protection); they sit under
// network.portal.
type CodeLimits struct {
	MaxCodesPerHour int `yaml:"max_codes_per_hour"` // per patient
	MaxCodesPerDay  int `yaml:"max_codes_per_day"`  // per patient
	// All patients of one clinic login together, per hour; past it staff are alerted once.
	MaxCodesPerLoginPerHour int `yaml:"max_codes_per_login_per_hour"`
}

// Operations are the settings for the people who run careline: metrics and readiness, and the
// limits on first texts from unknown numbers. They sit directly under `network:`.
type Operations struct {
	Metrics struct {
		Listen string `yaml:"listen"`
	} `yaml:"metrics"`
	Inbound struct {
		// New patients (first texts from unknown numbers) per login per hour that may open a
		// room; past it their texts are kept and bridged as places free up, and the admin is told.
		MaxNewPatientsPerHour int `yaml:"max_new_patients_per_hour"`
	} `yaml:"inbound"`
}

// Environment variables that override secrets in the config file, so they can come from a
// secrets manager; NAME_FILE names a file holding the value (Docker and systemd credentials).
const (
	IdentityKeyEnv = "CARELINE_IDENTITY_KEY"
	PickleKeyEnv   = "CARELINE_PICKLE_KEY"
)

// SecretFromEnv returns the value of the environment variable name, or the trimmed contents
// of the file named by name_FILE; ok is false when neither is set.
func SecretFromEnv(name string) (value string, ok bool, err error) {
	if v := os.Getenv(name); v != "" {
		return v, true, nil
	}
	path := os.Getenv(name + "_FILE")
	if path == "" {
		return "", false, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", false, fmt.Errorf("%s_FILE: %w", name, err)
	}
	return strings.TrimSpace(string(data)), true, nil
}

// ApplyEnv takes network.privacy.identity_key from CARELINE_IDENTITY_KEY(_FILE) when set.
func (c *Network) ApplyEnv() error {
	key, ok, err := SecretFromEnv(IdentityKeyEnv)
	if err != nil {
		return err
	}
	if ok {
		c.Privacy.IdentityKey = key
	}
	return nil
}

func (c *Network) validateOperations() []error {
	var errs []error
	l := c.Portal.CodeLimits
	if l.MaxCodesPerHour < 1 || l.MaxCodesPerHour > 60 {
		errs = append(errs, fmt.Errorf("network.portal.max_codes_per_hour must be between 1 and 60, not %d", l.MaxCodesPerHour))
	}
	if l.MaxCodesPerDay < l.MaxCodesPerHour || l.MaxCodesPerDay > 1000 {
		errs = append(errs, fmt.Errorf("network.portal.max_codes_per_day must be at least max_codes_per_hour (%d) and at most 1000, not %d",
			l.MaxCodesPerHour, l.MaxCodesPerDay))
	}
	if l.MaxCodesPerLoginPerHour < 1 {
		errs = append(errs, fmt.Errorf("network.portal.max_codes_per_login_per_hour must be at least 1, not %d", l.MaxCodesPerLoginPerHour))
	}
	if addr := c.Metrics.Listen; addr != "" {
		if host, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("network.metrics.listen %q is not host:port: %w", addr, err))
		} else if addr == c.HTTP.Listen {
			errs = append(errs, errors.New("network.metrics.listen must not be the public listener (network.http.listen): metrics are never public"))
		} else if host == "" || host == "0.0.0.0" || host == "::" {
			errs = append(errs, fmt.Errorf("network.metrics.listen %q listens on every interface: give a private address such as 127.0.0.1:29382", addr))
		}
	}
	if c.Inbound.MaxNewPatientsPerHour < 1 {
		errs = append(errs, fmt.Errorf("network.inbound.max_new_patients_per_hour must be at least 1, not %d", c.Inbound.MaxNewPatientsPerHour))
	}
	return errs
}

// MetricsEnabled reports whether the metrics listener is configured.
func (c *Network) MetricsEnabled() bool { return c.Metrics.Listen != "" }

// CodeBudgetWindow is the window of max_codes_per_login_per_hour.
const CodeBudgetWindow = time.Hour

func upgradeOperations(helper up.Helper) {
	helper.Copy(up.Bool, "delivery", "staff_plain")
	helper.Copy(up.Int, "portal", "max_codes_per_hour")
	helper.Copy(up.Int, "portal", "max_codes_per_day")
	helper.Copy(up.Int, "portal", "max_codes_per_login_per_hour")
	helper.Copy(up.Str, "metrics", "listen")
	helper.Copy(up.Int, "inbound", "max_new_patients_per_hour")
}
