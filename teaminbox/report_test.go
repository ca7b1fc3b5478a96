package teaminbox

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/careline/careline/internal/dbtest"
	"github.com/careline/careline/store"
)

func TestSummarize(t *testing.T) {
	m := func(n ...int) []time.Duration {
		var out []time.Duration
		for _, v := range n {
			out = append(out, time.Duration(v)*time.Minute)
		}
		return out
	}
	for _, tc := range []struct {
		waits       []time.Duration
		median, p90 time.Duration
	}{
		{nil, 0, 0},
		{m(7), 7 * time.Minute, 7 * time.Minute},
		{m(10, 2), 6 * time.Minute, 10 * time.Minute},
		{m(5, 1, 3), 3 * time.Minute, 5 * time.Minute},
		// 1..10: median 5.5, p90 = 9th of 10
		{m(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 5*time.Minute + 30*time.Second, 9 * time.Minute},
		// 11 values: p90 rank ceil(9.9) = 10
		{m(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100), 6 * time.Minute, 10 * time.Minute},
	} {
		got := Summarize(tc.waits)
		if got.Count != len(tc.waits) || got.Median != tc.median || got.P90 != tc.p90 {
			t.Errorf("%v: %+v, want median %v p90 %v", tc.waits, got, tc.median, tc.p90)
		}
	}
	waits := m(3, 1, 2)
	Summarize(waits)
	if waits[0] != 3*time.Minute {
		t.Error("Summarize reordered its input")
	}
}

func TestParsePeriod(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC) // still Nov 29 in New York
	since, until, err := ParsePeriod(nil, ny, now)
	if err != nil || !since.Equal(time.Date(2026, 10, 30, 0, 0, 0, 0, ny)) || !until.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, ny)) {
		t.Errorf("default period %v – %v (%v)", since, until, err)
	}
	since, until, err = ParsePeriod([]string{"--since", "2026-11-01", "--until=2026-11-15"}, ny, now)
	if err != nil || !since.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, ny)) || !until.Equal(time.Date(2026, 11, 16, 0, 0, 0, 0, ny)) {
		t.Errorf("explicit period %v – %v (%v)", since, until, err)
	}
	for args, want := range map[string][]string{
		"--since":            {"--since"},
		"not a date":         {"--since", "Nov 1"},
		"unknown option":     {"--from", "2026-11-01"},
		"is after --until":   {"--since", "2026-11-20", "--until", "2026-11-10"},
		"--until needs a da": {"--until"},
	} {
		if _, _, err := ParsePeriod(want, ny, now); err == nil || !contains(err.Error(), args) {
			t.Errorf("%v: error %v, want one saying %q", want, err, args)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestReportOnKnownConversations: three waits answered by two people inside the period, one
// answered after it, one still waiting, one closed unanswered.
func TestReportOnKnownConversations(t *testing.T) {
	dbtest.ForEach(t, "teaminbox_report", func(t *testing.T, db *dbutil.Database) {
		ctx := context.Background()
		s := New(db, zerolog.Nop())
		if err := s.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
		at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
		wait := func(patient string, wrote, answered time.Time, who string) {
			t.Helper()
			mustWrite(t, s, patient, "!"+patient, wrote)
			if who != "" {
				if _, err := s.StaffReplied(ctx, patient, "!"+patient, who, answered); err != nil {
					t.Fatal(err)
				}
			}
		}
		wait("p1", at(9, 0), at(9, 4), "@lee:x")    // 4m
		wait("p2", at(9, 0), at(9, 10), "@lee:x")   // 10m
		wait("p3", at(10, 0), at(11, 0), "@kim:x")  // 60m
		wait("p1", at(23, 0), at(24, 30), "@kim:x") // answered the next day: outside
		wait("p4", at(12, 0), time.Time{}, "")      // still waiting
		wait("p5", at(12, 0), time.Time{}, "")
		if _, err := s.Close(ctx, "p5", "!p5", at(13, 0)); err != nil {
			t.Fatal(err)
		}
		r, err := s.Report(ctx, day, day.Add(24*time.Hour), store.Traffic{In: 6, Out: 4, Failed: 1, OptOuts: 2})
		if err != nil {
			t.Fatal(err)
		}
		if r.FirstResponse != (ResponseTimes{Count: 3, Median: 10 * time.Minute, P90: 60 * time.Minute}) {
			t.Errorf("first response %+v", r.FirstResponse)
		}
		if r.ByStaff["@lee:x"] != (ResponseTimes{Count: 2, Median: 7 * time.Minute, P90: 10 * time.Minute}) ||
			r.ByStaff["@kim:x"] != (ResponseTimes{Count: 1, Median: time.Hour, P90: time.Hour}) || len(r.ByStaff) != 2 {
			t.Errorf("by staff %+v", r.ByStaff)
		}
		if r.Unanswered != 1 {
			t.Errorf("%d unanswered, want 1 (p4)", r.Unanswered)
		}
		want := "Report for 2026-11-02 to 2026-11-02\nMessages in: 6\nMessages out: 4\n" +
			"First response: median 10m00s, p90 1h00m (3 replies)\n" +
			"  @kim:x: median 1h00m, p90 1h00m (1 reply)\n  @lee:x: median 7m00s, p90 10m00s (2 replies)\n" +
			"Unanswered now: 1\nFailed deliveries: 1\nOpt-outs: 2"
		if got := r.Text(); got != want {
			t.Errorf("report text:\n%s\nwant:\n%s", got, want)
		}
	})
}
