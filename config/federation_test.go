package config

import (
	"strings"
	"testing"
)

func TestFederationConfig(t *testing.T) {
	c := exampleNetwork(t)
	if c.Federation.HistoryVisibility != "invited" || c.Federation.Clinics == nil {
		t.Fatalf("example federation section: %+v", c.Federation)
	}
	c.Federation.Clinics = map[string]string{"cardio.example": "Valley Cardiology", "127.0.0.1:8448": "Loopback Clinic", "[::1]:8448": "Six"}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid partner clinics refused: %v", err)
	}
	if got := c.Federation.ClinicOf("cardio.example"); got != "Valley Cardiology" {
		t.Errorf("ClinicOf(listed) = %q", got)
	}
	if got := c.Federation.ClinicOf("other.example"); got != "other.example" {
		t.Errorf("ClinicOf(unlisted) = %q, want the server name", got)
	}
	for _, bad := range []struct {
		edit func(*Federation)
		want string
	}{
		{func(f *Federation) { f.Clinics = map[string]string{"@ortiz:cardio.example": "Valley"} }, `network.federation.clinics: "@ortiz:cardio.example" is not a Matrix server name`},
		{func(f *Federation) { f.Clinics = map[string]string{"https://cardio.example": "Valley"} }, "is not a Matrix server name"},
		{func(f *Federation) { f.Clinics = map[string]string{"cardio.example:port": "Valley"} }, "is not a Matrix server name"},
		{func(f *Federation) { f.Clinics = map[string]string{"cardio.example": " "} }, "network.federation.clinics.cardio.example: the clinic name is empty"},
		{func(f *Federation) { f.HistoryVisibility = "world_readable" }, `network.federation.history_visibility must be one of invited, joined, shared, not "world_readable"`},
		{func(f *Federation) { f.HistoryVisibility = "" }, "network.federation.history_visibility must be one of"},
	} {
		c := exampleNetwork(t)
		bad.edit(&c.Federation)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Validate() = %v, want an error containing %q", err, bad.want)
		}
	}
}
