//go:build tools

// Package dendrite only pins the Dendrite commands that integration tests build.
package dendrite

import (
	_ "github.com/element-hq/dendrite/cmd/dendrite"
	_ "github.com/element-hq/dendrite/cmd/generate-config"
	_ "github.com/element-hq/dendrite/cmd/generate-keys"
)
