// Package stubhs is a homeserver stand-in for load measurements: it answers the
// client-server and appservice endpoints a bridgev2 bridge calls (versions, whoami, ghost
// registration, profiles, createRoom, joins, invites, state, send, media) at once and from
// memory, so a measurement times the bridge and not the homeserver. It keeps just enough room
// state for bridgev2 to read back what it wrote, and records when each m.room.message arrives.
// It is not a homeserver: nothing is federated, authorised beyond the appservice token, or
// delivered to clients. Tests of behaviour use Dendrite (internal/testenv).
package stubhs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Message is an m.room.message as the stub received it.
type Message struct {
	RoomID  string
	Sender  string
	Body    string
	Arrived time.Time
}

// Options configure a stub.
type Options struct {
	ServerName string // e.g. careline.test
	ASToken    string // the appservice's as_token; requests without it get M_UNKNOWN_TOKEN
	BotUser    string // the appservice bot's user ID, whom requests without ?user_id= act as
	// OnMessage, when set, is called for every m.room.message sent, on the request's goroutine.
	OnMessage func(Message)
}

// Server is a running stub homeserver.
type Server struct {
	URL string

	opts     Options
	auth     string // the Authorization header the appservice sends
	srv      *http.Server
	listener net.Listener

	mu        sync.Mutex
	rooms     map[string]*room
	profiles  map[string]map[string]any
	users     map[string]bool
	unknown   map[string]int // "METHOD path-shape" of requests the stub has no answer for
	eventSeq  atomic.Int64
	roomSeq   atomic.Int64
	mediaSeq  atomic.Int64
	messages  atomic.Int64
	requests  atomic.Int64
	mediaData sync.Map // media ID → []byte
}

type room struct {
	state   map[string]map[string]json.RawMessage // type → state key → content
	members map[string]string                     // user ID → membership
}

// Start listens on 127.0.0.1 (addr "" picks a free port) and serves until Close.
func Start(addr string, opts Options) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("stub homeserver address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("stub homeserver address %q: only loopback addresses are allowed", addr)
	}
	if opts.ServerName == "" || opts.ASToken == "" || opts.BotUser == "" {
		return nil, errors.New("stub homeserver needs a server name, the appservice token and the bot's user ID")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:      "http://" + l.Addr().String(),
		opts:     opts,
		auth:     "Bearer " + opts.ASToken,
		listener: l,
		rooms:    map[string]*room{},
		profiles: map[string]map[string]any{},
		users:    map[string]bool{},
		unknown:  map[string]int{},
	}
	// No read timeouts: the stub listens on loopback for the bridge under test only, and a
	// timeout costs two deadline updates per request, on the CPU the bridge is measured on.
	s.srv = &http.Server{Handler: s}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// Messages is how many m.room.message events were sent so far.
func (s *Server) Messages() int64 { return s.messages.Load() }

// Requests is how many requests the stub answered so far.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Rooms is how many rooms were created.
func (s *Server) Rooms() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

// Unknown lists requests the stub had no specific answer for (answered with {}), by shape,
// so a measurement can tell whether the bridge relied on something the stub only pretends.
func (s *Server) Unknown() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.unknown))
	for k, v := range s.unknown {
		out[k] = v
	}
	return out
}

// userID is whom the appservice acts as. Only user_id is read from the query: parsing all of it
// into a map for every request is work the bridges' load would pay for.
func (s *Server) userID(r *http.Request) string {
	for q := r.URL.RawQuery; q != ""; {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if v, ok := strings.CutPrefix(kv, "user_id="); ok && v != "" {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
		}
	}
	return s.opts.BotUser
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func matrixError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"errcode": code, "error": msg})
}

func (s *Server) newEventID() string {
	return fmt.Sprintf("$stub%d:%s", s.eventSeq.Add(1), s.opts.ServerName)
}

// ServeHTTP routes by path segments: the endpoint set is small and fixed, and the same stub
// serves bridges built on different mautrix versions (v1 and v3 prefixes).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	path := r.URL.EscapedPath()
	switch {
	case path == "/_matrix/client/versions":
		writeJSON(w, http.StatusOK, map[string]any{
			"versions": []string{"v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11"},
		})
		return
	case strings.HasPrefix(path, "/_matrix/media/"), strings.HasPrefix(path, "/_matrix/client/v1/media/"):
		s.serveMedia(w, r, path)
		return
	}
	if r.Header.Get("Authorization") != s.auth {
		matrixError(w, http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "Unknown access token")
		return
	}
	var rest string
	for _, prefix := range []string{"/_matrix/client/v3/", "/_matrix/client/r0/", "/_matrix/client/v1/", "/_matrix/client/unstable/"} {
		if strings.HasPrefix(path, prefix) {
			rest = path[len(prefix):]
			break
		}
	}
	parts := strings.Split(rest, "/")
	for i, p := range parts {
		if u, err := unescape(p); err == nil {
			parts[i] = u
		}
	}
	user := s.userID(r)
	switch {
	case rest == "account/whoami":
		writeJSON(w, http.StatusOK, map[string]any{"user_id": user, "device_id": "STUB"})
	case rest == "register":
		var req struct {
			Username string `json:"username"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		mxid := "@" + req.Username + ":" + s.opts.ServerName
		s.mu.Lock()
		exists := s.users[mxid]
		s.users[mxid] = true
		s.mu.Unlock()
		if exists {
			matrixError(w, http.StatusBadRequest, "M_USER_IN_USE", "User ID already taken.")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"user_id": mxid})
	case len(parts) == 3 && parts[0] == "appservice" && parts[2] == "ping":
		writeJSON(w, http.StatusOK, map[string]any{"duration_ms": 0})
	case rest == "capabilities":
		writeJSON(w, http.StatusOK, map[string]any{"capabilities": map[string]any{}})
	case parts[0] == "profile" && len(parts) >= 2:
		s.serveProfile(w, r, parts)
	case rest == "createRoom":
		s.createRoom(w, r, user)
	case parts[0] == "join" && len(parts) == 2:
		s.setMembership(parts[1], user, "join")
		writeJSON(w, http.StatusOK, map[string]any{"room_id": parts[1]})
	case parts[0] == "rooms" && len(parts) >= 3:
		s.serveRoom(w, r, user, parts[1], parts[2:])
	case parts[0] == "user" && len(parts) >= 4 && parts[2] == "account_data":
		if r.Method == http.MethodGet {
			matrixError(w, http.StatusNotFound, "M_NOT_FOUND", "Account data not found")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{})
	case parts[0] == "directory":
		matrixError(w, http.StatusNotFound, "M_NOT_FOUND", "Room alias not found")
	case parts[0] == "presence", parts[0] == "sendToDevice", parts[0] == "keys":
		writeJSON(w, http.StatusOK, map[string]any{})
	default:
		s.noteUnknown(r, parts)
		writeJSON(w, http.StatusOK, map[string]any{})
	}
}

func unescape(p string) (string, error) {
	if !strings.Contains(p, "%") {
		return p, nil
	}
	return url.PathUnescape(p)
}

func (s *Server) noteUnknown(r *http.Request, parts []string) {
	shape := r.Method + " " + strings.Join(parts[:min(len(parts), 1)], "/")
	if len(parts) > 2 {
		shape += "/…/" + parts[2]
	}
	s.mu.Lock()
	s.unknown[shape]++
	s.mu.Unlock()
}

func (s *Server) serveProfile(w http.ResponseWriter, r *http.Request, parts []string) {
	target := parts[1]
	s.mu.Lock()
	defer s.mu.Unlock()
	prof := s.profiles[target]
	if prof == nil {
		prof = map[string]any{}
		s.profiles[target] = prof
	}
	switch {
	case r.Method == http.MethodGet && len(parts) == 2:
		writeJSON(w, http.StatusOK, prof)
	case r.Method == http.MethodGet:
		// As Synapse answers for a user without that field: 200 and no value. (A 404 here makes
		// bridgev2 fail the profile update and retry it on every message.)
		out := map[string]any{}
		if v, ok := prof[parts[2]]; ok {
			out[parts[2]] = v
		}
		writeJSON(w, http.StatusOK, out)
	case r.Method == http.MethodPut && len(parts) == 3:
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		for k, v := range body {
			prof[k] = v
		}
		writeJSON(w, http.StatusOK, map[string]any{})
	default:
		writeJSON(w, http.StatusOK, map[string]any{})
	}
}

type stateEvent struct {
	Type     string          `json:"type"`
	StateKey string          `json:"state_key"`
	Content  json.RawMessage `json:"content"`
}

func (s *Server) createRoom(w http.ResponseWriter, r *http.Request, creator string) {
	var req struct {
		Name          string          `json:"name"`
		Topic         string          `json:"topic"`
		Invite        []string        `json:"invite"`
		InitialState  []stateEvent    `json:"initial_state"`
		PowerLevels   json.RawMessage `json:"power_level_content_override"`
		CreationExtra json.RawMessage `json:"creation_content"`
		RoomVersion   string          `json:"room_version"`
		Preset        string          `json:"preset"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		matrixError(w, http.StatusBadRequest, "M_NOT_JSON", "Body is not JSON")
		return
	}
	roomID := fmt.Sprintf("!stub%d:%s", s.roomSeq.Add(1), s.opts.ServerName)
	rm := &room{state: map[string]map[string]json.RawMessage{}, members: map[string]string{creator: "join"}}
	put := func(typ, key string, content json.RawMessage) {
		if rm.state[typ] == nil {
			rm.state[typ] = map[string]json.RawMessage{}
		}
		rm.state[typ][key] = content
	}
	create := req.CreationExtra
	if len(create) == 0 {
		create = json.RawMessage(`{}`)
	}
	put("m.room.create", "", create)
	if len(req.PowerLevels) > 0 {
		put("m.room.power_levels", "", req.PowerLevels)
	}
	if req.Name != "" {
		put("m.room.name", "", mustJSON(map[string]string{"name": req.Name}))
	}
	if req.Topic != "" {
		put("m.room.topic", "", mustJSON(map[string]string{"topic": req.Topic}))
	}
	// What the preset would have set, so a bridge reading it back finds it.
	joinRule := "invite"
	if req.Preset == "public_chat" {
		joinRule = "public"
	}
	put("m.room.join_rules", "", mustJSON(map[string]string{"join_rule": joinRule}))
	for _, ev := range req.InitialState {
		put(ev.Type, ev.StateKey, ev.Content)
	}
	for _, u := range req.Invite {
		rm.members[u] = "invite"
	}
	for u, m := range rm.members {
		put("m.room.member", u, mustJSON(map[string]string{"membership": m}))
	}
	s.mu.Lock()
	s.rooms[roomID] = rm
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"room_id": roomID})
}

func mustJSON(v any) json.RawMessage {
	data, _ := json.Marshal(v)
	return data
}

func (s *Server) setMembership(roomID, user, membership string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rm := s.rooms[roomID]
	if rm == nil {
		return
	}
	rm.members[user] = membership
	if rm.state["m.room.member"] == nil {
		rm.state["m.room.member"] = map[string]json.RawMessage{}
	}
	rm.state["m.room.member"][user] = mustJSON(map[string]string{"membership": membership})
}

func (s *Server) serveRoom(w http.ResponseWriter, r *http.Request, user, roomID string, parts []string) {
	switch parts[0] {
	case "join":
		s.setMembership(roomID, user, "join")
		writeJSON(w, http.StatusOK, map[string]any{"room_id": roomID})
	case "invite", "kick", "ban", "leave", "unban":
		var body struct {
			UserID string `json:"user_id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		target, membership := body.UserID, map[string]string{"invite": "invite", "kick": "leave", "ban": "ban", "leave": "leave", "unban": "leave"}[parts[0]]
		if parts[0] == "leave" {
			target = user
		}
		s.setMembership(roomID, target, membership)
		writeJSON(w, http.StatusOK, map[string]any{})
	case "send":
		s.send(w, r, user, roomID, parts)
	case "state":
		s.serveState(w, r, roomID, parts[1:])
	case "joined_members":
		s.mu.Lock()
		joined := map[string]any{}
		if rm := s.rooms[roomID]; rm != nil {
			for u, m := range rm.members {
				if m == "join" {
					joined[u] = map[string]any{}
				}
			}
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"joined": joined})
	case "members":
		s.mu.Lock()
		chunk := []map[string]any{}
		if rm := s.rooms[roomID]; rm != nil {
			for u, m := range rm.members {
				chunk = append(chunk, map[string]any{
					"type": "m.room.member", "state_key": u, "sender": u, "room_id": roomID,
					"event_id": s.newEventID(), "content": map[string]string{"membership": m},
				})
			}
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"chunk": chunk})
	case "redact":
		writeJSON(w, http.StatusOK, map[string]any{"event_id": s.newEventID()})
	default: // receipt, typing, read_markers, messages, …
		if r.Method == http.MethodGet && parts[0] == "messages" {
			writeJSON(w, http.StatusOK, map[string]any{"chunk": []any{}})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{})
	}
}

// bodies are buffers for the events sent, reused: every bridged message is one.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

var jsonContentType = []string{"application/json"}

func (s *Server) send(w http.ResponseWriter, r *http.Request, user, roomID string, parts []string) {
	if len(parts) < 2 {
		matrixError(w, http.StatusBadRequest, "M_UNRECOGNIZED", "Missing event type")
		return
	}
	evType := parts[1]
	if evType == "m.room.message" {
		arrived := time.Now()
		s.messages.Add(1)
		if s.opts.OnMessage != nil {
			// Only the body is decoded: it is what a message is matched by.
			var content struct {
				Body string `json:"body"`
			}
			buf := bodies.Get().(*bytes.Buffer)
			buf.Reset()
			_, _ = buf.ReadFrom(r.Body)
			_ = json.Unmarshal(buf.Bytes(), &content)
			bodies.Put(buf)
			s.opts.OnMessage(Message{RoomID: roomID, Sender: user, Body: content.Body, Arrived: arrived})
		}
	}
	// {"event_id":"$stubN:server"}, as writeJSON would write it, without a map and an encoder.
	var out [128]byte
	b := append(out[:0], `{"event_id":"$stub`...)
	b = strconv.AppendInt(b, s.eventSeq.Add(1), 10)
	b = append(b, ':')
	b = append(b, s.opts.ServerName...)
	b = append(b, "\"}\n"...)
	w.Header()["Content-Type"] = jsonContentType
	_, _ = w.Write(b)
}

func (s *Server) serveState(w http.ResponseWriter, r *http.Request, roomID string, parts []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rm := s.rooms[roomID]
	if rm == nil {
		matrixError(w, http.StatusForbidden, "M_FORBIDDEN", "Unknown room")
		return
	}
	if len(parts) == 0 || parts[0] == "" {
		events := []map[string]any{}
		for typ, byKey := range rm.state {
			for key, content := range byKey {
				events = append(events, map[string]any{
					"type": typ, "state_key": key, "content": content, "room_id": roomID,
					"sender": "@stub:" + s.opts.ServerName, "event_id": s.newEventID(),
				})
			}
		}
		writeJSON(w, http.StatusOK, events)
		return
	}
	typ, key := parts[0], ""
	if len(parts) > 1 {
		key = parts[1]
	}
	if r.Method == http.MethodGet {
		if content, ok := rm.state[typ][key]; ok {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(content)
			return
		}
		matrixError(w, http.StatusNotFound, "M_NOT_FOUND", "Event not found")
		return
	}
	data, err := io.ReadAll(r.Body)
	if err != nil || !json.Valid(data) {
		matrixError(w, http.StatusBadRequest, "M_NOT_JSON", "Body is not JSON")
		return
	}
	if rm.state[typ] == nil {
		rm.state[typ] = map[string]json.RawMessage{}
	}
	rm.state[typ][key] = data
	writeJSON(w, http.StatusOK, map[string]any{"event_id": s.newEventID()})
}

func (s *Server) serveMedia(w http.ResponseWriter, r *http.Request, path string) {
	switch {
	case strings.HasSuffix(path, "/config"):
		writeJSON(w, http.StatusOK, map[string]any{"m.upload.size": 100 << 20})
	case strings.HasSuffix(path, "/create"):
		id := fmt.Sprintf("stub%d", s.mediaSeq.Add(1))
		writeJSON(w, http.StatusOK, map[string]any{"content_uri": "mxc://" + s.opts.ServerName + "/" + id})
	case strings.Contains(path, "/upload"):
		data, _ := io.ReadAll(r.Body)
		id := path[strings.LastIndex(path, "/")+1:]
		if id == "upload" {
			id = fmt.Sprintf("stub%d", s.mediaSeq.Add(1))
		}
		s.mediaData.Store(id, data)
		writeJSON(w, http.StatusOK, map[string]any{"content_uri": "mxc://" + s.opts.ServerName + "/" + id})
	case strings.Contains(path, "/download/"):
		id := path[strings.LastIndex(path, "/")+1:]
		if data, ok := s.mediaData.Load(id); ok {
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(data.([]byte))
			return
		}
		matrixError(w, http.StatusNotFound, "M_NOT_FOUND", "Media not found")
	default:
		matrixError(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized media request")
	}
}
