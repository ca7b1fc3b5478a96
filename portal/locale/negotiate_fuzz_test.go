package locale

import (
	"strings"
	"testing"
)

// FuzzNegotiate: the language every portal page is shown in (and date-of-birth forms are
// read in) comes from the browser's Accept-Language header. Whatever it says, the answer is
// a language the portal has; Spanish only when the header names it; and a language the
// portal does not have, added at the end, changes nothing.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "es-MX,es;q=0.9,en;q=0.8", "es;q=0", "es;q=NaN", "es;q=Inf,en", "ES-us", ";;,,;q=", "es;q=1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		lang := Negotiate(header)
		if lang != "en" && lang != "es" {
			t.Fatalf("Negotiate(%q) = %q", header, lang)
		}
		if lang == "es" && !strings.Contains(strings.ToLower(header), "es") {
			t.Fatalf("Negotiate(%q) chose Spanish", header)
		}
		if again := Negotiate(header + ",fr-FR;q=1"); again != lang {
			t.Fatalf("Negotiate(%q) = %q, but %q with French added", header, lang, again)
		}
	})
}
