// Package api is careline's integration API for EHRs and scheduling systems: bearer tokens,
// messages and broadcasts under /api/v1, FHIR R4 Appointments under /fhir/r4, and the OpenAPI
// description of all of it at /api/v1/openapi.json. It never talks to Twilio or Matrix itself:
// the bridge implements Backend.
package api

import (
	"context"
	"embed"
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/apitoken"
	"github.com/careline/careline/appointment"
	"github.com/careline/careline/audit"
)

//go:embed *.sql
var upgrades embed.FS

var table = dbutil.BuildUpgradeTable().WithFS(upgrades).Finish()

// Refusal is bad input the backend found: answered with Status and Message, nothing changed.
type Refusal struct {
	Status  int // 400 or 422 (404 for something that does not exist)
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// Refuse returns a 422 Refusal.
func Refuse(message string) error {
	return &Refusal{Status: http.StatusUnprocessableEntity, Message: message}
}

// MessageRequest is the body of POST /api/v1/messages.
type MessageRequest struct {
	To       string            `json:"to"`
	Body     string            `json:"body"`
	Template string            `json:"template"`
	Params   map[string]string `json:"params"`
	Mode     string            `json:"mode"` // secure (default) or plain
}

// Sent is what the backend reports for a message it accepted.
type Sent struct {
	RoomID    string
	PatientID string
}

// MessageStatus is a message as GET /api/v1/messages/{id} shows it.
type MessageStatus struct {
	ID        string `json:"id"`
	Status    string `json:"status"` // queued, sent, delivered, read, failed, refused
	Mode      string `json:"mode"`   // secure or plain
	Error     string `json:"error,omitempty"`
	PatientID string `json:"-"`
}

// BroadcastRequest is the body of POST /api/v1/broadcasts.
type BroadcastRequest struct {
	Template string            `json:"template"`
	To       []string          `json:"to"`
	Params   map[string]string `json:"params"`
}

// BroadcastStatus is a broadcast as GET /api/v1/broadcasts/{id} shows it.
type BroadcastStatus struct {
	ID      string         `json:"id"`
	Sent    int            `json:"sent"`
	Skipped map[string]int `json:"skipped"`
	Failed  int            `json:"failed"`
	Done    bool           `json:"done"`
}

// Backend is implemented by the bridge.
type Backend interface {
	// SendMessage sends a message to the patient at req.To from the integration, opening the
	// patient's room if needed, with id as the message's id. Bad input is a *Refusal. A
	// message id already sent returns its earlier result and sends nothing.
	SendMessage(ctx context.Context, integration, id string, req *MessageRequest) (*Sent, error)
	// Message returns a message's status, or nil if there is none.
	Message(ctx context.Context, id string) (*MessageStatus, error)
	// StartBroadcast starts a broadcast with id; bad input (unknown template, missing value)
	// is a *Refusal.
	StartBroadcast(ctx context.Context, integration, id string, req *BroadcastRequest) error
	// Broadcast returns a broadcast's progress, or nil if there is none.
	Broadcast(ctx context.Context, id string) (*BroadcastStatus, error)
	// PatientID returns the clinic's patient id for a mobile number (creating the patient's
	// record, not their room); a number that cannot receive texts is a *Refusal.
	PatientID(ctx context.Context, number, firstName, lastName string) (string, error)
	// AppointmentChanged tells the backend an appointment was created, updated or cancelled.
	AppointmentChanged(ctx context.Context, integration string, a *appointment.Appointment, created bool)
}

// Config holds the API's settings.
type Config struct {
	RequestsPerMinute int             // per token
	ReminderOffsets   []time.Duration // network.reminders.offsets
	Now               func() time.Time
}

// Server serves the integration API.
type Server struct {
	cfg          Config
	db           *dbutil.Database
	tokens       *apitoken.Store
	appointments *appointment.Store
	audit        *audit.Log
	backend      Backend
	limiter      *limiter
}

// New returns the API server; call Upgrade before serving.
func New(cfg Config, db *dbutil.Database, tokens *apitoken.Store, appointments *appointment.Store, auditLog *audit.Log, backend Backend, log zerolog.Logger) (*Server, error) {
	if cfg.RequestsPerMinute < 1 {
		return nil, errors.New("api: RequestsPerMinute must be at least 1")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{
		cfg:          cfg,
		db:           db.Child("careline_api_version", table, dbutil.ZeroLogger(log)),
		tokens:       tokens,
		appointments: appointments,
		audit:        auditLog,
		backend:      backend,
		limiter:      newLimiter(cfg.RequestsPerMinute, cfg.Now),
	}, nil
}

// Upgrade creates or migrates the API's tables.
func (s *Server) Upgrade(ctx context.Context) error { return s.db.Upgrade(ctx) }

// Register adds the API's routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/openapi.json", serveOpenAPI)
	mux.Handle("POST /api/v1/messages", s.authed(false, "message.create", s.messageCreate))
	mux.Handle("GET /api/v1/messages/{id}", s.authed(false, "message.get", s.messageGet))
	mux.Handle("POST /api/v1/broadcasts", s.authed(false, "broadcast.create", s.broadcastCreate))
	mux.Handle("GET /api/v1/broadcasts/{id}", s.authed(false, "broadcast.get", s.broadcastGet))
	mux.Handle("PUT /fhir/r4/Appointment/{id}", s.authed(true, "appointment.put", s.appointmentPut))
	mux.Handle("GET /fhir/r4/Appointment/{id}", s.authed(true, "appointment.get", s.appointmentGet))
	mux.Handle("DELETE /fhir/r4/Appointment/{id}", s.authed(true, "appointment.delete", s.appointmentDelete))
	// Anything else under the API's prefixes gets an answer in the API's own format.
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint: "+r.Method+" "+r.URL.Path)
	})
	mux.HandleFunc("/fhir/r4/", func(w http.ResponseWriter, r *http.Request) {
		writeOutcome(w, &fhirProblem{status: http.StatusNotFound, code: "not-supported", diagnostics: "careline supports PUT, GET and DELETE of /fhir/r4/Appointment/{id} only"})
	})
}
