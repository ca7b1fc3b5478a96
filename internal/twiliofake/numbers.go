package twiliofake

import (
	"net/http"
	"regexp"
	"strings"
	"time"
)

type number struct {
	sid, phone, friendlyName            string
	smsURL, smsMethod                   string
	smsFallbackURL, smsFallbackMethod   string
	statusCallback, statusCallbackMeth  string
	voiceURL, voiceMethod               string
	smsApplicationSid, voiceApplication string
	created, updated                    time.Time
}

func newNumber(phone string, now time.Time) *number {
	return &number{
		sid: newSid("PN"), phone: phone, friendlyName: friendlyName(phone),
		smsMethod: "POST", smsFallbackMethod: "POST", statusCallbackMeth: "POST",
		voiceMethod: "POST", created: now, updated: now,
	}
}

var applicationSidRe = regexp.MustCompile(`^AP[0-9a-fA-F]{32}$`)

// friendlyName formats NANP numbers the way Twilio's console does.
func friendlyName(phone string) string {
	if len(phone) == 12 && strings.HasPrefix(phone, "+1") {
		return "(" + phone[2:5] + ") " + phone[5:8] + "-" + phone[8:]
	}
	return phone
}

// NumberConfig returns the SMS webhook URL configured for an owned number;
// ok is false when the number is not owned or has no SmsUrl yet.
func (s *Server) NumberConfig(phone string) (smsURL string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.lookupNumberLocked(phone)
	if n == nil || n.smsURL == "" {
		return "", false
	}
	return n.smsURL, true
}

// NumberSid returns the PN sid of an owned number.
func (s *Server) NumberSid(phone string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.lookupNumberLocked(phone); n != nil {
		return n.sid, true
	}
	return "", false
}

func (s *Server) lookupNumber(phone string) *number {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookupNumberLocked(phone)
}

func (s *Server) lookupNumberLocked(phone string) *number {
	for _, n := range s.numbers {
		if n.phone == phone {
			return n
		}
	}
	return nil
}

// numberJSON is api.v2010.account.incoming_phone_number. Unset URLs and
// SIDs are null rather than Twilio's usual "": the OpenAPI schema marks them
// nullable with format uri / pattern ^AP…, so "" fails validation, and null
// keeps clients honest about nil *string fields in twilio-go.
type numberJSON struct {
	AccountSid             string          `json:"account_sid"`
	AddressRequirements    string          `json:"address_requirements"`
	AddressSid             *string         `json:"address_sid"`
	APIVersion             string          `json:"api_version"`
	Beta                   bool            `json:"beta"`
	Capabilities           map[string]bool `json:"capabilities"`
	DateCreated            string          `json:"date_created"`
	DateUpdated            string          `json:"date_updated"`
	EmergencyStatus        string          `json:"emergency_status"`
	EmergencyAddressSid    *string         `json:"emergency_address_sid"`
	EmergencyAddressStatus string          `json:"emergency_address_status"`
	FriendlyName           string          `json:"friendly_name"`
	IdentitySid            *string         `json:"identity_sid"`
	Origin                 string          `json:"origin"`
	PhoneNumber            string          `json:"phone_number"`
	Sid                    string          `json:"sid"`
	SmsApplicationSid      *string         `json:"sms_application_sid"`
	SmsFallbackMethod      string          `json:"sms_fallback_method"`
	SmsFallbackURL         *string         `json:"sms_fallback_url"`
	SmsMethod              string          `json:"sms_method"`
	SmsURL                 *string         `json:"sms_url"`
	StatusCallback         *string         `json:"status_callback"`
	StatusCallbackMethod   string          `json:"status_callback_method"`
	TrunkSid               *string         `json:"trunk_sid"`
	URI                    string          `json:"uri"`
	VoiceApplicationSid    *string         `json:"voice_application_sid"`
	VoiceCallerIDLookup    bool            `json:"voice_caller_id_lookup"`
	VoiceFallbackMethod    string          `json:"voice_fallback_method"`
	VoiceFallbackURL       *string         `json:"voice_fallback_url"`
	VoiceMethod            string          `json:"voice_method"`
	VoiceURL               *string         `json:"voice_url"`
	VoiceReceiveMode       string          `json:"voice_receive_mode"`
	BundleSid              *string         `json:"bundle_sid"`
	Status                 string          `json:"status"`
	Type                   string          `json:"type"`
}

func (s *Server) numberJSONLocked(n *number) numberJSON {
	typ := "local"
	switch {
	case strings.HasPrefix(n.phone, "+1800"), strings.HasPrefix(n.phone, "+1833"),
		strings.HasPrefix(n.phone, "+1844"), strings.HasPrefix(n.phone, "+1855"),
		strings.HasPrefix(n.phone, "+1866"), strings.HasPrefix(n.phone, "+1877"),
		strings.HasPrefix(n.phone, "+1888"):
		typ = "tollfree"
	}
	return numberJSON{
		AccountSid: s.opts.AccountSID, AddressRequirements: "none", APIVersion: "2010-04-01",
		Capabilities: map[string]bool{"voice": true, "sms": true, "mms": true, "fax": false},
		DateCreated:  formatTime(n.created), DateUpdated: formatTime(n.updated),
		EmergencyStatus: "Inactive", EmergencyAddressStatus: "unregistered",
		FriendlyName: n.friendlyName, Origin: "twilio", PhoneNumber: n.phone, Sid: n.sid,
		SmsApplicationSid: optionalString(n.smsApplicationSid),
		SmsFallbackMethod: n.smsFallbackMethod, SmsFallbackURL: optionalString(n.smsFallbackURL),
		SmsMethod: n.smsMethod, SmsURL: optionalString(n.smsURL),
		StatusCallback: optionalString(n.statusCallback), StatusCallbackMethod: n.statusCallbackMeth,
		URI:                 "/2010-04-01/Accounts/" + s.opts.AccountSID + "/IncomingPhoneNumbers/" + n.sid + ".json",
		VoiceApplicationSid: optionalString(n.voiceApplication), VoiceFallbackMethod: "POST",
		VoiceMethod: n.voiceMethod, VoiceURL: optionalString(n.voiceURL),
		VoiceReceiveMode: "voice", Status: "in-use", Type: typ,
	}
}

func (s *Server) handleListNumbers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// Twilio matches PhoneNumber as a pattern over the digits, so "+1555"
	// finds all of them; an exact E.164 number finds just that one.
	want := digitsOnly(q.Get("PhoneNumber"))
	friendly := q.Get("FriendlyName")
	s.mu.Lock()
	defer s.mu.Unlock()
	var matched []*number
	for _, n := range s.numbers {
		if want != "" && !strings.Contains(digitsOnly(n.phone), want) {
			continue
		}
		if friendly != "" && n.friendlyName != friendly {
			continue
		}
		matched = append(matched, n)
	}
	base := "/2010-04-01/Accounts/" + s.opts.AccountSID + "/IncomingPhoneNumbers.json"
	p, lo, hi, bad := paginate(r, base, len(matched))
	if bad != "" {
		writeError(w, 400, 20001, bad)
		return
	}
	list := make([]numberJSON, 0, hi-lo)
	for _, n := range matched[lo:hi] {
		list = append(list, s.numberJSONLocked(n))
	}
	writeJSON(w, http.StatusOK, struct {
		page
		IncomingPhoneNumbers []numberJSON `json:"incoming_phone_numbers"`
	}{p, list})
}

func digitsOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

func (s *Server) handleNumber(w http.ResponseWriter, r *http.Request, sid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n *number
	for _, x := range s.numbers {
		if x.sid == sid {
			n = x
		}
	}
	if n == nil {
		notFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.numberJSONLocked(n))
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			writeError(w, 400, 20001, "Could not parse form body")
			return
		}
		f := r.PostForm
		urls := map[string]*string{
			"SmsUrl": &n.smsURL, "SmsFallbackUrl": &n.smsFallbackURL,
			"StatusCallback": &n.statusCallback, "VoiceUrl": &n.voiceURL,
		}
		methods := map[string]*string{
			"SmsMethod": &n.smsMethod, "SmsFallbackMethod": &n.smsFallbackMethod,
			"StatusCallbackMethod": &n.statusCallbackMeth, "VoiceMethod": &n.voiceMethod,
		}
		// Validate everything before changing anything, like a transaction.
		for key := range urls {
			if v, ok := f[key]; ok && v[0] != "" && !isHTTPURL(v[0]) {
				writeError(w, 400, 21502, "Invalid "+key+": "+v[0])
				return
			}
		}
		for key := range methods {
			if v, ok := f[key]; ok {
				if m := strings.ToUpper(v[0]); m != "GET" && m != "POST" {
					writeError(w, 400, 21502, "Invalid "+key+": "+v[0]+" (must be GET or POST)")
					return
				}
			}
		}
		if v, ok := f["SmsApplicationSid"]; ok && v[0] != "" && !applicationSidRe.MatchString(v[0]) {
			writeError(w, 400, 21502, "Invalid SmsApplicationSid: "+v[0])
			return
		}
		for key, dst := range urls {
			if v, ok := f[key]; ok {
				*dst = v[0]
			}
		}
		for key, dst := range methods {
			if v, ok := f[key]; ok {
				*dst = strings.ToUpper(v[0])
			}
		}
		if v, ok := f["FriendlyName"]; ok {
			n.friendlyName = v[0]
		}
		if v, ok := f["SmsApplicationSid"]; ok {
			n.smsApplicationSid = v[0]
		}
		n.updated = time.Now().UTC()
		writeJSON(w, http.StatusOK, s.numberJSONLocked(n))
	default:
		methodNotAllowed(w, r)
	}
}
