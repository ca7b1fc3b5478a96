// Package bridge is careline's bridgev2 network connector: a clinic's Twilio number is a login,
// each patient a ghost with one encrypted portal room, and the public HTTP listener serves
// Twilio's webhooks and the patient portal.
package bridge

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"

	"github.com/careline/careline/atrest"
	"github.com/careline/careline/audit"
	"github.com/careline/careline/config"
	"github.com/careline/careline/floodgate"
	"github.com/careline/careline/metrics"
	"github.com/careline/careline/portal"
	"github.com/careline/careline/portalremind"
	"github.com/careline/careline/store"
)

// Connector is careline's bridgev2.NetworkConnector.
type Connector struct {
	Bridge *bridgev2.Bridge
	Config config.Network
	Store  *store.Store
	Seal   *atrest.Keyring
	// Web is the patient portal (the web page patients read and answer in); not to be
	// confused with bridgev2's portals, the rooms.
	Web   *portal.Portal
	Audit *audit.Log
	// Metrics counts what careline does, for the private metrics listener.
	Metrics *metrics.Metrics

	server        *http.Server
	metricsServer *http.Server
	readiness     metrics.Readiness
	twilioCheck   twilioReachability
	inbox         *inbox
	shuttingDown  atomic.Bool
	// tablesReady is closed once Start has brought all of careline's tables up to date and set
	// up what uses them. bridgev2 serves the provisioning API and handles Matrix events
	// (Matrix.Start) before it starts the network connector, so a login, a start-chat or a
	// staff message can arrive before them (waitTablesReady).
	tablesReady  chan struct{}
	shutdownOnce sync.Once

	newRooms   *floodgate.Gate            // network.inbound.max_new_patients_per_hour (newpatients.go)
	patientIDs memo[patientIDKey, string] // patientID's answers (ids.go), set up in Init

	roomSetupLock sync.Mutex
	roomsSetUp    sync.Map // networkid.PortalKey → struct{}, rooms whose care team is in
	stopRetention context.CancelFunc
	wf            workflows
	integration   *integration        // the EHR API, appointments and reminders (api.go)
	team          teamInbox           // ownership, queue and staff-only threads (teaminbox.go)
	reminders     *portalremind.Store // reminders of unopened secure messages (portalremind.go)
}

var (
	_ bridgev2.NetworkConnector        = (*Connector)(nil)
	_ bridgev2.StoppableNetwork        = (*Connector)(nil)
	_ bridgev2.ConfigValidatingNetwork = (*Connector)(nil)
)

func (c *Connector) Init(br *bridgev2.Bridge) {
	c.Bridge = br
	c.Metrics = metrics.New()
	// The keyring is needed as soon as the provisioning API answers, which is before Start.
	// mxmain validated the config (ValidateConfig) before Init, so a failure here is a bug:
	// fail loudly rather than run half initialised.
	var err error
	if c.Seal, err = c.Config.Keyring(); err != nil {
		br.Log.WithLevel(zerolog.FatalLevel).Err(err).Msg("Invalid network.storage key")
		os.Exit(11) // mxmain's exit code for a configuration error
	}
	if len(c.Config.Privacy.IdentityKey) < 32 {
		br.Log.WithLevel(zerolog.FatalLevel).Msg("network.privacy.identity_key is not set")
		os.Exit(11)
	}
	c.Store = store.New(br.DB.Database, c.Seal, br.Log.With().Str("db_section", "careline").Logger())
	c.Audit = audit.New(br.DB.Database, audit.KeyFromSecret(c.Config.Privacy.IdentityKey), br.Log.With().Str("db_section", "careline_audit").Logger())
	c.Audit.SetRetention(c.Config.Retention.Audit)
	c.tablesReady = make(chan struct{})
	c.patientIDs.max = 4096
	c.registerCommands()
	keepHomeserverConnections(br) // bridgev2 initialised the Matrix side (and its client) just before
}

// backgroundCtx is the bridge's background context, for work that outlives a request.
func (c *Connector) backgroundCtx() context.Context {
	if c.Bridge != nil && c.Bridge.BackgroundCtx != nil {
		return c.Bridge.BackgroundCtx
	}
	return context.Background()
}

func (c *Connector) Start(ctx context.Context) error {
	// The durable inbox marks a webhook done only when bridgev2 reports the event handled,
	// which it does only when portal events are processed synchronously.
	if c.Bridge.Config.PortalEventBuffer != 0 {
		return errors.New("bridge.portal_event_buffer must be 0 for careline: the inbox needs to know a message reached its room")
	}
	if err := upgradeSections(ctx, dbSection{"careline", c.Store.Upgrade}, dbSection{"careline_audit", c.Audit.Upgrade}); err != nil {
		return err
	}
	if err := c.startNewPatientLimit(ctx); err != nil {
		return bridgev2.DBUpgradeError{Err: err, Section: "careline_floodgate"}
	}
	c.auditSettings(ctx)
	if err := c.startPortal(ctx); err != nil {
		return err
	}
	if err := c.startWorkflows(ctx); err != nil {
		return err
	}
	if err := c.startIntegration(ctx); err != nil {
		return err
	}
	if err := c.startTeamInbox(ctx); err != nil {
		return err
	}
	c.watchInvites()
	c.inbox = newInbox(c)
	if err := c.startHTTP(ctx); err != nil {
		return err
	}
	if err := c.startMetrics(ctx); err != nil {
		return err
	}
	c.inbox.start()
	retentionCtx, cancel := context.WithCancel(c.Bridge.Log.With().Str("component", "retention").Logger().WithContext(c.backgroundCtx()))
	c.stopRetention = cancel
	go c.runRetention(retentionCtx)
	// Last: most sections are upgraded above, not only the first two, and a staff message
	// needs the portal, the workflows and the team inbox set up.
	close(c.tablesReady)
	return nil
}

// dbSection is one of careline's database sections (its version table's name without
// "_version") and how to bring it to this version's schema.
type dbSection struct {
	name    string
	upgrade func(context.Context) error
}

// upgradeSections upgrades each section in turn; a failure is reported as that section's
// DBUpgradeError, which mxmain logs with the section's name and its own exit code.
func upgradeSections(ctx context.Context, sections ...dbSection) error {
	for _, s := range sections {
		if err := s.upgrade(ctx); err != nil {
			return bridgev2.DBUpgradeError{Err: err, Section: s.name}
		}
	}
	return nil
}

// beginShutdown stops taking webhooks and portal posts (they get a 503, which Twilio retries)
// and lets the inbox finish the messages it holds while the Matrix side still runs. bridgev2
// disconnects every login first thing when it stops, so the first Disconnect calls this.
func (c *Connector) beginShutdown() {
	c.shutdownOnce.Do(func() {
		c.shuttingDown.Store(true)
		if c.inbox != nil {
			c.inbox.stop()
		}
	})
}

// Stop runs after bridgev2 stopped the Matrix side.
func (c *Connector) Stop() {
	c.beginShutdown()
	if c.stopRetention != nil {
		c.stopRetention()
	}
	c.stopHTTP()
	c.stopWorkflows()
	c.stopIntegration()
	c.stopMetrics()
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

// errStillStarting answers what arrived while careline was still preparing its database and
// could not wait longer (startWait).
var errStillStarting = errors.New("careline is still starting (preparing its database); try again in a moment")

// startWait bounds how long something that arrives during start waits for careline's tables.
const startWait = 30 * time.Second

// waitTablesReady waits until Start has brought careline's tables up to date, at most
// startWait or until ctx ends.
func (c *Connector) waitTablesReady(ctx context.Context) error {
	select {
	case <-c.tablesReady:
		return nil
	default:
	}
	timer := time.NewTimer(startWait)
	defer timer.Stop()
	select {
	case <-c.tablesReady:
		return nil
	case <-ctx.Done():
	case <-timer.C:
	}
	return errStillStarting
}

// stillStartingResp is errStillStarting for the provisioning API: a 503, which says try again.
func stillStartingResp(err error) error {
	return bridgev2.WrapRespErrManual(err, mautrix.MUnknown.ErrCode, http.StatusServiceUnavailable)
}
