package audit

import (
	"fmt"
	"time"
)

// ParseBound reads one end of an export range: a YYYY-MM-DD date (midnight UTC; for the end
// of a range the midnight after, so the day is included) or an RFC 3339 time. "" is no bound.
func ParseBound(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		if end {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a date (YYYY-MM-DD) nor an RFC 3339 time (2026-01-02T15:04:05Z)", s)
}

// FormatBound writes an end of a range for the audit trail itself; "-" is no bound.
func FormatBound(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// ExportDetail describes an export for its own audit entry.
func ExportDetail(format string, since, until time.Time, entries int, complete bool) string {
	detail := fmt.Sprintf("format=%s since=%s until=%s entries=%d", format, FormatBound(since), FormatBound(until), entries)
	if !complete {
		detail += " incomplete"
	}
	return detail
}
