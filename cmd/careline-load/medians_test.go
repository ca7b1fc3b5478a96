package main

import (
	"strings"
	"testing"
	"time"

	"github.com/careline/careline/internal/loadtest"
)

func TestSpreadOf(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want spread
	}{
		{[]float64{3, 1, 2}, spread{2, 1, 3}},
		{[]float64{4, 1, 3, 2}, spread{2.5, 1, 4}},
		{[]float64{7}, spread{7, 7, 7}},
		{nil, spread{}},
	} {
		if got := spreadOf(tc.in); got != tc.want {
			t.Errorf("spreadOf(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// run is a measured run of 1,000 messages in one second.
func runOf(label string, round int, cpu, tool time.Duration) measured {
	return measured{Label: label, Database: "sqlite", Round: round, Result: loadtest.Result{
		Load: loadtest.Load{Concurrency: 8}, Arrived: 1000, Elapsed: time.Second,
		CPU: cpu * 1000, LoadToolCPU: tool * 1000, E2EP99: 10 * time.Millisecond,
	}}
}

func TestWriteMediansGroupsRoundsPerBridge(t *testing.T) {
	all := []measured{
		runOf("careline@a", 1, 600*time.Microsecond, 100*time.Microsecond),
		runOf("careline@b", 1, 500*time.Microsecond, 100*time.Microsecond),
		// A slower host: both the bridge and the load tool burn 50% more.
		runOf("careline@b", 2, 750*time.Microsecond, 150*time.Microsecond),
		runOf("careline@a", 2, 900*time.Microsecond, 150*time.Microsecond),
		runOf("careline@a", 3, 660*time.Microsecond, 110*time.Microsecond),
		runOf("careline@b", 3, 550*time.Microsecond, 110*time.Microsecond),
	}
	var out strings.Builder
	writeMedians(&out, all, 3)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("want a heading, the table's two header lines and one row per bridge, got:\n%s", out.String())
	}
	for _, want := range []string{
		"| careline@a | sqlite | 8 concurrent | 1000 (1000–1000) | 10.0 (10.0–10.0) | 0.66 (0.60–0.90) | 0.00 (0.00–0.00) | 0.11 (0.10–0.15) | 6.0 (6.0–6.0) |",
		"| careline@b | sqlite | 8 concurrent | 1000 (1000–1000) | 10.0 (10.0–10.0) | 0.55 (0.50–0.75) | 0.00 (0.00–0.00) | 0.11 (0.10–0.15) | 5.0 (5.0–5.0) |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing row\n%s\nin:\n%s", want, out.String())
		}
	}
	if !strings.HasPrefix(lines[3], "| careline@a ") {
		t.Errorf("bridges should keep the order they were first measured in:\n%s", out.String())
	}
}
