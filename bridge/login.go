package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/phone"
	"github.com/careline/careline/twilioapi"
)

const loginFlowID = "twilio"

var errLoginAdminOnly = errors.New("connecting the clinic's Twilio number is limited to bridge administrators")

func (c *Connector) GetLoginFlows() []bridgev2.LoginFlow {
	return []bridgev2.LoginFlow{{
		Name:        "Twilio number",
		Description: "Connect the clinic's Twilio account and phone number",
		ID:          loginFlowID,
	}}
}

func (c *Connector) CreateLogin(ctx context.Context, user *bridgev2.User, flowID string) (bridgev2.LoginProcess, error) {
	if flowID != loginFlowID {
		return nil, fmt.Errorf("unknown login flow %q", flowID)
	}
	// The clinic's number speaks for the whole clinic: connecting it is for bridge admins,
	// whatever level bridgev2 otherwise needs for logging in.
	if !user.Permissions.Admin {
		return nil, bridgev2.WrapRespErrManual(errLoginAdminOnly, mautrix.MForbidden.ErrCode, http.StatusForbidden)
	}
	// Its steps write careline's tables, which may not exist yet this early after a start.
	if err := c.waitTablesReady(ctx); err != nil {
		return nil, stillStartingResp(err)
	}
	return &twilioLogin{connector: c, user: user}, nil
}

type twilioLogin struct {
	connector *Connector
	user      *bridgev2.User
}

var _ bridgev2.LoginProcessUserInput = (*twilioLogin)(nil)

func (l *twilioLogin) Start(ctx context.Context) (*bridgev2.LoginStep, error) {
	return &bridgev2.LoginStep{
		Type:         bridgev2.LoginStepTypeUserInput,
		StepID:       "org.careline.twilio.credentials",
		Instructions: "Enter the clinic's Twilio account SID, auth token and phone number (Twilio console → Account info, Phone numbers).",
		UserInputParams: &bridgev2.LoginUserInputParams{
			Fields: []bridgev2.LoginInputDataField{
				{Type: bridgev2.LoginInputFieldTypeUsername, ID: "account_sid", Name: "Account SID", Pattern: `^AC[0-9a-zA-Z]{32}$`},
				{Type: bridgev2.LoginInputFieldTypePassword, ID: "auth_token", Name: "Auth token", Pattern: `^[0-9a-zA-Z]{16,}$`},
				{Type: bridgev2.LoginInputFieldTypePhoneNumber, ID: "phone_number", Name: "Clinic phone number (E.164, e.g. +15551234567)"},
				// bridgev2 requires every field; "-" means no messaging service.
				{Type: bridgev2.LoginInputFieldTypeUsername, ID: "messaging_service_sid", Name: "Messaging service SID (MG…), or - for none", Pattern: `^(-|MG[0-9a-zA-Z]{32})$`},
			},
		},
	}, nil
}

// SubmitUserInput checks the credentials with Twilio and saves the login. Refusals are
// answered as 400s with the reason, not as server errors.
func (l *twilioLogin) SubmitUserInput(ctx context.Context, input map[string]string) (*bridgev2.LoginStep, error) {
	step, err := l.submit(ctx, input)
	if err != nil {
		var respErr bridgev2.RespError
		if !errors.As(err, &respErr) {
			err = bridgev2.WrapRespErrManual(err, mautrix.MInvalidParam.ErrCode, http.StatusBadRequest)
		}
	}
	return step, err
}

func (l *twilioLogin) submit(ctx context.Context, input map[string]string) (*bridgev2.LoginStep, error) {
	c := l.connector
	accountSID := strings.TrimSpace(input["account_sid"])
	authToken := strings.TrimSpace(input["auth_token"])
	serviceSID := strings.TrimSpace(input["messaging_service_sid"])
	if serviceSID == "-" {
		serviceSID = ""
	}
	number, err := phone.Normalize(input["phone_number"], "")
	if err != nil {
		return nil, fmt.Errorf("the clinic number must be written with its country code, e.g. +15551234567: %w", err)
	}
	tw, err := twilioapi.New(c.Config.Twilio.APIURL, accountSID, authToken)
	if err != nil {
		return nil, err
	}
	// Check the credentials and the number against Twilio before saving anything.
	if err = tw.CheckAccount(); err != nil {
		return nil, fmt.Errorf("twilio did not accept these credentials: %w", err)
	}
	num, err := tw.FindNumber(number)
	if err != nil {
		return nil, err
	}
	loginID := makeLoginID(accountSID, number)
	// Another admin's login of the same number stays theirs: taking it over would move every
	// patient room to whoever typed the credentials last.
	if existing, err := c.Bridge.GetExistingUserLoginByID(ctx, loginID); err != nil {
		return nil, err
	} else if existing != nil && existing.UserMXID != l.user.MXID {
		return nil, bridgev2.WrapRespErrManual(fmt.Errorf("this number is already connected by %s; they must log out before anyone else connects it", existing.UserMXID),
			mautrix.MForbidden.ErrCode, http.StatusConflict)
	}
	if c.Config.Twilio.ConfigureWebhooks {
		if err = tw.SetSMSURL(num.SID, c.smsWebhookURL(loginID)); err != nil {
			return nil, fmt.Errorf("could not point the number's SMS webhook at careline: %w", err)
		}
	}
	meta := &UserLoginMetadata{
		AccountSID:          accountSID,
		AuthTokenSealed:     c.Seal.SealString(authToken, authTokenContext(string(loginID))),
		PhoneNumber:         number,
		NumberSID:           num.SID,
		MessagingServiceSID: serviceSID,
	}
	login, err := l.user.NewLogin(ctx, &database.UserLogin{
		ID:         loginID,
		RemoteName: fmt.Sprintf("%s (%s)", c.Config.ClinicName, phone.Mask(number)),
		Metadata:   meta,
	}, &bridgev2.NewLoginParams{})
	if err != nil {
		return nil, err
	}
	c.audit(ctx, audit.Entry{Actor: l.user.MXID.String(), Action: "login", Detail: "Twilio number " + phone.Mask(number)})
	// bridgev2 connects logins itself only at startup.
	login.Client.Connect(login.Log.WithContext(c.backgroundCtx()))
	zerolog.Ctx(ctx).Info().Str("login_id", string(loginID)).Str("clinic_number", phone.Mask(number)).
		Bool("webhook_configured", c.Config.Twilio.ConfigureWebhooks).Msg("Clinic Twilio number connected")
	return &bridgev2.LoginStep{
		Type:         bridgev2.LoginStepTypeComplete,
		StepID:       "org.careline.twilio.complete",
		Instructions: fmt.Sprintf("Connected the Twilio number %s.", phone.Mask(number)),
		CompleteParams: &bridgev2.LoginCompleteParams{
			UserLoginID: login.ID,
			UserLogin:   login,
		},
	}, nil
}

func (l *twilioLogin) Cancel() {}
