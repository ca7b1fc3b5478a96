package config

import (
	"strings"
	"testing"
	"unicode/utf8"

	up "go.mau.fi/util/configupgrade"
	"gopkg.in/yaml.v3"
)

// exampleNetwork is the example config with the secrets a real one has after `careline -e`.
func exampleNetwork(t testing.TB) *Network {
	t.Helper()
	var c Network
	if err := yaml.Unmarshal([]byte(ExampleConfig), &c); err != nil {
		t.Fatal(err)
	}
	c.Privacy.IdentityKey = strings.Repeat("k", 43)
	c.Storage.KeyID, c.Storage.Key = "k1", strings.Repeat("A", 43)+"="
	return &c
}

// upgradedNetwork runs bridgev2's config upgrader over an older network section, as a start
// with an existing config file does, and returns the section it produces.
func upgradedNetwork(t testing.TB, old string) Network {
	t.Helper()
	var base, cfg yaml.Node
	if err := yaml.Unmarshal([]byte(ExampleConfig), &base); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(old), &cfg); err != nil {
		t.Fatal(err)
	}
	Upgrader.DoUpgrade(up.NewHelper(&base, &cfg))
	out, err := yaml.Marshal(&base)
	if err != nil {
		t.Fatal(err)
	}
	var c Network
	if err = yaml.Unmarshal(out, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSecureNoticeMustFitOneSegment(t *testing.T) {
	c := exampleNetwork(t)
	if err := c.Validate(); err != nil {
		t.Fatalf("the example config does not validate: %v", err)
	}
	c.ClinicName = strings.Repeat("Saint Mary's Family Medicine ", 3)
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "one SMS holds 160") {
		t.Fatalf("a notice over 160 characters was accepted: %v", err)
	}
	// One character outside the GSM alphabet makes the whole text UCS-2, 70 characters.
	c.ClinicName = "Clínica Médica Sol" // í is not in the GSM alphabet
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "one SMS holds 70 (UCS-2") {
		t.Fatalf("a UCS-2 notice over 70 characters was accepted: %v", err)
	}
}

func TestSMSLength(t *testing.T) {
	for _, tc := range []struct {
		text          string
		length, limit int
	}{
		{"Reply STOP", 10, 160},
		{"Café à 5€", 10, 160}, // é and à are GSM; € counts twice
		{"Clínica", 7, 70},
		{"📅 tomorrow", 11, 70}, // an emoji is two UTF-16 units
	} {
		if length, limit, _ := SMSLength(tc.text); length != tc.length || limit != tc.limit {
			t.Errorf("SMSLength(%q) = %d/%d, want %d/%d", tc.text, length, limit, tc.length, tc.limit)
		}
	}
}

// FuzzSecureNotice: whatever the clinic name and the text around {link}, the rendered notice
// is exactly the template with the clinic name and the link filled in (so nothing else, and
// no placeholder a clinic name brings, gets in), the link is there once, verbatim; the config
// check refuses the template without {link}; and the length counter never undercounts.
// (The HELP reply is sent as configured, with nothing filled in: there is no render to fuzz.)
func FuzzSecureNotice(f *testing.F) {
	f.Add("Sunrise Clinic", "{clinic} sent you a secure message: ", " Reply STOP to opt out.")
	f.Add("{link}{clinic}", "", "")
	f.Add("Clínica €", "{clinic}: {clinic} ", "{")
	f.Add("x", "{lin", "k}{clinic")
	base := exampleNetwork(f)
	f.Fuzz(func(t *testing.T, clinic, before, after string) {
		if strings.Contains(before+after, "{link}") {
			t.Skip("the template has one {link}")
		}
		link := "https://texts.example.org/l/" + strings.Repeat("A", linkTokenLen)
		c := *base
		c.ClinicName = clinic
		c.Delivery.SecureNotice = before + "{link}" + after
		out := c.SecureNotice(link)
		want := strings.ReplaceAll(before, "{clinic}", clinic) + link + strings.ReplaceAll(after, "{clinic}", clinic)
		if out != want {
			t.Fatalf("rendered %q, want %q", out, want)
		}
		// The link has a "/" and no part of it is also its start, so without a "/" around it
		// nothing can form a second copy.
		if !strings.Contains(clinic+before+after, "/") && strings.Count(out, link) != 1 {
			t.Fatalf("the link is not in %q exactly once", out)
		}
		if err := c.Validate(); err != nil && strings.Contains(err.Error(), "must contain {link}") {
			t.Fatalf("a template with {link} was refused: %v", err)
		}
		c.Delivery.SecureNotice = before + after
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "must contain {link}") {
			t.Fatalf("the template %q without {link} was accepted: %v", before+after, err)
		}

		length, limit, _ := SMSLength(out)
		if limit != 70 && limit != 160 || length < utf8.RuneCountInString(out) && utf8.ValidString(out) {
			t.Fatalf("SMSLength(%q) = %d of %d, fewer than its %d characters", out, length, limit, utf8.RuneCountInString(out))
		}
	})
}
