package officehours

import (
	"strings"
	"testing"
	"time"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestOpenAcrossZonesDSTAndClosedDates(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	berlin := mustLoad(t, "Europe/Berlin")
	weekly := map[string]string{"mon": "08:00-17:00", "tue": "08:00-12:00, 13:00-17:00", "sun": "22:00-24:00", "Sat": "09:00-12:00"}
	nyHours, err := Parse(ny, weekly, []string{"2026-12-25", "2026-11-09"})
	if err != nil {
		t.Fatal(err)
	}
	berlinHours, err := Parse(berlin, weekly, nil)
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name  string
		hours *Hours
		at    time.Time
		open  bool
	}{
		{"Mon 07:59 NY", nyHours, time.Date(2026, 11, 2, 7, 59, 0, 0, ny), false},
		{"Mon 08:00 NY opens", nyHours, time.Date(2026, 11, 2, 8, 0, 0, 0, ny), true},
		{"Mon 16:59 NY", nyHours, time.Date(2026, 11, 2, 16, 59, 0, 0, ny), true},
		{"Mon 17:00 NY closes", nyHours, time.Date(2026, 11, 2, 17, 0, 0, 0, ny), false},
		{"Tue lunch", nyHours, time.Date(2026, 11, 3, 12, 30, 0, 0, ny), false},
		{"Tue 13:00", nyHours, time.Date(2026, 11, 3, 13, 0, 0, 0, ny), true},
		{"Wed not listed", nyHours, time.Date(2026, 11, 4, 10, 0, 0, 0, ny), false},
		{"Sun 23:59 up to 24:00", nyHours, time.Date(2026, 11, 1, 23, 59, 0, 0, ny), true},
		{"Sat listed with capital", nyHours, time.Date(2026, 11, 7, 10, 0, 0, 0, ny), true},
		{"closed date Monday", nyHours, time.Date(2026, 11, 9, 10, 0, 0, 0, ny), false},
		{"closed date Christmas (Fri)", nyHours, time.Date(2026, 12, 25, 10, 0, 0, 0, ny), false},
		// 2026-03-09 is the Monday after US DST starts (Mar 8): 08:00 EDT is 12:00 UTC.
		{"after US DST start 08:00 EDT", nyHours, utc("2026-03-09T12:00:00Z"), true},
		{"after US DST start 07:59 EDT", nyHours, utc("2026-03-09T11:59:00Z"), false},
		// The Monday before: 08:00 EST is 13:00 UTC, so 12:30 UTC is 07:30 local.
		{"before US DST 07:30 EST", nyHours, utc("2026-03-02T12:30:00Z"), false},
		{"before US DST 08:00 EST", nyHours, utc("2026-03-02T13:00:00Z"), true},
		// The same instant is Monday 13:00 in New York and 19:00 in Berlin.
		{"same instant NY open", nyHours, utc("2026-11-02T18:00:00Z"), true},
		{"same instant Berlin closed", berlinHours, utc("2026-11-02T18:00:00Z"), false},
		// Europe changed to summer time on 2026-03-29; Monday 30th 08:00 CEST is 06:00 UTC.
		{"Berlin after DST 08:00 CEST", berlinHours, utc("2026-03-30T06:00:00Z"), true},
		{"Berlin after DST 07:59 CEST", berlinHours, utc("2026-03-30T05:59:00Z"), false},
		{"nil hours always open", nil, utc("2026-03-30T03:00:00Z"), true},
	} {
		if got := tc.hours.Open(tc.at); got != tc.open {
			t.Errorf("%s: open = %v, want %v", tc.name, got, tc.open)
		}
	}
}

func TestParseNamesWhatIsWrong(t *testing.T) {
	for _, tc := range []struct {
		weekly map[string]string
		closed []string
		want   string
	}{
		{map[string]string{"monday": "08:00-17:00"}, nil, `"monday" is not a day`},
		{map[string]string{"mon": "8-17"}, nil, "weekly.mon"},
		{map[string]string{"mon": "17:00-08:00"}, nil, "cannot cross midnight"},
		{map[string]string{"mon": "08:00-12:00,11:00-13:00"}, nil, "overlap"},
		{map[string]string{"mon": "08:00-24:30"}, nil, `"24:30"`},
		{map[string]string{"mon": "08:00-17:60"}, nil, `"17:60"`},
		{nil, []string{"25/12/2026"}, `"25/12/2026"`},
	} {
		_, err := Parse(time.UTC, tc.weekly, tc.closed)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: err %v, want it to mention %s", tc.weekly, tc.closed, err, tc.want)
		}
	}
}

func TestDueOncePerWindow(t *testing.T) {
	base := time.Date(2026, 11, 2, 20, 0, 0, 0, time.UTC)
	every := 12 * time.Hour
	for _, tc := range []struct {
		last, now time.Time
		due       bool
	}{
		{time.Time{}, base, true},
		{base, base, false},
		{base, base.Add(every - time.Second), false},
		{base, base.Add(every), true},
		{base, base.Add(48 * time.Hour), true},
	} {
		if got := Due(tc.last, tc.now, every); got != tc.due {
			t.Errorf("last %v now %v: %v", tc.last, tc.now, got)
		}
	}
}
