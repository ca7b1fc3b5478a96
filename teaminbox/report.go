package teaminbox

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/careline/careline/store"
)

// ResponseTimes summarises first-response times: how long patients waited for the first staff
// reply after they wrote.
type ResponseTimes struct {
	Count  int
	Median time.Duration
	P90    time.Duration // nearest rank: the wait 90% of replies were at or under
}

// Summarize computes the median (the mean of the middle two for an even count) and the 90th
// percentile by nearest rank of waits; it leaves waits unchanged.
func Summarize(waits []time.Duration) ResponseTimes {
	n := len(waits)
	if n == 0 {
		return ResponseTimes{}
	}
	sorted := slices.Clone(waits)
	slices.Sort(sorted)
	median := sorted[n/2]
	if n%2 == 0 {
		median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	rank := int(math.Ceil(0.9 * float64(n)))
	return ResponseTimes{Count: n, Median: median, P90: sorted[rank-1]}
}

// FirstResponses returns the first-response waits answered in [since, until), all together
// and by the staff member who answered.
func (s *Store) FirstResponses(ctx context.Context, since, until time.Time) (all []time.Duration, byStaff map[string][]time.Duration, err error) {
	rows, err := s.db.Query(ctx, `SELECT responder, answered_at - waited_from FROM careline_teaminbox_response
		WHERE answered_at >= $1 AND answered_at < $2`, since.UnixMilli(), until.UnixMilli())
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	byStaff = map[string][]time.Duration{}
	for rows.Next() {
		var who string
		var ms int64
		if err = rows.Scan(&who, &ms); err != nil {
			return nil, nil, err
		}
		wait := time.Duration(ms) * time.Millisecond
		all = append(all, wait)
		byStaff[who] = append(byStaff[who], wait)
	}
	return all, byStaff, rows.Err()
}

// Unanswered counts the open conversations whose patient wrote before until and still waits.
func (s *Store) Unanswered(ctx context.Context, until time.Time) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM careline_teaminbox_conversation
		WHERE waiting_since IS NOT NULL AND waiting_since < $1 AND closed_at IS NULL`, until.UnixMilli()).Scan(&n)
	return n, err
}

// Report puts together the numbers of [since, until): traffic comes from the message records
// (store.Store.Traffic), response times and unanswered conversations from the inbox.
func (s *Store) Report(ctx context.Context, since, until time.Time, traffic store.Traffic) (*Report, error) {
	all, byStaff, err := s.FirstResponses(ctx, since, until)
	if err != nil {
		return nil, err
	}
	r := &Report{Since: since, Until: until, MessagesIn: traffic.In, MessagesOut: traffic.Out,
		FailedDeliveries: traffic.Failed, OptOuts: traffic.OptOuts, FirstResponse: Summarize(all),
		ByStaff: make(map[string]ResponseTimes, len(byStaff))}
	for who, waits := range byStaff {
		r.ByStaff[who] = Summarize(waits)
	}
	if r.Unanswered, err = s.Unanswered(ctx, until); err != nil {
		return nil, err
	}
	return r, nil
}

// Report is the team's numbers for a period, from careline's records: counts and times only.
type Report struct {
	Since, Until     time.Time
	MessagesIn       int
	MessagesOut      int
	FailedDeliveries int
	OptOuts          int
	Unanswered       int
	FirstResponse    ResponseTimes
	ByStaff          map[string]ResponseTimes
}

// Text writes the report for staff, one fact a line, staff members in ID order.
func (r *Report) Text() string {
	lines := []string{
		fmt.Sprintf("Report for %s to %s", r.Since.Format(time.DateOnly), r.Until.Add(-time.Nanosecond).Format(time.DateOnly)),
		fmt.Sprintf("Messages in: %d", r.MessagesIn),
		fmt.Sprintf("Messages out: %d", r.MessagesOut),
		"First response: " + r.FirstResponse.String(),
	}
	staff := make([]string, 0, len(r.ByStaff))
	for who := range r.ByStaff {
		staff = append(staff, who)
	}
	slices.Sort(staff)
	for _, who := range staff {
		lines = append(lines, fmt.Sprintf("  %s: %s", who, r.ByStaff[who].String()))
	}
	lines = append(lines,
		fmt.Sprintf("Unanswered now: %d", r.Unanswered),
		fmt.Sprintf("Failed deliveries: %d", r.FailedDeliveries),
		fmt.Sprintf("Opt-outs: %d", r.OptOuts),
	)
	return strings.Join(lines, "\n")
}

func (rt ResponseTimes) String() string {
	if rt.Count == 0 {
		return "no replies"
	}
	replies := "replies"
	if rt.Count == 1 {
		replies = "reply"
	}
	return fmt.Sprintf("median %s, p90 %s (%d %s)", shortDuration(rt.Median), shortDuration(rt.P90), rt.Count, replies)
}

// shortDuration writes a wait to the second: "42s", "12m05s", "3h04m".
func shortDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// DefaultReportDays is the period a report covers when --since is not given.
const DefaultReportDays = 30

// ParsePeriod reads a report's period from its flags: `--since YYYY-MM-DD` (default: 30 days
// before today) and `--until YYYY-MM-DD` (default: today), both days included, in loc.
// It returns [since, until) with until the start of the day after --until.
func ParsePeriod(args []string, loc *time.Location, now time.Time) (since, until time.Time, err error) {
	today := now.In(loc)
	startOf := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc) }
	since = startOf(today).AddDate(0, 0, -DefaultReportDays)
	until = startOf(today).AddDate(0, 0, 1)
	for i := 0; i < len(args); i++ {
		flag, value, hasValue := strings.Cut(args[i], "=")
		if flag != "--since" && flag != "--until" {
			return since, until, fmt.Errorf("unknown option %q: use --since YYYY-MM-DD and --until YYYY-MM-DD", args[i])
		}
		if !hasValue {
			if i+1 >= len(args) {
				return since, until, fmt.Errorf("%s needs a date, e.g. %s 2026-11-01", flag, flag)
			}
			i++
			value = args[i]
		}
		day, err := time.ParseInLocation(time.DateOnly, value, loc)
		if err != nil {
			return since, until, fmt.Errorf("%s %q is not a date written YYYY-MM-DD", flag, value)
		}
		if flag == "--since" {
			since = day
		} else {
			until = day.AddDate(0, 0, 1)
		}
	}
	if !since.Before(until) {
		return since, until, fmt.Errorf("--since %s is after --until %s", since.Format(time.DateOnly), until.AddDate(0, 0, -1).Format(time.DateOnly))
	}
	return since, until, nil
}
