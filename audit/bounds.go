package audit

import (
	"errors"
	"fmt"
	"time"
)

// ParseRange reads the --since and --until of an export, shared by `careline audit export` and
// the bot's audit-export command. Dates cover whole days: --until 2026-03-31 includes March 31.
func ParseRange(sinceArg, untilArg string) (since, until time.Time, err error) {
	if since, err = ParseBound(sinceArg, false); err != nil {
		return since, until, fmt.Errorf("--since: %w", err)
	}
	if until, err = ParseBound(untilArg, true); err != nil {
		return since, until, fmt.Errorf("--until: %w", err)
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return since, until, errors.New("--since must be before --until")
	}
	return since, until, nil
}

// CheckFormat refuses an export format Export does not write, before anything is read.
func CheckFormat(format string) error {
	if format != "jsonl" && format != "csv" {
		return fmt.Errorf("unknown --format %q: use jsonl or csv", format)
	}
	return nil
}

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

// DescribeRange says in words which entries an export covers, for the people receiving it.
func DescribeRange(since, until time.Time) string {
	switch {
	case since.IsZero() && until.IsZero():
		return "all entries"
	case until.IsZero():
		return "entries from " + FormatBound(since)
	case since.IsZero():
		return "entries before " + FormatBound(until)
	default:
		return "entries from " + FormatBound(since) + " to before " + FormatBound(until)
	}
}

// ExportDetail describes an export for its own audit entry.
func ExportDetail(format string, since, until time.Time, entries int, complete bool) string {
	detail := fmt.Sprintf("format=%s since=%s until=%s entries=%d", format, FormatBound(since), FormatBound(until), entries)
	if !complete {
		detail += " incomplete"
	}
	return detail
}
