// Package config holds careline's own configuration: the `network:` section of the bridge config.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	up "go.mau.fi/util/configupgrade"
	"go.mau.fi/util/random"

	"github.com/careline/careline/atrest"
)

// ExampleConfig is the `network:` section written by `careline -e`.
//
//go:embed example-config.yaml
var ExampleConfig string

type Network struct {
	HTTP struct {
		Listen    string `yaml:"listen"`
		PublicURL string `yaml:"public_url"`
	} `yaml:"http"`
	Twilio struct {
		APIURL            string        `yaml:"api_url"`
		ConfigureWebhooks bool          `yaml:"configure_webhooks"`
		MessagesPerSecond float64       `yaml:"messages_per_second"`
		GiveUpAfter       time.Duration `yaml:"give_up_after"`
	} `yaml:"twilio"`
	ClinicName    string   `yaml:"clinic_name"`
	CareTeam      []string `yaml:"care_team"`
	DefaultRegion string   `yaml:"default_region"`
	Delivery      struct {
		DefaultMode  string `yaml:"default_mode"`
		StaffPlain   bool   `yaml:"staff_plain"`
		SecureNotice string `yaml:"secure_notice"`
		HelpReply    string `yaml:"help_reply"`
	} `yaml:"delivery"`
	Privacy struct {
		IdentityKey string `yaml:"identity_key"`
		PatientName string `yaml:"patient_name"`
	} `yaml:"privacy"`
	Storage struct {
		KeyID   string            `yaml:"key_id"`
		Key     string            `yaml:"key"`
		OldKeys map[string]string `yaml:"old_keys"`
	} `yaml:"storage"`
	Retention struct {
		Messages time.Duration `yaml:"messages"`
		Audit    time.Duration `yaml:"audit"`
	} `yaml:"retention"`
	Federation Federation `yaml:"federation"`
	Portal     struct {
		LinkLifetime    time.Duration `yaml:"link_lifetime"`
		CodeLifetime    time.Duration `yaml:"code_lifetime"`
		MaxFailures     int           `yaml:"max_failures"`
		ResendCooldown  time.Duration `yaml:"resend_cooldown"`
		IdleTimeout     time.Duration `yaml:"idle_timeout"`
		AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`
		RequireDOB      bool          `yaml:"require_dob"`
		MaxUploadBytes  int64         `yaml:"max_upload_bytes"`
		CodeLimits      `yaml:",inline"`
		PortalReminder  `yaml:",inline"`
	} `yaml:"portal"`
	Workflows  `yaml:",inline"`
	Reminders  Reminders `yaml:"reminders"`
	API        API       `yaml:"api"`
	Inbox      Inbox     `yaml:"inbox"`
	Operations `yaml:",inline"`
}

const (
	ModeSecure = "secure"
	ModePlain  = "plain"
)

// StorageKeyEnv overrides storage.key_id/storage.key, so the key can live outside the config file.
const StorageKeyEnv = "CARELINE_STORAGE_KEY"

// Validate reports every setting that would make careline misbehave, in words an admin can act on.
func (c *Network) Validate() error {
	var errs []error
	if err := c.ApplyEnv(); err != nil {
		errs = append(errs, err)
	}
	if c.HTTP.Listen == "" {
		errs = append(errs, errors.New("network.http.listen is empty"))
	}
	if u, err := url.Parse(c.HTTP.PublicURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		errs = append(errs, fmt.Errorf("network.http.public_url %q is not an http(s) URL", c.HTTP.PublicURL))
	}
	if u, err := url.Parse(c.Twilio.APIURL); err != nil || u.Host == "" {
		errs = append(errs, fmt.Errorf("network.twilio.api_url %q is not a URL", c.Twilio.APIURL))
	}
	if c.Twilio.MessagesPerSecond <= 0 {
		errs = append(errs, fmt.Errorf("network.twilio.messages_per_second must be above 0, not %v", c.Twilio.MessagesPerSecond))
	}
	if c.Twilio.GiveUpAfter < time.Minute || c.Twilio.GiveUpAfter > 10*time.Hour {
		errs = append(errs, fmt.Errorf("network.twilio.give_up_after must be between 1m and 10h, not %v", c.Twilio.GiveUpAfter))
	}
	if c.Retention.Messages < 24*time.Hour {
		errs = append(errs, fmt.Errorf("network.retention.messages must be at least 24h, not %v", c.Retention.Messages))
	}
	if c.Retention.Audit < c.Retention.Messages {
		errs = append(errs, errors.New("network.retention.audit must be at least as long as network.retention.messages"))
	}
	if c.Delivery.DefaultMode != ModeSecure && c.Delivery.DefaultMode != ModePlain {
		errs = append(errs, fmt.Errorf("network.delivery.default_mode must be secure or plain, not %q", c.Delivery.DefaultMode))
	}
	if !strings.Contains(c.Delivery.SecureNotice, "{link}") {
		errs = append(errs, errors.New("network.delivery.secure_notice must contain {link}"))
	} else if err := c.checkNoticeFits(); err != nil {
		errs = append(errs, err)
	}
	if len(c.Privacy.IdentityKey) < 32 || c.Privacy.IdentityKey == "generate" {
		errs = append(errs, errors.New("network.privacy.identity_key must be a random secret of at least 32 characters"))
	}
	if c.Portal.MaxFailures < 1 || c.Portal.MaxFailures > 10 {
		errs = append(errs, fmt.Errorf("network.portal.max_failures must be between 1 and 10, not %d", c.Portal.MaxFailures))
	}
	if _, err := c.Keyring(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Workflows.validate()...)
	errs = append(errs, c.validateAPI()...)
	errs = append(errs, c.Federation.validate()...)
	errs = append(errs, c.Inbox.validate()...)
	errs = append(errs, c.Portal.PortalReminder.validate()...)
	errs = append(errs, c.validateOperations()...)
	return errors.Join(errs...)
}

// PublicURL is public_url without a trailing slash.
func (c *Network) PublicURL() string {
	return strings.TrimRight(c.HTTP.PublicURL, "/")
}

// Keyring builds the at-rest keyring from the config, or from CARELINE_STORAGE_KEY when set.
func (c *Network) Keyring() (*atrest.Keyring, error) {
	activeID, activeKey := c.Storage.KeyID, c.Storage.Key
	env, set, err := SecretFromEnv(StorageKeyEnv)
	if err != nil {
		return nil, err
	}
	if set {
		id, key, ok := strings.Cut(env, ":")
		if !ok {
			return nil, fmt.Errorf("%s must look like id:base64key", StorageKeyEnv)
		}
		activeID, activeKey = id, key
	}
	keys := make(map[string][]byte, len(c.Storage.OldKeys)+1)
	for id, text := range c.Storage.OldKeys {
		key, err := atrest.ParseKey(text)
		if err != nil {
			return nil, fmt.Errorf("network.storage.old_keys.%s: %w", id, err)
		}
		keys[id] = key
	}
	key, err := atrest.ParseKey(activeKey)
	if err != nil {
		return nil, fmt.Errorf("network.storage.key: %w", err)
	}
	keys[activeID] = key
	return atrest.NewKeyring(activeID, keys)
}

// Upgrader carries settings over from an older config file and fills in generated secrets.
var Upgrader = up.SimpleUpgrader(upgrade)

func upgrade(helper up.Helper) {
	for _, path := range [][]string{
		{"http", "listen"}, {"http", "public_url"}, {"twilio", "api_url"}, {"twilio", "give_up_after"},
		{"clinic_name"}, {"default_region"}, {"delivery", "default_mode"}, {"delivery", "secure_notice"}, {"delivery", "help_reply"},
		{"privacy", "identity_key"}, {"privacy", "patient_name"}, {"storage", "key_id"}, {"storage", "key"},
		{"retention", "messages"}, {"retention", "audit"}, {"portal", "link_lifetime"}, {"portal", "code_lifetime"}, {"portal", "resend_cooldown"},
		{"portal", "idle_timeout"}, {"portal", "absolute_timeout"},
	} {
		helper.Copy(up.Str, path...)
	}
	helper.Copy(up.Bool, "twilio", "configure_webhooks")
	helper.Copy(up.Bool, "portal", "require_dob")
	helper.Copy(up.Int, "portal", "max_failures")
	helper.Copy(up.Float|up.Int, "twilio", "messages_per_second")
	helper.Copy(up.Int, "portal", "max_upload_bytes")
	helper.Copy(up.List, "care_team")
	helper.Copy(up.Map, "storage", "old_keys")
	upgradeWorkflows(helper)
	upgradeAPI(helper)
	upgradeFederation(helper)
	upgradeInbox(helper)
	upgradeOperations(helper)

	if key, _ := helper.Get(up.Str, "privacy", "identity_key"); key == "generate" && os.Getenv(IdentityKeyEnv) == "" && os.Getenv(IdentityKeyEnv+"_FILE") == "" {
		helper.Set(up.Str, random.String(64), "privacy", "identity_key")
	}
	if key, _ := helper.Get(up.Str, "storage", "key"); key == "generate" {
		helper.Set(up.Str, atrest.NewKey(), "storage", "key")
	}
}
