// Package officehours answers one question: is the clinic open at a given instant? It reads
// weekly ranges and closed dates as the clinic's wall clock in its time zone, so "08:00" is
// eight in the morning on both sides of a daylight-saving change.
package officehours

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Hours is a clinic's opening hours. A nil *Hours is always open.
type Hours struct {
	loc    *time.Location
	weekly [7][]span           // by time.Weekday
	closed map[string]struct{} // YYYY-MM-DD in the clinic's zone
}

// span is a half-open range of minutes after local midnight: [from, to).
type span struct{ from, to int }

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Parse reads weekly ranges ({"mon": "08:00-17:00", "tue": "08:00-12:00,13:00-17:00"}; a day
// not listed is closed; "24:00" ends a day) and closed dates (YYYY-MM-DD). Errors name the
// offending day or date as the admin wrote it.
func Parse(loc *time.Location, weekly map[string]string, closedDates []string) (*Hours, error) {
	h := &Hours{loc: loc, closed: make(map[string]struct{}, len(closedDates))}
	for day, ranges := range weekly {
		wd, ok := dayNames[strings.ToLower(day)]
		if !ok {
			return nil, fmt.Errorf("weekly: %q is not a day (use mon, tue, wed, thu, fri, sat, sun)", day)
		}
		spans, err := parseRanges(ranges)
		if err != nil {
			return nil, fmt.Errorf("weekly.%s: %w", day, err)
		}
		h.weekly[wd] = spans
	}
	for _, date := range closedDates {
		d, err := time.Parse(time.DateOnly, date)
		if err != nil {
			return nil, fmt.Errorf("closed_dates: %q is not a date like 2026-12-25", date)
		}
		h.closed[d.Format(time.DateOnly)] = struct{}{}
	}
	return h, nil
}

func parseRanges(text string) ([]span, error) {
	var spans []span
	for _, part := range strings.Split(text, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		fromText, toText, ok := strings.Cut(part, "-")
		if !ok {
			return nil, fmt.Errorf("%q is not a range like 08:00-17:00", part)
		}
		from, err := parseClock(strings.TrimSpace(fromText))
		if err != nil {
			return nil, err
		}
		to, err := parseClock(strings.TrimSpace(toText))
		if err != nil {
			return nil, err
		}
		if to <= from {
			return nil, fmt.Errorf("%q ends before it starts (a range cannot cross midnight; split it over two days)", part)
		}
		spans = append(spans, span{from, to})
	}
	slices.SortFunc(spans, func(a, b span) int { return a.from - b.from })
	for i := 1; i < len(spans); i++ {
		if spans[i].from < spans[i-1].to {
			return nil, fmt.Errorf("ranges in %q overlap", text)
		}
	}
	return spans, nil
}

// parseClock reads HH:MM (00:00 to 24:00) as minutes after midnight.
func parseClock(text string) (int, error) {
	hh, mm, ok := strings.Cut(text, ":")
	h, errH := strconv.Atoi(hh)
	m, errM := strconv.Atoi(mm)
	if !ok || errH != nil || errM != nil || len(mm) != 2 || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("%q is not a time like 08:00", text)
	}
	return h*60 + m, nil
}

// Open reports whether the clinic is open at t.
func (h *Hours) Open(t time.Time) bool {
	if h == nil {
		return true
	}
	local := t.In(h.loc)
	if _, closed := h.closed[local.Format(time.DateOnly)]; closed {
		return false
	}
	minute := local.Hour()*60 + local.Minute()
	for _, s := range h.weekly[local.Weekday()] {
		if minute >= s.from && minute < s.to {
			return true
		}
	}
	return false
}

// Location is the clinic's time zone.
func (h *Hours) Location() *time.Location { return h.loc }

// Due reports whether an auto-reply may go now, given when the last one went to the same
// patient (zero: never): at most one per window.
func Due(last, now time.Time, every time.Duration) bool {
	return last.IsZero() || !now.Before(last.Add(every))
}
