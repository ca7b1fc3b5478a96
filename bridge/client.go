package bridge

import (
	"context"
	"fmt"

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
	sender    *sender
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
	client := &Client{connector: c, login: login, meta: meta, twilio: tw}
	login.Client = client
	c.clientsLock.Lock()
	c.clients[meta.PhoneNumber] = client
	c.clientsLock.Unlock()
	return nil
}

// clientForNumber finds the login that owns a clinic number, for webhooks.
func (c *Connector) clientForNumber(e164 string) *Client {
	c.clientsLock.RLock()
	defer c.clientsLock.RUnlock()
	return c.clients[e164]
}

func (c *Connector) clientForLogin(loginID networkid.UserLoginID) *Client {
	login := c.Bridge.GetCachedUserLoginByID(loginID)
	if login == nil {
		return nil
	}
	client, _ := login.Client.(*Client)
	return client
}

// Connect starts the login's outbox sender; incoming texts arrive by webhook.
func (cl *Client) Connect(ctx context.Context) {
	if cl.sender == nil {
		cl.startSender()
	}
	cl.login.BridgeState.Send(status.BridgeState{StateEvent: status.StateConnected})
}

// Disconnect stops the sender after the text it is handing to Twilio, if any.
func (cl *Client) Disconnect() {
	cl.stopSender()
}

func (cl *Client) IsLoggedIn() bool { return true }

func (cl *Client) LogoutRemote(ctx context.Context) {
	cl.connector.clientsLock.Lock()
	delete(cl.connector.clients, cl.meta.PhoneNumber)
	cl.connector.clientsLock.Unlock()
	zerolog.Ctx(ctx).Info().Str("login_id", string(cl.login.ID)).Msg("Clinic Twilio number disconnected")
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
	}
}
