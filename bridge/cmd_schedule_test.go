package bridge

import (
	"strings"
	"testing"
	"time"
)

func TestParseWhen(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// Saturday 2026-03-07 09:00 EST; US clocks go forward on Sunday the 8th.
	now := time.Date(2026, 3, 7, 9, 0, 0, 0, ny)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"+1m", now.Add(time.Minute)},
		{"+90m", now.Add(90 * time.Minute)},
		{"+2h", now.Add(2 * time.Hour)},
		// +1d is the same clock time tomorrow, 23 hours later across the change.
		{"+1d", time.Date(2026, 3, 8, 9, 0, 0, 0, ny)},
		{"2026-03-09T08:30", time.Date(2026, 3, 9, 8, 30, 0, 0, ny)},
	} {
		got, err := parseWhen(tc.in, now, ny)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("%s: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
	if got, _ := parseWhen("+1d", now, ny); got.Sub(now) != 23*time.Hour {
		t.Errorf("+1d across the DST change is %v later", got.Sub(now))
	}
	for in, want := range map[string]string{
		"+0m": "is not a time", "+5": "is not a time", "+5w": "is not a time", "+-1h": "is not a time",
		"tomorrow": "is not a time", "2026-03-07T08:59": "in the past", "2028-03-07T08:59": "more than a year",
		"+400d": "is not a time", "2026-13-01T09:00": "is not a time",
	} {
		_, err := parseWhen(in, now, ny)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}
