package twilioapi

import (
	"context"
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

// FetchMedia downloads an inbound MMS attachment with the account's credentials,
// following Twilio's redirect to its media store.
func (c *Client) FetchMedia(ctx context.Context, mediaURL string) (contentType string, data []byte, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, mediaURL, nil)
	if err != nil {
		return "", nil, fmt.Errorf("bad media URL: %w", err)
	}
	req.SetBasicAuth(c.AccountSID, c.authToken)
	resp, err := c.http.Do(req)
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
