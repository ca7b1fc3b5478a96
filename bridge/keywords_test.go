package bridge

import "testing"

func TestClassifyKeyword(t *testing.T) {
	cases := map[string]keyword{
		"STOP": keywordOptOut, " stop ": keywordOptOut, "Unsubscribe": keywordOptOut, "optout": keywordOptOut,
		"STOPALL": keywordOptOut, "cancel": keywordOptOut, "END": keywordOptOut, "quit": keywordOptOut, "revoke": keywordOptOut,
		"START": keywordOptIn, "unstop": keywordOptIn, "yes": keywordOptIn,
		"HELP": keywordHelp, "info\n": keywordHelp,
		"please stop calling": noKeyword, "STOP!": noKeyword, "yes please": noKeyword, "": noKeyword, "helpful": noKeyword,
	}
	for body, want := range cases {
		if got := classifyKeyword(body); got != want {
			t.Errorf("classifyKeyword(%q) = %d, want %d", body, got, want)
		}
	}
}
