package main

import (
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/careline/careline/internal/loadtest"
)

// spread is the median of some rounds' readings, with their least and greatest.
type spread struct{ median, low, high float64 }

func spreadOf(values []float64) spread {
	v := slices.Sorted(slices.Values(values))
	n := len(v)
	if n == 0 {
		return spread{}
	}
	median := v[n/2]
	if n%2 == 0 {
		median = (v[n/2-1] + v[n/2]) / 2
	}
	return spread{median, v[0], v[n-1]}
}

func (s spread) format(unit string) string {
	return fmt.Sprintf(unit+" ("+unit+"–"+unit+")", s.median, s.low, s.high)
}

// printMedians sums up the rounds of each bridge, database and load: the median of every
// round's reading, with the least and greatest. "bridge ÷ load tool CPU" is the bridge's CPU per
// message over the load tool's in the same run: the load tool's work per message does not
// change, so when the host runs slower both rise together and the quotient stays, where
// msg/s and CPU alone move by the host's minute.
func printMedians(all []measured, rounds int) { writeMedians(os.Stdout, all, rounds) }

func writeMedians(w io.Writer, all []measured, rounds int) {
	type group struct {
		label, db, load                          string
		msgs, cpu, e2e99, tool, pg, perToolUnits []float64
	}
	var groups []*group
	find := func(m measured) *group {
		for _, g := range groups {
			if g.label == m.Label && g.db == m.Database && g.load == loadLabel(m.Result) {
				return g
			}
		}
		g := &group{label: m.Label, db: m.Database, load: loadLabel(m.Result)}
		groups = append(groups, g)
		return g
	}
	for _, m := range all {
		g, r := find(m), m.Result
		g.msgs = append(g.msgs, r.MsgsPerSecond())
		g.cpu = append(g.cpu, loadtest.Millis(r.CPUPerMessage()))
		g.e2e99 = append(g.e2e99, loadtest.Millis(r.E2EP99))
		g.tool = append(g.tool, loadtest.Millis(r.LoadToolCPUPerMessage()))
		g.pg = append(g.pg, loadtest.Millis(r.PostgresCPUPerMessage()))
		if tool := r.LoadToolCPUPerMessage(); tool > 0 {
			g.perToolUnits = append(g.perToolUnits, float64(r.CPUPerMessage())/float64(tool))
		}
	}
	fmt.Fprintf(w, "\nMedians over %d rounds, each bridge measured in a different place of the order each round (least–greatest in brackets)\n", rounds)
	fmt.Fprintln(w, "| bridge | db | load | msg/s | e2e p99 ms | bridge CPU ms/msg | postgres CPU ms/msg | load tool CPU ms/msg | bridge ÷ load tool CPU |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, g := range groups {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", g.label, g.db, g.load,
			spreadOf(g.msgs).format("%.0f"), spreadOf(g.e2e99).format("%.1f"), spreadOf(g.cpu).format("%.2f"),
			spreadOf(g.pg).format("%.2f"), spreadOf(g.tool).format("%.2f"), spreadOf(g.perToolUnits).format("%.1f"))
	}
}
