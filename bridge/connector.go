// Package bridge is careline's bridgev2 network connector: a clinic's Twilio number is a login,
// each patient a ghost with one encrypted portal room, and the public HTTP listener serves
// Twilio's webhooks and the patient portal.
package bridge

import (
	"context"
	"net/http"
	"sync"

	"maunium.net/go/mautrix/bridgev2"

	"github.com/careline/careline/atrest"
	"github.com/careline/careline/audit"
	"github.com/careline/careline/config"
	"github.com/careline/careline/portal"
	"github.com/careline/careline/store"
)

// Connector is careline's bridgev2.NetworkConnector.
type Connector struct {
	Bridge *bridgev2.Bridge
	Config config.Network
	Store  *store.Store
	Seal   *atrest.Keyring
	Portal *portal.Portal
	Audit  *audit.Log

	server *http.Server
	inbox  *inbox

	clientsLock sync.RWMutex
	clients     map[string]*Client // by clinic number (E.164)

	roomSetupLock sync.Mutex
	stopRetention context.CancelFunc
	wf            workflows
	integration   *integration // the EHR API, appointments and reminders (api.go)
}

var (
	_ bridgev2.NetworkConnector        = (*Connector)(nil)
	_ bridgev2.StoppableNetwork        = (*Connector)(nil)
	_ bridgev2.ConfigValidatingNetwork = (*Connector)(nil)
)

func (c *Connector) Init(br *bridgev2.Bridge) {
	c.Bridge = br
	c.clients = make(map[string]*Client)
	// The durable inbox marks a webhook done only when bridgev2 reports the event handled,
	// which it does only when portal events are processed synchronously.
	br.Config.PortalEventBuffer = 0
	// The keyring is needed as soon as the provisioning API answers, which is before Start.
	// ValidateConfig already refused a bad key, so an error here cannot happen in practice.
	var err error
	if c.Seal, err = c.Config.Keyring(); err == nil {
		c.Store = store.New(br.DB.Database, c.Seal, br.Log.With().Str("db_section", "careline").Logger())
	}
	if len(c.Config.Privacy.IdentityKey) >= 32 {
		c.Audit = audit.New(br.DB.Database, audit.KeyFromSecret(c.Config.Privacy.IdentityKey), br.Log.With().Str("db_section", "careline_audit").Logger())
	}
}

func (c *Connector) Start(ctx context.Context) error {
	if c.Store == nil || c.Audit == nil {
		return c.Config.Validate()
	}
	err := c.Store.Upgrade(ctx)
	if err == nil {
		err = c.Audit.Upgrade(ctx)
	}
	if err != nil {
		return bridgev2.DBUpgradeError{Err: err, Section: "careline"}
	}
	c.auditSettings(ctx)
	if err = c.startPortal(ctx); err != nil {
		return err
	}
	if err = c.startWorkflows(ctx); err != nil {
		return bridgev2.DBUpgradeError{Err: err, Section: "careline_workflows"}
	}
	if err = c.startIntegration(ctx); err != nil {
		return err
	}
	c.registerCommands()
	c.watchInvites()
	c.inbox = newInbox(c)
	if err = c.startHTTP(ctx); err != nil {
		return err
	}
	c.inbox.start()
	retentionCtx, cancel := context.WithCancel(c.Bridge.Log.With().Str("component", "retention").Logger().WithContext(context.Background()))
	c.stopRetention = cancel
	go c.runRetention(retentionCtx)
	return nil
}

func (c *Connector) Stop() {
	if c.stopRetention != nil {
		c.stopRetention()
	}
	c.stopHTTP()
	c.stopWorkflows()
	c.stopIntegration()
	if c.inbox != nil {
		c.inbox.stop()
	}
}

func (c *Connector) GetName() bridgev2.BridgeName {
	return bridgev2.BridgeName{
		DisplayName:          "careline",
		NetworkURL:           "https://github.com/careline/careline",
		NetworkID:            "careline",
		BeeperBridgeType:     "careline",
		DefaultPort:          29381,
		DefaultCommandPrefix: "!careline",
	}
}

func (c *Connector) GetCapabilities() *bridgev2.NetworkGeneralCapabilities {
	return &bridgev2.NetworkGeneralCapabilities{}
}

func (c *Connector) GetBridgeInfoVersion() (info, capabilities int) {
	return 1, 1
}
