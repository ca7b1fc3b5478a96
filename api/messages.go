package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"go.mau.fi/util/random"
)

const kindMessage = "message"

func newMessageID() string { return "msg_" + random.String(22) }

// messageCreate: POST /api/v1/messages.
func (s *Server) messageCreate(w http.ResponseWriter, r *http.Request, c *call) {
	data, status, problem := readBody(r, "application/json")
	if status != 0 {
		writeError(w, status, problem)
		return
	}
	var req MessageRequest
	if err := decodeStrict(data, &req); err != nil {
		writeError(w, http.StatusBadRequest, "the body is not a message: "+jsonProblem(err))
		return
	}
	if problem := req.check(); problem != "" {
		writeError(w, http.StatusBadRequest, problem)
		return
	}
	s.create(w, r, c, kindMessage, data, newMessageID(), func(id string) (int, any, error) {
		sent, err := s.backend.SendMessage(r.Context(), c.token, id, &req)
		if err != nil {
			return 0, nil, err
		}
		c.patientID = sent.PatientID
		return http.StatusAccepted, map[string]string{"id": id, "room_id": sent.RoomID}, nil
	})
}

func (req *MessageRequest) check() string {
	req.To = strings.TrimSpace(req.To)
	switch {
	case req.To == "":
		return `"to" is required: the patient's mobile number, e.g. +14155550123`
	case req.Body != "" && req.Template != "":
		return `give either "body" or "template", not both`
	case strings.TrimSpace(req.Body) == "" && req.Template == "":
		return `"body" or "template" is required`
	case req.Body != "" && len(req.Params) > 0:
		return `"params" go with "template", not with "body"`
	case req.Mode != "" && req.Mode != "secure" && req.Mode != "plain":
		return `"mode" must be "secure" (the default) or "plain"`
	case len(req.Body) > 10_000:
		return `"body" is longer than 10,000 characters`
	}
	return ""
}

// create runs a creating request with its Idempotency-Key (if any): a retry of a request
// that succeeded gets the same answer and creates nothing.
func (s *Server) create(w http.ResponseWriter, r *http.Request, c *call, kind string, body []byte, id string, do func(id string) (int, any, error)) {
	ctx := r.Context()
	key := r.Header.Get("Idempotency-Key")
	if len(key) > MaxIdempotencyKey {
		writeError(w, http.StatusBadRequest, "Idempotency-Key is longer than 255 characters")
		return
	}
	if key != "" {
		res, err := s.reserve(ctx, c.token, key, kind, body, id)
		if err != nil {
			idempotencyError(w, err)
			return
		}
		if res.replayStatus != 0 {
			c.detail = kind + " " + res.objectID + " (replayed)"
			w.Header().Set("Idempotent-Replayed", "true")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(res.replayStatus)
			_, _ = w.Write([]byte(res.replay))
			return
		}
		id = res.objectID
	}
	c.detail = kind + " " + id
	// Ownership first: an object is never created without an owner, whatever happens next.
	if err := s.own(ctx, kind, id, c.token); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not record which token creates an object")
		s.abandon(w, r, c, key, http.StatusServiceUnavailable, "careline could not record the request; nothing was sent, try again")
		return
	}
	status, out, err := do(id)
	var refusal *Refusal
	switch {
	case errors.As(err, &refusal):
		if derr := s.disown(ctx, kind, id); derr != nil {
			zerolog.Ctx(ctx).Err(derr).Msg("Could not forget a refused request's object")
		}
		s.abandon(w, r, c, key, refusal.Status, refusal.Message)
		return
	case err != nil:
		zerolog.Ctx(ctx).Err(err).Str("kind", kind).Str("id", id).Msg("API request failed")
		s.abandon(w, r, c, key, http.StatusServiceUnavailable, "careline could not complete the request; retry it with the same Idempotency-Key")
		return
	}
	response, _ := json.Marshal(out)
	if key != "" {
		if err = s.finish(ctx, c.token, key, status, string(response)); err != nil {
			zerolog.Ctx(ctx).Err(err).Msg("Could not record the answer to an idempotent request")
		}
	}
	writeJSON(w, status, out)
}

func (s *Server) abandon(w http.ResponseWriter, r *http.Request, c *call, key string, status int, message string) {
	if key != "" {
		if err := s.finish(r.Context(), c.token, key, status, ""); err != nil {
			zerolog.Ctx(r.Context()).Err(err).Msg("Could not free an Idempotency-Key")
		}
	}
	writeError(w, status, message)
}

// messageGet: GET /api/v1/messages/{id}.
func (s *Server) messageGet(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	c.detail = "message " + id
	if ok, err := s.owns(r.Context(), kindMessage, id, c.token); err != nil {
		writeError(w, http.StatusServiceUnavailable, "careline cannot look the message up right now")
		return
	} else if !ok {
		writeError(w, http.StatusNotFound, "no message "+id+" was sent with this token")
		return
	}
	m, err := s.backend.Message(r.Context(), id)
	if err != nil {
		zerolog.Ctx(r.Context()).Err(err).Msg("Could not read a message's status")
		writeError(w, http.StatusServiceUnavailable, "careline cannot look the message up right now")
		return
	} else if m == nil {
		writeError(w, http.StatusNotFound, "no message "+id+" was sent with this token")
		return
	}
	c.patientID = m.PatientID
	writeJSON(w, http.StatusOK, m)
}

func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return "invalid JSON at byte " + strconv.FormatInt(syntax.Offset, 10)
	case errors.As(err, &typeErr):
		return typeErr.Field + " must be " + typeErr.Type.String()
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	case errors.Is(err, errTrailing):
		return err.Error()
	}
	return "invalid JSON"
}
