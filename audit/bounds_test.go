package audit

import (
	"strings"
	"testing"
	"time"
)

func TestParseRangeIncludesTheWholeLastDay(t *testing.T) {
	since, until, err := ParseRange("2026-03-01", "2026-03-31")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC); !since.Equal(want) {
		t.Errorf("since %v, want %v", since, want)
	}
	if want := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC); !until.Equal(want) {
		t.Errorf("until %v, want %v", until, want)
	}
	if got := DescribeRange(since, until); got != "entries from 2026-03-01T00:00:00Z to before 2026-04-01T00:00:00Z" {
		t.Errorf("DescribeRange = %q", got)
	}
	if got := DescribeRange(time.Time{}, time.Time{}); got != "all entries" {
		t.Errorf("DescribeRange of no bounds = %q", got)
	}
}

func TestParseRangeRefusals(t *testing.T) {
	for _, c := range []struct{ since, until, want string }{
		{"2026-13-01", "", "--since"},
		{"", "yesterday", "--until"},
		{"2026-03-02", "2026-03-01", "before --until"},
	} {
		if _, _, err := ParseRange(c.since, c.until); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseRange(%q, %q) = %v, want an error about %s", c.since, c.until, err, c.want)
		}
	}
	if CheckFormat("xlsx") == nil || CheckFormat("csv") != nil || CheckFormat("jsonl") != nil {
		t.Error("CheckFormat accepts the wrong formats")
	}
}
