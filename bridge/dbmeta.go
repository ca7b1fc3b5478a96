package bridge

import (
	"maunium.net/go/mautrix/bridgev2/database"

	"github.com/careline/careline/reseal"
)

// UserLoginMetadata is a clinic's Twilio connection. The auth token is sealed at rest.
type UserLoginMetadata struct {
	AccountSID          string `json:"account_sid"`
	AuthTokenSealed     []byte `json:"auth_token_sealed"`
	PhoneNumber         string `json:"phone_number"`
	NumberSID           string `json:"number_sid"`
	MessagingServiceSID string `json:"messaging_service_sid,omitempty"`
}

// PortalMetadata is careline's state for a patient room.
type PortalMetadata struct {
	// RoomSetUp is set once the care team was invited and the clinic login made the relay.
	RoomSetUp bool `json:"room_set_up,omitempty"`
	// AnnouncedMode is the delivery mode staff were last told about in this room.
	AnnouncedMode string `json:"announced_mode,omitempty"`
}

func (c *Connector) GetDBMetaTypes() database.MetaTypes {
	return database.MetaTypes{
		Portal:    func() any { return &PortalMetadata{} },
		UserLogin: func() any { return &UserLoginMetadata{} },
	}
}

func authTokenContext(loginID string) string { return "twilio-auth-token:" + loginID }

// SealedColumns are the sealed values careline keeps in bridgev2's tables (the Twilio auth
// token in each login's metadata), for `careline storage reseal`.
func SealedColumns() []reseal.Column {
	return []reseal.Column{{
		Table: "user_login", Column: "metadata", JSONField: "auth_token_sealed", Key: []string{"bridge_id", "id"},
		Context: func(v []string) string { return authTokenContext(v[1]) },
	}}
}
