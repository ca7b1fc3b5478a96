package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/careline/careline/apitoken"
	"github.com/careline/careline/audit"
)

// call is one authenticated request: who made it and what the audit entry should name.
type call struct {
	token     string // the token's name
	patientID string // set by handlers that touch a patient
	detail    string // set by handlers: ids involved, never content
}

type handler func(w http.ResponseWriter, r *http.Request, c *call)

// statusRecorder remembers the status written, for the audit entry.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// authed checks the bearer token and the token's rate limit, runs h, and audits the call
// with the token's name. FHIR endpoints answer refusals as OperationOutcome.
func (s *Server) authed(fhir bool, action string, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		log := zerolog.Ctx(ctx)
		refuse := func(status int, message string) {
			if fhir {
				code := "security"
				if status == http.StatusTooManyRequests {
					code = "throttled"
				}
				writeOutcome(w, &fhirProblem{status: status, code: code, diagnostics: message})
			} else {
				writeError(w, status, message)
			}
		}
		raw, ok := bearer(r)
		if !ok {
			log.Info().Str("path", r.URL.Path).Msg("API call without a bearer token refused")
			w.Header().Set("WWW-Authenticate", `Bearer realm="careline"`)
			refuse(http.StatusUnauthorized, "an API token is required: send Authorization: Bearer TOKEN (create one with careline api-token create NAME)")
			return
		}
		name, err := s.tokens.Authenticate(ctx, raw)
		if errors.Is(err, apitoken.ErrInvalid) {
			log.Info().Str("path", r.URL.Path).Msg("API call with a wrong or revoked token refused")
			w.Header().Set("WWW-Authenticate", `Bearer realm="careline", error="invalid_token"`)
			refuse(http.StatusUnauthorized, "the API token is wrong or has been revoked")
			return
		} else if err != nil {
			log.Err(err).Msg("Could not check an API token")
			refuse(http.StatusServiceUnavailable, "careline cannot check tokens right now; try again shortly")
			return
		}
		if wait, allowed := s.limiter.allow(name); !allowed {
			seconds := max(1, int(wait.Seconds()+0.999))
			w.Header().Set("Retry-After", strconv.Itoa(seconds))
			log.Warn().Str("token", name).Msg("API token over its rate limit")
			refuse(http.StatusTooManyRequests, fmt.Sprintf("token %q sent more than %d requests a minute; try again in %d s", name, s.cfg.RequestsPerMinute, seconds))
			s.record(ctx, &call{token: name}, action, r, http.StatusTooManyRequests)
			return
		}
		c := &call{token: name}
		rec := &statusRecorder{ResponseWriter: w}
		h(rec, r, c)
		s.record(ctx, c, action, r, rec.status)
	})
}

// record appends the call to the audit trail.
func (s *Server) record(ctx context.Context, c *call, action string, r *http.Request, status int) {
	if s.audit == nil {
		return
	}
	detail := fmt.Sprintf("%s %s → %d", r.Method, r.URL.Path, status)
	if c.detail != "" {
		detail += ", " + c.detail
	}
	if len(detail) > audit.MaxFieldLen {
		detail = detail[:audit.MaxFieldLen]
	}
	_, err := s.audit.Append(ctx, audit.Entry{Actor: "api:" + c.token, Action: "api." + action, PatientID: c.patientID, Detail: detail})
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Str("action", action).Msg("Could not write an API call to the audit trail")
	}
}

func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
