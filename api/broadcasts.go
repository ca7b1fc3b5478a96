package api

import (
	"net/http"
	"strings"

	"github.com/rs/zerolog"
	"go.mau.fi/util/random"
)

const kindBroadcast = "broadcast"

// maxBroadcastTargets bounds one broadcast request.
const maxBroadcastTargets = 10_000

// broadcastCreate: POST /api/v1/broadcasts.
func (s *Server) broadcastCreate(w http.ResponseWriter, r *http.Request, c *call) {
	data, status, problem := readBody(r, "application/json")
	if status != 0 {
		writeError(w, status, problem)
		return
	}
	var req BroadcastRequest
	if err := decodeStrict(data, &req); err != nil {
		writeError(w, http.StatusBadRequest, "the body is not a broadcast: "+jsonProblem(err))
		return
	}
	switch {
	case strings.TrimSpace(req.Template) == "":
		writeError(w, http.StatusBadRequest, `"template" is required: broadcasts send a configured template`)
		return
	case len(req.To) == 0:
		writeError(w, http.StatusBadRequest, `"to" is required: a list of mobile numbers`)
		return
	case len(req.To) > maxBroadcastTargets:
		writeError(w, http.StatusBadRequest, `"to" has more than 10,000 numbers; split the broadcast`)
		return
	}
	s.create(w, r, c, kindBroadcast, data, "bc_"+random.String(22), func(id string) (int, any, error) {
		if err := s.backend.StartBroadcast(r.Context(), c.token, id, &req); err != nil {
			return 0, nil, err
		}
		return http.StatusAccepted, map[string]string{"id": id}, nil
	})
}

// broadcastGet: GET /api/v1/broadcasts/{id}.
func (s *Server) broadcastGet(w http.ResponseWriter, r *http.Request, c *call) {
	id := r.PathValue("id")
	c.detail = "broadcast " + id
	if ok, err := s.owns(r.Context(), kindBroadcast, id, c.token); err != nil {
		writeError(w, http.StatusServiceUnavailable, "careline cannot look the broadcast up right now")
		return
	} else if !ok {
		writeError(w, http.StatusNotFound, "no broadcast "+id+" was started with this token")
		return
	}
	b, err := s.backend.Broadcast(r.Context(), id)
	if err != nil {
		zerolog.Ctx(r.Context()).Err(err).Msg("Could not read a broadcast's progress")
		writeError(w, http.StatusServiceUnavailable, "careline cannot look the broadcast up right now")
		return
	} else if b == nil {
		writeError(w, http.StatusNotFound, "no broadcast "+id+" was started with this token")
		return
	}
	if b.Skipped == nil {
		b.Skipped = map[string]int{}
	}
	writeJSON(w, http.StatusOK, b)
}
