package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOperationsSettingsRefusedNamingTheKey(t *testing.T) {
	for _, tc := range []struct {
		edit func(c *Network)
		want string
	}{
		{func(c *Network) { c.Portal.MaxCodesPerHour = 0 }, "network.portal.max_codes_per_hour"},
		{func(c *Network) { c.Portal.MaxCodesPerDay = 2 }, "network.portal.max_codes_per_day"},
		{func(c *Network) { c.Portal.MaxCodesPerLoginPerHour = 0 }, "network.portal.max_codes_per_login_per_hour"},
		{func(c *Network) { c.Metrics.Listen = "29382" }, "network.metrics.listen"},
		{func(c *Network) { c.Metrics.Listen = "0.0.0.0:29382" }, "network.metrics.listen \"0.0.0.0:29382\" listens on every interface"},
		{func(c *Network) { c.Metrics.Listen = c.HTTP.Listen }, "network.metrics.listen must not be the public listener"},
		{func(c *Network) { c.Inbound.MaxNewPatientsPerHour = 0 }, "network.inbound.max_new_patients_per_hour"},
	} {
		c := exampleNetwork(t)
		tc.edit(c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want it to name %s", err, tc.want)
		}
	}
	c := exampleNetwork(t)
	c.Metrics.Listen = "127.0.0.1:29382"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Delivery.StaffPlain || c.Portal.MaxCodesPerHour != 5 || c.Portal.MaxCodesPerDay != 10 {
		t.Errorf("defaults: staff_plain %v, codes %d/h %d/day", c.Delivery.StaffPlain, c.Portal.MaxCodesPerHour, c.Portal.MaxCodesPerDay)
	}
}

func TestUpgraderKeepsOperationsSettings(t *testing.T) {
	old := `
delivery:
    staff_plain: true
portal:
    max_codes_per_hour: 3
    max_codes_per_day: 6
    max_codes_per_login_per_hour: 50
metrics:
    listen: 127.0.0.1:9100
inbound:
    max_new_patients_per_hour: 7
`
	c := upgradedNetwork(t, old)
	if !c.Delivery.StaffPlain || c.Portal.MaxCodesPerHour != 3 || c.Portal.MaxCodesPerDay != 6 || c.Portal.MaxCodesPerLoginPerHour != 50 ||
		c.Metrics.Listen != "127.0.0.1:9100" || c.Inbound.MaxNewPatientsPerHour != 7 {
		t.Errorf("settings lost: %+v %+v %+v %+v", c.Delivery, c.Portal.CodeLimits, c.Metrics, c.Inbound)
	}
}

// Secrets come from the environment or a file as well as from the config.
func TestSecretsFromEnvironmentAndFiles(t *testing.T) {
	dir := t.TempDir()
	identity := strings.Repeat("i", 40)
	if err := os.WriteFile(filepath.Join(dir, "identity"), []byte(identity+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(IdentityKeyEnv+"_FILE", filepath.Join(dir, "identity"))
	c := exampleNetwork(t)
	c.Privacy.IdentityKey = "generate"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Privacy.IdentityKey != identity {
		t.Fatalf("identity key %q, want the file's", c.Privacy.IdentityKey)
	}
	t.Setenv(IdentityKeyEnv, "short")
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "network.privacy.identity_key") {
		t.Fatalf("a short key from the environment: %v", err)
	}
	t.Setenv(IdentityKeyEnv, "")
	t.Setenv(IdentityKeyEnv+"_FILE", filepath.Join(dir, "missing"))
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), IdentityKeyEnv+"_FILE") {
		t.Fatalf("a missing key file: %v", err)
	}
	t.Setenv(IdentityKeyEnv+"_FILE", "")

	storage := "k9:" + strings.Repeat("A", 43) + "="
	if err := os.WriteFile(filepath.Join(dir, "storage"), []byte(storage), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(StorageKeyEnv+"_FILE", filepath.Join(dir, "storage"))
	ring, err := exampleNetwork(t).Keyring()
	if err != nil {
		t.Fatal(err)
	}
	if id := ring.ActiveKeyID(); id != "k9" {
		t.Fatalf("active key %q, want the file's k9", id)
	}
	if v, ok, err := SecretFromEnv(PickleKeyEnv); ok || err != nil || v != "" {
		t.Fatalf("unset pickle key: %q %v %v", v, ok, err)
	}
}
