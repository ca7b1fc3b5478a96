package portal

import (
	"net/http/httptest"
	"testing"
)

func TestSameOrigin(t *testing.T) {
	p := &Portal{cfg: Config{PublicURL: "https://texts.example.org"}}
	cases := []struct {
		site, origin string
		want         bool
	}{
		{"", "", true},
		{"same-origin", "https://texts.example.org", true},
		// Chromium's form posts under Referrer-Policy: no-referrer.
		{"same-origin", "null", true},
		{"", "null", false},
		{"cross-site", "null", false},
		{"same-site", "https://texts.example.org", false},
		{"same-origin", "https://evil.example", false},
		{"", "http://texts.example.org", false},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/reply", nil)
		if c.site != "" {
			r.Header.Set("Sec-Fetch-Site", c.site)
		}
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if got := p.sameOrigin(r); got != c.want {
			t.Errorf("Sec-Fetch-Site %q, Origin %q: sameOrigin = %v, want %v", c.site, c.origin, got, c.want)
		}
	}
}
