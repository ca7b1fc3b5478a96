package stubhs

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

const token = "as-token"

func request(t *testing.T, s *Server, method, path, asUser string, body any) (int, map[string]any) {
	t.Helper()
	var reader io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		reader = bytes.NewReader(data)
	}
	if asUser != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "user_id=" + asUser
	}
	req, _ := http.NewRequest(method, s.URL+path, reader)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

func start(t *testing.T, onMessage func(Message)) *Server {
	t.Helper()
	s, err := Start("", Options{ServerName: "hs.test", ASToken: token, BotUser: "@bot:hs.test", OnMessage: onMessage})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStartRefusesNonLoopback(t *testing.T) {
	if _, err := Start("0.0.0.0:0", Options{ServerName: "hs.test", ASToken: token, BotUser: "@bot:hs.test"}); err == nil {
		t.Fatal("Start listened on every interface")
	}
}

func TestRejectsWrongToken(t *testing.T) {
	s := start(t, nil)
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/_matrix/client/v3/account/whoami", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("whoami with a wrong token: HTTP %d, want 401", resp.StatusCode)
	}
}

func TestWhoamiAndRegistration(t *testing.T) {
	s := start(t, nil)
	if _, out := request(t, s, http.MethodGet, "/_matrix/client/v3/account/whoami", "", nil); out["user_id"] != "@bot:hs.test" {
		t.Fatalf("whoami as the bot: %v", out)
	}
	if _, out := request(t, s, http.MethodGet, "/_matrix/client/v3/account/whoami", "@ghost:hs.test", nil); out["user_id"] != "@ghost:hs.test" {
		t.Fatalf("whoami as a ghost: %v", out)
	}
	reg := map[string]any{"username": "ghost", "type": "m.login.application_service"}
	if status, out := request(t, s, http.MethodPost, "/_matrix/client/v3/register", "", reg); status != 200 || out["user_id"] != "@ghost:hs.test" {
		t.Fatalf("first registration: HTTP %d %v", status, out)
	}
	if status, out := request(t, s, http.MethodPost, "/_matrix/client/v3/register", "", reg); status != 400 || out["errcode"] != "M_USER_IN_USE" {
		t.Fatalf("second registration: HTTP %d %v, want M_USER_IN_USE", status, out)
	}
}

func TestRoomStateAndMessages(t *testing.T) {
	var mu sync.Mutex
	var got []Message
	s := start(t, func(m Message) { mu.Lock(); got = append(got, m); mu.Unlock() })
	_, out := request(t, s, http.MethodPost, "/_matrix/client/v3/createRoom", "@ghost:hs.test", map[string]any{
		"name": "Patient", "invite": []string{"@nurse:hs.test"},
		"initial_state": []map[string]any{{"type": "m.bridge", "state_key": "k", "content": map[string]any{"x": 1}}},
	})
	roomID, _ := out["room_id"].(string)
	if roomID == "" {
		t.Fatalf("createRoom: %v", out)
	}
	if status, out := request(t, s, http.MethodGet, "/_matrix/client/v3/rooms/"+roomID+"/state/m.bridge/k", "", nil); status != 200 || out["x"] != float64(1) {
		t.Fatalf("initial state read back: HTTP %d %v", status, out)
	}
	if status, _ := request(t, s, http.MethodGet, "/_matrix/client/v3/rooms/"+roomID+"/state/m.room.topic/", "", nil); status != 404 {
		t.Fatalf("unset state: HTTP %d, want 404", status)
	}
	request(t, s, http.MethodPut, "/_matrix/client/v3/rooms/"+roomID+"/state/m.room.topic/", "", map[string]any{"topic": "t"})
	if _, out := request(t, s, http.MethodGet, "/_matrix/client/v3/rooms/"+roomID+"/state/m.room.topic/", "", nil); out["topic"] != "t" {
		t.Fatalf("state written and read back: %v", out)
	}
	request(t, s, http.MethodPost, "/_matrix/client/v3/rooms/"+roomID+"/join", "@nurse:hs.test", map[string]any{})
	_, out = request(t, s, http.MethodGet, "/_matrix/client/v3/rooms/"+roomID+"/joined_members", "", nil)
	joined, _ := out["joined"].(map[string]any)
	if _, ok := joined["@nurse:hs.test"]; !ok || len(joined) != 2 {
		t.Fatalf("joined members after the invitee joined: %v", joined)
	}
	status, out := request(t, s, http.MethodPut, "/_matrix/client/v3/rooms/"+roomID+"/send/m.room.message/txn1", "@ghost:hs.test", map[string]any{"msgtype": "m.text", "body": "hello"})
	if status != 200 || out["event_id"] == nil {
		t.Fatalf("send: HTTP %d %v", status, out)
	}
	first, _ := out["event_id"].(string)
	// As mautrix sends it: user_id escaped, after another parameter.
	status, out = request(t, s, http.MethodPut, "/_matrix/client/v3/rooms/"+roomID+"/send/m.room.message/txn3?ts=1&user_id=%40other%3Ahs.test", "", map[string]any{"msgtype": "m.text", "body": "say \"hi\" \u00e9"})
	second, _ := out["event_id"].(string)
	if status != 200 || second == first || !strings.HasPrefix(second, "$stub") || !strings.HasSuffix(second, ":hs.test") {
		t.Fatalf("second send: HTTP %d %v (first event %s)", status, out, first)
	}
	request(t, s, http.MethodPut, "/_matrix/client/v3/rooms/"+roomID+"/send/m.reaction/txn2", "@ghost:hs.test", map[string]any{})
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Body != "hello" || got[0].RoomID != roomID || got[0].Sender != "@ghost:hs.test" || got[0].Arrived.IsZero() {
		t.Fatalf("recorded messages: %+v", got)
	}
	if got[1].Body != "say \"hi\" é" || got[1].Sender != "@other:hs.test" {
		t.Fatalf("second message recorded as %+v", got[1])
	}
	if s.Messages() != 2 {
		t.Fatalf("Messages() = %d, want 2", s.Messages())
	}
}

func TestUnknownEndpointsAreCounted(t *testing.T) {
	s := start(t, nil)
	request(t, s, http.MethodPost, "/_matrix/client/v3/something/new", "", map[string]any{})
	if u := s.Unknown(); len(u) != 1 {
		t.Fatalf("Unknown() = %v, want the one unknown request", u)
	}
}

// bridgev2 reads a profile field before setting it; an unset field must not be an error, or
// every message retries the ghost's profile.
func TestUnsetProfileFieldIsEmptyNotError(t *testing.T) {
	s := start(t, nil)
	status, out := request(t, s, http.MethodGet, "/_matrix/client/v3/profile/@ghost:hs.test/avatar_url", "", nil)
	if status != 200 || len(out) != 0 {
		t.Fatalf("unset avatar: HTTP %d %v, want 200 {}", status, out)
	}
	request(t, s, http.MethodPut, "/_matrix/client/v3/profile/@ghost:hs.test/displayname", "@ghost:hs.test", map[string]any{"displayname": "Patient 4567"})
	if _, out = request(t, s, http.MethodGet, "/_matrix/client/v3/profile/@ghost:hs.test/displayname", "", nil); out["displayname"] != "Patient 4567" {
		t.Fatalf("displayname read back: %v", out)
	}
}
