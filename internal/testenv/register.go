package testenv

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"maunium.net/go/mautrix/id"
)

// RegisterUser creates an account through shared-secret registration
// (/_synapse/admin/v1/register, which Dendrite implements) and returns its user ID and an access
// token. That token belongs to a device Dendrite always names "shared_secret_registration", so
// clients that need their own device (E2EE) should log in afterwards.
func (hs *Homeserver) RegisterUser(ctx context.Context, localpart, password string) (id.UserID, string, error) {
	return hs.register(ctx, localpart, password, false)
}

// RegisterAdmin is RegisterUser for a server admin account (Dendrite's /_dendrite/admin APIs).
func (hs *Homeserver) RegisterAdmin(ctx context.Context, localpart, password string) (id.UserID, string, error) {
	return hs.register(ctx, localpart, password, true)
}

func (hs *Homeserver) register(ctx context.Context, localpart, password string, admin bool) (id.UserID, string, error) {
	endpoint := hs.URL + "/_synapse/admin/v1/register"
	var nonce struct {
		Nonce string `json:"nonce"`
	}
	if err := doJSON(ctx, http.MethodGet, endpoint, nil, &nonce); err != nil {
		return "", "", fmt.Errorf("getting registration nonce: %w", err)
	}
	adminStr := "notadmin"
	if admin {
		adminStr = "admin"
	}
	mac := hmac.New(sha1.New, []byte(hs.SharedSecret))
	mac.Write([]byte(nonce.Nonce + "\x00" + localpart + "\x00" + password + "\x00" + adminStr))
	req := map[string]any{
		"nonce":    nonce.Nonce,
		"username": localpart,
		"password": password,
		"admin":    admin,
		"mac":      hex.EncodeToString(mac.Sum(nil)),
	}
	var resp struct {
		UserID      id.UserID `json:"user_id"`
		AccessToken string    `json:"access_token"`
	}
	if err := doJSON(ctx, http.MethodPost, endpoint, req, &resp); err != nil {
		return "", "", fmt.Errorf("registering %s: %w", localpart, err)
	}
	if resp.UserID == "" || resp.AccessToken == "" {
		return "", "", fmt.Errorf("registering %s: response without user_id or access_token", localpart)
	}
	return resp.UserID, resp.AccessToken, nil
}

func doJSON(ctx context.Context, method, url string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		// Matrix error bodies carry errcode and error, never the request's secrets.
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, out)
}
