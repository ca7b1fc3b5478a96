package bridge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strings"

	"maunium.net/go/mautrix/bridgev2/networkid"
)

// patientID is the opaque id of a patient of one clinic login: a keyed hash, so the number
// cannot be recovered from Matrix IDs without the clinic's identity key.
func (c *Connector) patientID(loginID networkid.UserLoginID, e164 string) string {
	return c.patientIDs.get(patientIDKey{loginID, e164}, func(key patientIDKey) string {
		mac := hmac.New(sha256.New, []byte(c.Config.Privacy.IdentityKey))
		mac.Write([]byte(key.login))
		mac.Write([]byte{0})
		mac.Write([]byte(key.e164))
		sum := mac.Sum(nil)[:16]
		return "p" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum))
	})
}

// patientIDKey is what a patient's id is computed from. Every webhook computes one, and
// patients text again and again (Connector.patientIDs).
type patientIDKey struct {
	login networkid.UserLoginID
	e164  string
}

func portalKey(loginID networkid.UserLoginID, patientID string) networkid.PortalKey {
	return networkid.PortalKey{ID: networkid.PortalID(patientID), Receiver: loginID}
}

func makeLoginID(accountSID, e164 string) networkid.UserLoginID {
	return networkid.UserLoginID(accountSID + "-" + strings.TrimPrefix(e164, "+"))
}
