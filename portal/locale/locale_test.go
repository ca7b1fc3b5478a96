package locale

import "testing"

func TestNegotiate(t *testing.T) {
	cases := map[string]string{
		"":                        "en",
		"es":                      "es",
		"es-MX,es;q=0.9,en;q=0.8": "es",
		"en-US,en;q=0.9,es;q=0.8": "en",
		"fr-FR,fr;q=0.9,es;q=0.5": "es",
		"de":                      "en",
		"en;q=0.2, es;q=0.7":      "es",
		"es;q=0":                  "en",
		"ES-us":                   "es",
		"es;q=bogus,en":           "en",
	}
	for header, want := range cases {
		if got := Negotiate(header); got != want {
			t.Errorf("Negotiate(%q) = %q, want %q", header, got, want)
		}
	}
}

func TestSpanishHasEveryKey(t *testing.T) {
	for key := range english {
		if _, ok := spanish[key]; !ok {
			t.Errorf("Spanish lacks %q", key)
		}
	}
	for key := range spanish {
		if _, ok := english[key]; !ok {
			t.Errorf("Spanish has %q, English does not", key)
		}
	}
}

func TestFallback(t *testing.T) {
	if Get("xx").Lang != "en" {
		t.Fatal("unknown language does not fall back to English")
	}
	if got := Get("es").T("no.such.key"); got != "no.such.key" {
		t.Fatalf("unknown key = %q", got)
	}
	if got := Get("es").T("verify.sent", "···4567", 10); got == "" || got == Get("en").T("verify.sent", "···4567", 10) {
		t.Fatalf("Spanish verify.sent = %q", got)
	}
}

func TestSize(t *testing.T) {
	cases := map[int64]string{0: "0 B", 1023: "1023 B", 4096: "4 KB", 81234: "79 KB", 10 << 20: "10 MB", 3565158: "3.4 MB"}
	for n, want := range cases {
		if got := Get("en").Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
	if got := Get("es").Size(3565158); got != "3,4 MB" {
		t.Errorf("Spanish Size = %q", got)
	}
}
