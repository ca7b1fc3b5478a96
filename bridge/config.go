package bridge

import (
	up "go.mau.fi/util/configupgrade"

	"github.com/careline/careline/config"
)

func (c *Connector) GetConfig() (example string, data any, upgrader up.Upgrader) {
	return config.ExampleConfig, &c.Config, config.Upgrader
}

func (c *Connector) ValidateConfig() error {
	return c.Config.Validate()
}
