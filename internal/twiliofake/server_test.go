package twiliofake

import (
	"net"
	"net/url"
	"strings"
	"testing"
)

func TestStartBindsLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", "[::1]:0", "192.0.2.1:0"} {
		if s, err := StartAt(addr, Options{}); err == nil {
			s.Close()
			t.Errorf("StartAt(%q) succeeded", addr)
		}
	}
	// An empty host or "localhost" means 127.0.0.1, never all interfaces.
	for _, addr := range []string{"localhost:0", ":0"} {
		s, err := StartAt(addr, Options{})
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(s.URL)
		if err != nil || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" {
			t.Fatalf("StartAt(%q): URL = %s", addr, s.URL)
		}
		if s.ln.Addr().(*net.TCPAddr).IP.String() != "127.0.0.1" {
			t.Fatalf("StartAt(%q) listens on %s", addr, s.ln.Addr())
		}
		s.Close()
	}
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !accountSidRe.MatchString(s.AccountSID()) || len(s.AuthToken()) != 32 {
		t.Fatalf("generated credentials %s / %s", s.AccountSID(), s.AuthToken())
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"short sid":      {AccountSID: "AC123"},
		"token symbols":  {AuthToken: "abc-def"},
		"non-E164":       {Numbers: []string{"5551234567"}},
		"duplicate nums": {Numbers: []string{clinicNum, clinicNum}},
	} {
		if s, err := Start(o); err == nil {
			s.Close()
			t.Errorf("%s: Start succeeded", name)
		}
	}
}

func TestCountSegments(t *testing.T) {
	for _, tc := range []struct {
		body string
		want int
	}{
		{"", 1},
		{strings.Repeat("a", 160), 1},
		{strings.Repeat("a", 161), 2},
		{strings.Repeat("a", 306), 2},
		{strings.Repeat("a", 307), 3},
		{strings.Repeat("€", 80), 1}, // extension chars count double: 160 septets
		{strings.Repeat("€", 81), 2},
		{strings.Repeat("é", 160), 1}, // é is in the GSM basic set
		{strings.Repeat("ç", 70), 1},  // lowercase ç is not: UCS-2
		{strings.Repeat("ç", 71), 2},
		{strings.Repeat("😀", 35), 1}, // two UTF-16 units each
		{strings.Repeat("😀", 36), 2},
	} {
		if got := countSegments(tc.body); got != tc.want {
			t.Errorf("countSegments(%d runes of %q) = %d, want %d", len([]rune(tc.body)), []rune(tc.body + " ")[0], got, tc.want)
		}
	}
}
