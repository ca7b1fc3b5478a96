package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix/bridgev2/bridgeconfig"

	"github.com/careline/careline/atrest"
	"github.com/careline/careline/config"
)

const composeDir = "../../deploy/compose"

// composeConfig is careline's example config with the compose example's overrides applied.
func composeConfig(t *testing.T) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(exampleConfig(t)), &doc); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(composeDir, "careline-overrides.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var overrides yaml.Node
	if err = yaml.Unmarshal(data, &overrides); err != nil {
		t.Fatal(err)
	}
	pairs := overrides.Content[0].Content
	for i := 0; i < len(pairs); i += 2 {
		path := strings.Split(pairs[i].Value, ".")
		node := doc.Content[0]
		for _, key := range path {
			j := slices.IndexFunc(node.Content, func(n *yaml.Node) bool { return n.Value == key })
			if node.Kind != yaml.MappingNode || j < 0 || j%2 != 0 {
				t.Fatalf("careline-overrides.yaml: %s is not a key of the example config", pairs[i].Value)
			}
			node = node.Content[j+1]
		}
		value := pairs[i+1]
		node.Kind, node.Tag, node.Value, node.Content, node.Style = value.Kind, value.Tag, value.Value, value.Content, value.Style
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(4)
	if err = enc.Encode(&doc); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The compose example's careline config is the example config with the documented overrides,
// and it validates with the secrets compose gives careline from files.
func TestComposeConfigIsCurrent(t *testing.T) {
	want := composeConfig(t)
	path := filepath.Join(composeDir, "careline-config.yaml")
	if os.Getenv("CARELINE_UPDATE_COMPOSE") != "" {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("deploy/compose/careline-config.yaml is out of date: run `make example-config`")
	}
	var cfg struct {
		Network  config.Network `yaml:"network"`
		Database struct {
			Type string `yaml:"type"`
		} `yaml:"database"`
		Bridge struct {
			Permissions map[string]string `yaml:"permissions"`
		} `yaml:"bridge"`
	}
	if err = yaml.Unmarshal(got, &cfg); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, value := range map[string]string{"identity": strings.Repeat("i", 64), "storage": "k1:" + atrest.NewKey()} {
		if err = os.WriteFile(filepath.Join(dir, name), []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(config.IdentityKeyEnv+"_FILE", filepath.Join(dir, "identity"))
	t.Setenv(config.StorageKeyEnv+"_FILE", filepath.Join(dir, "storage"))
	if err = cfg.Network.Validate(); err != nil {
		t.Fatalf("the compose config does not validate: %v", err)
	}
	var bridgeCfg bridgeconfig.Config
	if err = yaml.Unmarshal(got, &bridgeCfg); err != nil {
		t.Fatal(err)
	}
	if _, err = bridgeSettings(&bridgeCfg, false); err != nil {
		t.Fatalf("careline would refuse the compose config: %v", err)
	}
	if cfg.Database.Type != "postgres" || cfg.Bridge.Permissions["*"] != "" || cfg.Network.Metrics.Listen == "" {
		t.Fatalf("compose config: database %q, permissions %v, metrics %q", cfg.Database.Type, cfg.Bridge.Permissions, cfg.Network.Metrics.Listen)
	}
}

// compose.yaml parses; only the reverse proxy publishes ports, and it forwards only to
// careline's public listener (never the appservice port or the metrics listener).
func TestComposeFileExposesOnlyThePublicListener(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(composeDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       string            `yaml:"build"`
			Ports       []string          `yaml:"ports"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
		Secrets map[string]struct {
			File string `yaml:"file"`
		} `yaml:"secrets"`
	}
	if err = yaml.Unmarshal(data, &compose); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"careline", "postgres", "synapse", "caddy"} {
		if _, ok := compose.Services[name]; !ok {
			t.Fatalf("compose.yaml has no %s service", name)
		}
	}
	for name, s := range compose.Services {
		if len(s.Ports) > 0 && name != "caddy" {
			t.Errorf("%s publishes ports %v: only the reverse proxy may", name, s.Ports)
		}
	}
	for _, env := range []string{config.StorageKeyEnv, config.IdentityKeyEnv, config.PickleKeyEnv} {
		if _, ok := compose.Services["careline"].Environment[env+"_FILE"]; !ok {
			t.Errorf("careline's %s_FILE is not set", env)
		}
	}
	caddy, err := os.ReadFile(filepath.Join(composeDir, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(caddy), "reverse_proxy careline:29380") {
		t.Error("the Caddyfile does not forward to careline's public listener")
	}
	for _, private := range []string{"29381", "29382"} {
		if strings.Contains(string(caddy), private) {
			t.Errorf("the Caddyfile forwards to careline's private port %s", private)
		}
	}
}
