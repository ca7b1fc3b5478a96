// Package portal is the patient's web page: a secure link from an SMS, a one-time code,
// then the conversation with the clinic, a reply box and a file upload. It is rendered on
// the server with html/template and works without JavaScript.
//
// The portal never talks to Twilio or Matrix itself: the bridge implements Backend.
package portal

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"

	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/token"
)

// Patient is what the portal may show about a patient before and after verification.
type Patient struct {
	ID          string // opaque patient id (also used in the bridge)
	MaskedPhone string // "···4567" (never the full number)
	ClinicName  string
	HasDOB      bool // staff recorded a date of birth (second factor possible)
}

// Attachment is a file attached to a message.
type Attachment struct {
	ID, FileName, ContentType string
	Size                      int64
}

// Message is one message of the conversation.
type Message struct {
	ID          string
	FromPatient bool
	SenderName  string // e.g. "Dr. Lee, Sunrise Clinic" (staff); empty for the patient's own
	Body        string
	Attachments []Attachment
	SentAt      time.Time
	Withdrawn   bool // staff redacted it: shown as "This message was withdrawn"
	Expired     bool // past the configured expiry: shown as expired, without its body
	Read        bool // a staff message the patient has seen (receipt sent)
	State       DeliveryState
}

// DeliveryState is how far one of the patient's own messages got.
type DeliveryState string

const (
	StateDelivered DeliveryState = ""        // in the clinic's room
	StateSending   DeliveryState = "sending" // saved; on its way to the clinic
	StateFailed    DeliveryState = "failed"  // careline gave up; the clinic was told
)

// ErrCodeBudget is what Backend.SendSMS returns when the clinic's budget of code texts is
// used up (toll-fraud protection); the patient is asked to try later and nothing is sent.
var ErrCodeBudget = errors.New("portal: the clinic's code budget is used up")

// Backend is implemented by the bridge.
type Backend interface {
	Patient(ctx context.Context, patientID string) (*Patient, error) // (nil, nil) if unknown
	Thread(ctx context.Context, patientID string) ([]Message, error) // oldest first
	SendSMS(ctx context.Context, patientID, text string) error       // to the number on file
	Reply(ctx context.Context, patientID, body string) error
	Upload(ctx context.Context, patientID, fileName, contentType string, data []byte) error
	Attachment(ctx context.Context, patientID, attachmentID string) (contentType string, data []byte, err error)
	MarkRead(ctx context.Context, patientID string, messageIDs []string) error
	CheckDOB(ctx context.Context, patientID string, dob time.Time) (bool, error)
	NotifyStaff(ctx context.Context, patientID, notice string) error
	// Audit records an action without content: "link_opened", "code_sent", "code_failed",
	// "code_verified", "locked", "portal_view", "reply", "upload", "signout".
	Audit(ctx context.Context, patientID, action string)
}

// Config holds the portal's settings. Zero values take the defaults in brackets.
type Config struct {
	PublicURL       string        // e.g. https://texts.example.org; links are PublicURL + "/l/" + token
	HashKey         []byte        // required, ≥ 32 bytes: keys the stored hashes of tokens and codes (token.HashKeyFromSecret)
	LinkLifetime    time.Duration // [7 days]
	CodeLifetime    time.Duration // [10 minutes]
	MaxFailures     int           // lock after this many consecutive failures [10, never more than 10]
	ResendCooldown  time.Duration // [60 s]
	IdleTimeout     time.Duration // [15 min]
	AbsoluteTimeout time.Duration // [12 h]
	RequireDOB      bool          // ask for the date of birth too when the patient HasDOB
	MaxUploadBytes  int64         // [10 MiB]; JPEG, PNG, HEIC and PDF, judged by content
	MaxCodesPerHour int           // code texts per patient in any hour [5]
	MaxCodesPerDay  int           // code texts per patient in any 24 hours [10]
	// UploadTimeout is how long one upload may take to arrive, longer than the listener's
	// whole-request timeout so a 10 MB photo from a slow phone is not cut off [10 min].
	UploadTimeout time.Duration
	// MaxUploads is how many uploads are read at once across all patients (each is held in
	// memory, up to MaxUploadBytes); one session has at most one at a time [4].
	MaxUploads int
	// CodeMessage is the SMS carrying the code, with {code} and {clinic}; no PHI.
	// ["Your {clinic} verification code is {code}. It expires in 10 minutes."]
	CodeMessage string
	// Location is the time zone for message times [time.Local].
	Location *time.Location
	Now      func() time.Time // [time.Now]; for tests
}

// Defaults.
const (
	DefaultLinkLifetime    = 7 * 24 * time.Hour
	DefaultCodeLifetime    = 10 * time.Minute
	DefaultMaxFailures     = 10
	DefaultResendCooldown  = 60 * time.Second
	DefaultIdleTimeout     = 15 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
	DefaultMaxUploadBytes  = 10 << 20
	DefaultMaxCodesPerHour = 5
	DefaultMaxCodesPerDay  = 10
	DefaultUploadTimeout   = 10 * time.Minute
	DefaultMaxUploads      = 4

	// After linkThrottleFailures wrong codes through one link, each further try through it
	// waits linkThrottleDelay after the last wrong one: a link holder cannot rush the patient
	// into the lock-out, which itself stays as SPEC §6 has it.
	linkThrottleFailures = 3
	linkThrottleDelay    = 30 * time.Second
	DefaultCodeMessage   = "Your {clinic} verification code is {code}. It expires in 10 minutes."

	// preauthLifetime is how long a browser may take between opening a link and entering
	// its code before it has to open the link again.
	preauthLifetime = 30 * time.Minute
)

// Portal serves the patient web pages.
type Portal struct {
	cfg       Config
	hasher    *token.Hasher
	uploads   uploadSlots
	db        *dbutil.Database
	backend   Backend
	pages     map[string]*template.Template
	staticCSS []byte
}

//go:embed sql/*.sql
var upgrades embed.FS

var upgradeTable = dbutil.BuildUpgradeTable().WithFSPath(upgrades, "sql").Finish()

// New returns a portal on db (its tables live under their own version table,
// careline_portal_version; call Upgrade before use).
func New(cfg Config, db *dbutil.Database, backend Backend) (*Portal, error) {
	if db == nil || backend == nil {
		return nil, errors.New("portal: database and backend are required")
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("portal: public URL %q is not an absolute http(s) URL", cfg.PublicURL)
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	hasher, err := token.NewHasher(cfg.HashKey)
	if err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	setDefault(&cfg.LinkLifetime, DefaultLinkLifetime)
	setDefault(&cfg.CodeLifetime, DefaultCodeLifetime)
	setDefault(&cfg.ResendCooldown, DefaultResendCooldown)
	setDefault(&cfg.IdleTimeout, DefaultIdleTimeout)
	setDefault(&cfg.AbsoluteTimeout, DefaultAbsoluteTimeout)
	if cfg.MaxFailures <= 0 || cfg.MaxFailures > DefaultMaxFailures {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.MaxCodesPerHour <= 0 {
		cfg.MaxCodesPerHour = DefaultMaxCodesPerHour
	}
	if cfg.MaxCodesPerDay <= 0 {
		cfg.MaxCodesPerDay = DefaultMaxCodesPerDay
	}
	setDefault(&cfg.UploadTimeout, DefaultUploadTimeout)
	if cfg.MaxUploads <= 0 {
		cfg.MaxUploads = DefaultMaxUploads
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if cfg.CodeMessage == "" {
		cfg.CodeMessage = DefaultCodeMessage
	} else if !strings.Contains(cfg.CodeMessage, "{code}") {
		return nil, errors.New("portal: the code message must contain {code}")
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Portal{
		cfg:     cfg,
		hasher:  hasher,
		uploads: uploadSlots{global: make(chan struct{}, cfg.MaxUploads), sessions: map[string]bool{}},
		db:      db.Child("careline_portal_version", upgradeTable, nil),
		backend: backend,
	}
	if err = p.loadTemplates(); err != nil {
		return nil, err
	}
	return p, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Upgrade creates or migrates the portal's tables.
func (p *Portal) Upgrade(ctx context.Context) error {
	return p.db.Upgrade(ctx)
}

func (p *Portal) now() time.Time { return p.cfg.Now() }
