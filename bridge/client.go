package bridge

import (
	"context"
	"fmt"
	"sync"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/event"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/phone"
	"github.com/careline/careline/twilioapi"
)

// Client is one clinic login: a Twilio account and number.
type Client struct {
	connector *Connector
	login     *bridgev2.UserLogin
	meta      *UserLoginMetadata
	twilio    *twilioapi.Client

	senderLock sync.Mutex
	sender     *sender // nil while disconnected
}

var (
	_ bridgev2.NetworkAPI                    = (*Client)(nil)
	_ bridgev2.IdentifierResolvingNetworkAPI = (*Client)(nil)
	_ bridgev2.RedactionHandlingNetworkAPI   = (*Client)(nil)
	_ bridgev2.ReadReceiptHandlingNetworkAPI = (*Client)(nil)
	_ bridgev2.IdentifierValidatingNetwork   = (*Connector)(nil)
)

func (c *Connector) LoadUserLogin(ctx context.Context, login *bridgev2.UserLogin) error {
	meta := login.Metadata.(*UserLoginMetadata)
	token, err := c.Seal.OpenString(meta.AuthTokenSealed, authTokenContext(string(login.ID)))
	if err != nil {
		return fmt.Errorf("cannot open the stored Twilio auth token (was the storage key changed?): %w", err)
	}
	tw, err := twilioapi.New(c.Config.Twilio.APIURL, meta.AccountSID, token)
	if err != nil {
		return err
	}
	login.Client = &Client{connector: c, login: login, meta: meta, twilio: tw}
	return nil
}

// clientForLogin finds a clinic login by id, loading it if bridgev2 has not yet.
func (c *Connector) clientForLogin(ctx context.Context, loginID networkid.UserLoginID) *Client {
	login, err := c.Bridge.GetExistingUserLoginByID(ctx, loginID)
	if err != nil || login == nil {
		return nil
	}
	client, _ := login.Client.(*Client)
	return client
}

// Connect starts the login's outbox sender and, with network.twilio.configure_webhooks,
// points the number's incoming-SMS webhook at careline again (the public URL may have
// changed since login); incoming texts arrive by webhook.
func (cl *Client) Connect(ctx context.Context) {
	cl.startSender()
	cl.configureVoice(ctx)
	if cl.connector.Config.Twilio.ConfigureWebhooks && cl.meta.NumberSID != "" {
		if err := cl.twilio.SetSMSURL(cl.meta.NumberSID, cl.connector.smsWebhookURL(cl.login.ID)); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not point the number's SMS webhook at careline; texts may not arrive")
			cl.login.BridgeState.Send(status.BridgeState{StateEvent: status.StateTransientDisconnect,
				Error: "twilio-webhook", Message: "Could not set the number's SMS webhook at Twilio: " + err.Error()})
			return
		}
	}
	cl.login.BridgeState.Send(status.BridgeState{StateEvent: status.StateConnected})
}

// Disconnect stops the sender after the texts it is handing to Twilio, if any. When the
// bridge is stopping, it is also the first sign of it: stop taking webhooks now.
func (cl *Client) Disconnect() {
	if cl.connector.Bridge != nil && cl.connector.Bridge.IsStopping() {
		cl.connector.beginShutdown()
	}
	cl.stopSender()
}

func (cl *Client) IsLoggedIn() bool { return true }

// LogoutRemote: the login is deleted; its sender must not keep texting patients.
func (cl *Client) LogoutRemote(ctx context.Context) {
	cl.stopSender()
	zerolog.Ctx(ctx).Info().Str("login_id", string(cl.login.ID)).Msg("Clinic Twilio number disconnected")
	// A logout can come before Start has upgraded the audit trail; after the wait the entry
	// is tried anyway, and a failure is logged.
	_ = cl.connector.waitTablesReady(ctx)
	cl.connector.audit(ctx, audit.Entry{Actor: cl.login.UserMXID.String(), Action: "logout",
		Detail: "Twilio number " + phone.Mask(cl.meta.PhoneNumber) + " disconnected"})
}

// IsThisUser: the clinic login is never one of the patients.
func (cl *Client) IsThisUser(ctx context.Context, userID networkid.UserID) bool { return false }

func (c *Connector) ValidateUserID(id networkid.UserID) bool {
	return len(id) == 27 && id[0] == 'p'
}

func (cl *Client) GetCapabilities(ctx context.Context, portal *bridgev2.Portal) *event.RoomFeatures {
	return &event.RoomFeatures{
		ID:            "org.careline.capabilities.v1",
		MaxTextLength: 1600,
		File: event.FileFeatureMap{
			event.MsgImage: {MimeTypes: map[string]event.CapabilitySupportLevel{
				"image/jpeg": event.CapLevelFullySupported, "image/png": event.CapLevelFullySupported,
			}, MaxSize: maxStaffFileBytes},
			event.MsgFile: {MimeTypes: map[string]event.CapabilitySupportLevel{
				"application/pdf": event.CapLevelFullySupported,
			}, MaxSize: maxStaffFileBytes},
		},
		Delete:       event.CapLevelFullySupported,
		ReadReceipts: true,
		// careline names the staff member itself ("Dr. Lee, Sunrise Clinic: …"), so bridgev2
		// passes relayed messages as written instead of applying bridge.relay.message_formats.
		PerMessageProfileRelay: true,
	}
}
