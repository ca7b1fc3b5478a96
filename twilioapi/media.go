package twilioapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// MaxMediaBytes bounds one inbound attachment (Twilio's own MMS limit is 5 MB).
const MaxMediaBytes = 16 << 20

// ErrMediaHost is returned for a media URL (or a redirect) that is not one of Twilio's hosts.
var ErrMediaHost = errors.New("the media URL is not on one of Twilio's hosts")

// mediaHostAllowed reports whether media may be fetched from u: https on twilio.com, its
// subdomains or Twilio's media CDN (mms.twiliocdn.com; Twilio's older public media live under
// s3-external-1.amazonaws.com/media.twiliocdn.com/), or the configured API base URL (tests
// and regional edges). The webhook names the URL, so without this the account's credentials
// would go wherever a forged or mistaken URL points.
func (c *Client) mediaHostAllowed(u *url.URL) bool {
	if u.User != nil {
		return false
	}
	if c.apiBase != nil && u.Scheme == c.apiBase.Scheme && u.Host == c.apiBase.Host {
		return true
	}
	if u.Scheme != "https" || u.Port() != "" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case host == "twilio.com" || strings.HasSuffix(host, ".twilio.com"):
		return true
	case host == "twiliocdn.com" || strings.HasSuffix(host, ".twiliocdn.com"):
		return true
	case host == "s3-external-1.amazonaws.com" && strings.HasPrefix(u.Path, "/media.twiliocdn.com/"):
		return true
	}
	return false
}

// FetchMedia downloads an inbound MMS attachment with the account's credentials, following
// Twilio's redirect to its media store: only over https to Twilio's own hosts (see
// mediaHostAllowed), redirects included.
func (c *Client) FetchMedia(ctx context.Context, mediaURL string) (contentType string, data []byte, err error) {
	u, err := url.Parse(mediaURL)
	if err != nil {
		return "", nil, fmt.Errorf("bad media URL: %w", err)
	}
	if !c.mediaHostAllowed(u) {
		return "", nil, ErrMediaHost
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, mediaURL, nil)
	if err != nil {
		return "", nil, fmt.Errorf("bad media URL: %w", err)
	}
	req.SetBasicAuth(c.AccountSID, c.authToken)
	resp, err := c.media.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("fetching media from Twilio: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Typed, so a caller can tell media Twilio no longer has (404) from an outage.
		return "", nil, &Error{Status: resp.StatusCode, Err: fmt.Errorf("fetching media from Twilio: HTTP %d", resp.StatusCode)}
	}
	data, err = io.ReadAll(io.LimitReader(resp.Body, MaxMediaBytes+1))
	if err != nil {
		return "", nil, fmt.Errorf("reading media from Twilio: %w", err)
	}
	if len(data) > MaxMediaBytes {
		return "", nil, fmt.Errorf("the attachment is larger than %d MB", MaxMediaBytes>>20)
	}
	contentType, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return contentType, data, nil
}

// DeleteMedia removes an attachment from Twilio once careline has stored it. The media SID is
// the last segment of the webhook's MediaUrlN.
func (c *Client) DeleteMedia(messageSID, mediaURL string) error {
	u, err := url.Parse(mediaURL)
	if err != nil {
		return err
	}
	mediaSID := path.Base(strings.TrimSuffix(u.Path, ".json"))
	if !strings.HasPrefix(mediaSID, "ME") || !isAlnum(mediaSID) {
		return fmt.Errorf("the media URL does not end in a media SID")
	}
	if err := c.rest.Api.DeleteMedia(messageSID, mediaSID, nil); err != nil {
		return Wrap(err)
	}
	return nil
}
