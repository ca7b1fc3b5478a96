package bridge

import (
	"testing"

	"github.com/careline/careline/store"
)

func TestClassifyKeyword(t *testing.T) {
	cases := map[string]store.Keyword{
		"STOP": store.KeywordOptOut, " stop ": store.KeywordOptOut, "Unsubscribe": store.KeywordOptOut, "optout": store.KeywordOptOut,
		"STOPALL": store.KeywordOptOut, "cancel": store.KeywordOptOut, "END": store.KeywordOptOut, "quit": store.KeywordOptOut, "revoke": store.KeywordOptOut,
		"START": store.KeywordOptIn, "unstop": store.KeywordOptIn, "yes": store.KeywordOptIn,
		"HELP": store.KeywordHelp, "info\n": store.KeywordHelp,
		"please stop calling": store.KeywordNone, "STOP!": store.KeywordNone, "yes please": store.KeywordNone, "": store.KeywordNone, "helpful": store.KeywordNone,
	}
	for body, want := range cases {
		if got := classifyKeyword(body); got != want {
			t.Errorf("classifyKeyword(%q) = %q, want %q", body, got, want)
		}
	}
}
