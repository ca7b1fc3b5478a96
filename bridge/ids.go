package bridge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"sync"

	"maunium.net/go/mautrix/bridgev2/networkid"
)

// patientID is the opaque id of a patient of one clinic login: a keyed hash, so the number
// cannot be recovered from Matrix IDs without the clinic's identity key.
func (c *Connector) patientID(loginID networkid.UserLoginID, e164 string) string {
	key := patientIDKey{loginID, e164}
	c.patientIDs.Lock()
	id, ok := c.patientIDs.m[key]
	c.patientIDs.Unlock()
	if ok {
		return id
	}
	mac := hmac.New(sha256.New, []byte(c.Config.Privacy.IdentityKey))
	mac.Write([]byte(loginID))
	mac.Write([]byte{0})
	mac.Write([]byte(e164))
	sum := mac.Sum(nil)[:16]
	id = "p" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum))
	c.patientIDs.Lock()
	if len(c.patientIDs.m) >= maxPatientIDs {
		c.patientIDs.m = nil
	}
	if c.patientIDs.m == nil {
		c.patientIDs.m = make(map[patientIDKey]string)
	}
	c.patientIDs.m[key] = id
	c.patientIDs.Unlock()
	return id
}

// patientIDs remembers patientID's answers: every webhook computes one, and patients text
// again and again. Emptied when full, which keeps it small and is rare.
type patientIDs struct {
	sync.Mutex
	m map[patientIDKey]string
}

type patientIDKey struct {
	login networkid.UserLoginID
	e164  string
}

const maxPatientIDs = 4096

func portalKey(loginID networkid.UserLoginID, patientID string) networkid.PortalKey {
	return networkid.PortalKey{ID: networkid.PortalID(patientID), Receiver: loginID}
}

func makeLoginID(accountSID, e164 string) networkid.UserLoginID {
	return networkid.UserLoginID(accountSID + "-" + strings.TrimPrefix(e164, "+"))
}
