package main

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"
)

func TestDefaultsApplied(t *testing.T) {
	// init already applied them; applying again must fail, proving each line was replaced once.
	if _, err := applyDefaults(mxmain.MatrixExampleConfigBase); err == nil {
		t.Fatal("defaults could be applied twice: init did not apply them")
	}
	for _, want := range []string{"type: sqlite3-fk-wal", "allow: true", "require: true", "portal_event_buffer: 0", "max_idle_conns: 5"} {
		if !strings.Contains(mxmain.MatrixExampleConfigBase, want) {
			t.Errorf("example config lacks %q", want)
		}
	}
}

func TestExampleConfigFileIsCurrent(t *testing.T) {
	want, err := exampleConfig()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../example-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("example-config.yaml is out of date: run `go run -tags goolm ./cmd/careline -e -c - > example-config.yaml`")
	}
	for _, want := range []string{"    allow: true", "    require: true", "clinic_name:", "type: sqlite3-fk-wal"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("example config lacks %q", want)
		}
	}
	// No one is given a level by default: "*": relay would let anyone a staff member invites
	// text patients in the clinic's name.
	var cfg struct {
		Bridge struct {
			Permissions map[string]string `yaml:"permissions"`
		} `yaml:"bridge"`
	}
	if err = yaml.Unmarshal(got, &cfg); err != nil {
		t.Fatal(err)
	}
	if level, ok := cfg.Bridge.Permissions["*"]; ok {
		t.Errorf("the example config gives everyone %q", level)
	}
}

func TestExampleConfigPath(t *testing.T) {
	if p, ok := exampleConfigPath([]string{"-e", "-c", "x.yaml"}); !ok || p != "x.yaml" {
		t.Fatal(p, ok)
	}
	if _, ok := exampleConfigPath([]string{"-c", "x.yaml"}); ok {
		t.Fatal("-e detected without -e")
	}
}
