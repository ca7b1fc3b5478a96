// Command careline-load measures careline (and, for comparison, mautrix/twilio) under inbound
// load: it starts the bridge against a stub homeserver and the fake Twilio, sends webhooks
// signed as Twilio signs them, closed loop (N concurrent) or open loop (fixed rate), and prints
// msg/s, acknowledgement and end-to-end latency, bridge CPU per message and RSS.
//
//	careline-load -bin bin/careline -peer /work/peer/mautrix-twilio -db sqlite -concurrency 1,8,32
//
// See BENCHMARKS.md for what each number means and how the published ones were taken.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/lib/pq"

	"github.com/careline/careline/internal/loadtest"
	"github.com/careline/careline/internal/localstack"
	"github.com/careline/careline/internal/pgtest"
)

type options struct {
	bin, peer       string
	baseline        string
	dbs             []string
	concurrency     []int
	rate            float64
	messages        int
	patients        int
	history         int
	profileDir      string
	profileSeconds  int
	profileSelf     string
	procs           int
	workDir         string
	webhookURL      string
	logLevel        string
	jsonOut         string
	pgLogStatements bool
	pgLog           string
	memPatients     int
	memActive       int
	dbConns         int
	rounds          int
}

func main() {
	var o options
	var dbs, conc string
	flag.StringVar(&o.bin, "bin", "bin/careline", "careline binary to measure (\"\" to measure only the peer)")
	flag.StringVar(&o.baseline, "baseline", "", "older careline binaries (comma-separated) to measure the same way first, for before/after (optional)")
	flag.StringVar(&o.peer, "peer", "", "mautrix-twilio binary to measure the same way (optional)")
	flag.StringVar(&dbs, "db", "sqlite", "databases, comma-separated: sqlite, postgres (PostgreSQL at 127.0.0.1:5432, trust auth)")
	flag.StringVar(&conc, "concurrency", "1,8,32", "concurrent webhooks, comma-separated; one closed-loop run each")
	flag.Float64Var(&o.rate, "rate", 0, "open loop: send this many webhooks per second instead (concurrency then caps requests in flight)")
	flag.IntVar(&o.messages, "messages", 4000, "messages per run")
	flag.IntVar(&o.patients, "patients", 50, "distinct senders; each sends one warm-up message first so its room exists")
	flag.IntVar(&o.history, "history", 4000, "messages sent after the warm-up and before the measured runs (and, on PostgreSQL, the ANALYZE), so the database holds a history as a clinic's does")
	flag.StringVar(&o.profileDir, "profile", "", "after the runs, take a CPU profile of each bridge during one more run at the highest concurrency and write it here")
	flag.StringVar(&o.profileSelf, "profile-self", "", "write a CPU profile of the load tool itself (load generator, stub homeserver, fake Twilio) over all runs to this file")
	flag.IntVar(&o.procs, "load-procs", 1, "GOMAXPROCS of the load tool itself (0: one per CPU). It needs a fraction of a core, and with one its goroutines hand work to each other without waking a second thread: CPU the bridge would otherwise lose")
	flag.IntVar(&o.profileSeconds, "profile-seconds", 4, "length of that CPU profile")
	flag.StringVar(&o.workDir, "dir", "", "working directory for configs, databases and logs (default: a new temporary one, removed after)")
	flag.StringVar(&o.webhookURL, "webhook-url", "", "careline's inbound webhook URL (default: asked of the running careline)")
	flag.StringVar(&o.logLevel, "log-level", "info", "bridges' log level (both log JSON to a file)")
	flag.StringVar(&o.jsonOut, "json", "", "also write every result as JSON to this file")
	flag.StringVar(&o.pgLog, "pg-log", "/var/log/postgresql/postgresql-15-main.log", "the PostgreSQL server log, read after a -pg-log-statements run")
	flag.BoolVar(&o.pgLogStatements, "pg-log-statements", false, "log every statement on the bridge's PostgreSQL database to the server log (log_min_duration_statement=0 for that database only), to count round trips")
	flag.IntVar(&o.memPatients, "memory-patients", 0, "instead of the load runs, measure careline's memory with this many patients in the database")
	flag.IntVar(&o.dbConns, "db-conns", 0, "set both bridges' database.max_open_conns and max_idle_conns to this (0: their configs' defaults)")
	flag.IntVar(&o.rounds, "rounds", 1, "measure every bridge this many times, each round in the next order (A B C, B C A, …), and print the medians: this host's speed drifts by minutes, and one slot of one round decides nothing")
	flag.IntVar(&o.memActive, "memory-active", 1000, "of those, how many text in and open their portal thread page")
	flag.Parse()
	o.dbs = strings.Split(dbs, ",")
	for _, c := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "-concurrency: %q is not a positive number\n", c)
			os.Exit(2)
		}
		o.concurrency = append(o.concurrency, n)
	}
	if o.procs > 0 {
		// Set here, not through GOMAXPROCS in the environment, which the bridges inherit.
		runtime.GOMAXPROCS(o.procs)
	}
	runner := run
	if o.memPatients > 0 {
		runner = runMemory
	}
	stopProfile := func() {}
	if o.profileSelf != "" {
		var err error
		if stopProfile, err = profileSelf(o.profileSelf); err != nil {
			fmt.Fprintln(os.Stderr, "careline-load: -profile-self:", err)
			os.Exit(1)
		}
	}
	err := runner(o)
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "careline-load:", err)
		os.Exit(1)
	}
}

// profileSelf starts a CPU profile of this process into path; stop writes it out.
func profileSelf(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err = pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "careline-load: -profile-self:", err)
		}
	}, nil
}

type measured struct {
	Bridge   loadtest.Kind
	Label    string
	Database string
	Commit   string
	Round    int // from 1; 0 when only one round ran
	Result   loadtest.Result
}

func run(o options) error {
	ctx, cancel := runContext()
	defer cancel()
	if o.workDir == "" {
		dir, err := os.MkdirTemp("", "careline-load-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.workDir = dir
	}
	var targets []target
	if o.baseline != "" {
		for _, bin := range strings.Split(o.baseline, ",") {
			targets = append(targets, target{loadtest.Careline, bin, "careline@" + shortCommit(bin)})
		}
	}
	if o.bin != "" {
		label := "careline"
		if o.baseline != "" {
			label += "@" + shortCommit(o.bin)
		}
		targets = append(targets, target{loadtest.Careline, o.bin, label})
	}
	if o.peer != "" {
		targets = append(targets, target{loadtest.Peer, o.peer, string(loadtest.Peer)})
	}
	// Two builds of one commit (a change not yet committed) would share a label, and with it
	// a working directory and database: number the later ones.
	seen := map[string]int{}
	for i := range targets {
		if seen[targets[i].label]++; seen[targets[i].label] > 1 {
			targets[i].label += "-" + strconv.Itoa(seen[targets[i].label])
		}
	}
	for i := range targets {
		placed, err := placeBinary(filepath.Join(o.workDir, "bin"), targets[i].bin, targets[i].label)
		if err != nil {
			return err
		}
		targets[i].bin = placed
	}
	fmt.Printf("machine: %d CPUs, load average %s; %d messages over %d patients per run\n", numCPU(), loadtest.LoadAverage(), o.messages, o.patients)
	fmt.Println("| bridge | db | load | msg/s | ack p50 / p99 ms | e2e p50 / p99 ms | bridge CPU ms/msg | postgres CPU ms/msg | postgres commits/msg | load tool CPU ms/msg | RSS MB (peak) | errors | loadavg |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	var all []measured
	rounds := max(o.rounds, 1)
	for round := range rounds {
		order := slices.Concat(targets[round%len(targets):], targets[:round%len(targets)])
		if rounds > 1 {
			round++
			fmt.Fprintf(os.Stderr, "round %d of %d\n", round, rounds)
		}
		for _, db := range o.dbs {
			for _, tg := range order {
				results, err := measureBridge(ctx, o, tg, db, round)
				for _, r := range results {
					printRow(r)
				}
				all = append(all, results...)
				if err != nil {
					return fmt.Errorf("%s on %s: %w", tg.label, db, err)
				}
			}
		}
	}
	if rounds > 1 {
		printMedians(all, rounds)
	}
	if o.peer != "" && (o.bin != "" || o.baseline != "") {
		printRatios(all)
	}
	if o.jsonOut != "" {
		data, _ := json.MarshalIndent(all, "", "  ")
		return os.WriteFile(o.jsonOut, data, 0o644)
	}
	return nil
}

// runContext ends on SIGINT or SIGTERM, or after an hour, so an interrupted run still stops
// its bridges and drops its databases.
func runContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, time.Hour)
	return ctx, func() { cancel(); stop() }
}

func numCPU() int {
	data, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(data), "processor\t:")
}

// target is one bridge binary to measure.
type target struct {
	kind  loadtest.Kind
	bin   string
	label string // as the tables name it
}

// shortCommit is the first 7 characters of the commit stamped into a binary.
func shortCommit(bin string) string {
	c := orUnknown(binaryCommit(bin))
	return c[:min(7, len(c))]
}

func measureBridge(ctx context.Context, o options, tg target, db string, round int) (_ []measured, err error) {
	kind, bin := tg.kind, tg.bin
	var sent int // messages sent to this bridge, warm-up included
	dir := filepath.Join(o.workDir, strings.ReplaceAll(tg.label, "@", "-")+"-"+db)
	if round > 0 {
		dir += "-r" + strconv.Itoa(round)
	}
	opts := loadtest.BridgeOptions{Kind: kind, Bin: bin, Dir: dir, LogLevel: o.logLevel}
	if o.dbConns > 0 {
		opts.EditConfig = func(cfg map[string]any) {
			localstack.SetPath(cfg, o.dbConns, "database", "max_open_conns")
			localstack.SetPath(cfg, o.dbConns, "database", "max_idle_conns")
		}
	}
	if kind == loadtest.Careline {
		opts.WebhookURL = o.webhookURL
	}
	switch db {
	case "sqlite":
	case "postgres":
		uri, drop, err := newPostgresDatabase("careline_load_"+strings.NewReplacer("-", "_", "@", "_").Replace(tg.label), o.pgLogStatements)
		if err != nil {
			return nil, err
		}
		defer drop()
		if o.pgLogStatements {
			defer func() { printStatements(o.pgLog, uri, sent) }()
		}
		opts.DatabaseURI = uri
	default:
		return nil, fmt.Errorf("-db: unknown database %q (sqlite or postgres)", db)
	}
	rec := &loadtest.Recorder{}
	opts.OnMessage = rec.OnMessage
	b, err := loadtest.StartBridge(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	sent = o.patients
	commit := binaryCommit(bin)
	fmt.Fprintf(os.Stderr, "%s (commit %s, %s): webhooks to %s\n", tg.label, orUnknown(commit), db, b.WebhookURL)
	if err = loadtest.Warm(ctx, b, rec, 0, o.patients, 8); err != nil {
		return nil, fmt.Errorf("%w (see %s)", err, dir)
	}
	// A history before the statistics: PostgreSQL plans a statement once per connection for
	// all later runs from the table sizes ANALYZE saw. With only the warm-up's 50 messages it
	// chose to read bridgev2's whole message table for each dedupe read (1,272 sequential
	// scans, 2.6 million rows read in 10 s at 8 concurrent), work that grows with every
	// message and that a clinic's database, analyzed by autovacuum as it grows, never does.
	if o.history > 0 {
		res, err := loadtest.Run(ctx, b, rec, loadtest.Load{Messages: o.history, Patients: o.patients, Concurrency: 8})
		sent += res.Sent
		if err == nil && res.Errors > 0 {
			err = fmt.Errorf("history: %d of %d webhooks failed (first: %s)", res.Errors, o.history, res.FirstError)
		}
		if err != nil {
			return nil, fmt.Errorf("%w (see %s)", err, dir)
		}
	}
	if opts.DatabaseURI != "" {
		if err = analyze(ctx, opts.DatabaseURI); err != nil {
			return nil, err
		}
	}
	var out []measured
	for _, c := range o.concurrency {
		res, err := loadtest.Run(ctx, b, rec, loadtest.Load{Messages: o.messages, Patients: o.patients, Concurrency: c, Rate: o.rate})
		sent += res.Sent
		out = append(out, measured{Bridge: kind, Label: tg.label, Database: db, Commit: commit, Round: round, Result: res})
		if err != nil {
			return out, err
		}
	}
	if o.profileDir != "" {
		if err = os.MkdirAll(o.profileDir, 0o755); err != nil {
			return out, err
		}
		c := o.concurrency[len(o.concurrency)-1]
		path := filepath.Join(o.profileDir, fmt.Sprintf("%s-%s-c%d.pprof", strings.ReplaceAll(tg.label, "@", "-"), db, c))
		profErr := make(chan error, 1)
		go func() { profErr <- b.CPUProfile(ctx, o.profileSeconds, path) }()
		// Enough messages to outlast the profile at the rate just measured.
		n := max(1000, int(out[len(out)-1].Result.MsgsPerSecond()*float64(o.profileSeconds+2)))
		res, err := loadtest.Run(ctx, b, rec, loadtest.Load{Messages: n, Patients: o.patients, Concurrency: c, Rate: o.rate})
		sent += res.Sent
		if err != nil {
			return out, err
		}
		if err = <-profErr; err != nil {
			return out, err
		}
		fmt.Fprintf(os.Stderr, "CPU profile: %s\n", path)
	}
	if unknown := b.HS.Unknown(); len(unknown) > 0 {
		fmt.Fprintf(os.Stderr, "%s asked the stub homeserver for endpoints it only answers with {}: %v\n", tg.label, unknown)
	}
	return out, nil
}

// binaryCommit is the commit stamped into the binary: `make build` passes -X main.Commit,
// otherwise Go's vcs.revision.
func binaryCommit(bin string) string {
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return ""
	}
	text := string(out)
	for _, key := range []string{"main.Commit=", "vcs.revision="} {
		if i := strings.Index(text, key); i >= 0 {
			rest := text[i+len(key):]
			if j := strings.IndexAny(rest, " '\"\n\t"); j >= 0 {
				rest = rest[:j]
			}
			if rest != "" {
				return rest
			}
		}
	}
	return ""
}

// analyze gives PostgreSQL's planner the statistics autovacuum gathers in a running clinic's
// database. A run is shorter than autovacuum's naptime, so without it both bridges' tables
// stay unanalyzed and bridgev2's dedupe read scans its whole index instead of probing it.
func analyze(ctx context.Context, uri string) error {
	db, err := sql.Open("postgres", uri)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err = db.ExecContext(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyzing the bridge's PostgreSQL database after the warm-up: %w", err)
	}
	return nil
}

func newPostgresDatabase(prefix string, logStatements bool) (string, func(), error) {
	admin, err := sql.Open("postgres", pgtest.AdminURL())
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	if _, err = admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("creating a PostgreSQL database (is PostgreSQL running on 127.0.0.1:5432?): %w", err)
	}
	if logStatements {
		if _, err = admin.Exec("ALTER DATABASE " + name + " SET log_min_duration_statement = 0"); err != nil {
			admin.Close()
			return "", nil, err
		}
		fmt.Fprintf(os.Stderr, "PostgreSQL logs every statement of database %s\n", name)
	}
	drop := func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		admin.Close()
	}
	return "postgres://postgres@127.0.0.1:5432/" + name + "?sslmode=disable", drop, nil
}

func loadLabel(r loadtest.Result) string {
	if r.Load.Rate > 0 {
		return fmt.Sprintf("%.0f/s open", r.Load.Rate)
	}
	return fmt.Sprintf("%d concurrent", r.Load.Concurrency)
}

func printRow(m measured) {
	r := m.Result
	fmt.Printf("| %s | %s | %s | %.0f | %.1f / %.1f | %.1f / %.1f | %.2f | %.2f | %.1f | %.2f | %.0f (%.0f) | %d | %s |\n",
		m.Label, m.Database, loadLabel(r), r.MsgsPerSecond(),
		loadtest.Millis(r.AckP50), loadtest.Millis(r.AckP99), loadtest.Millis(r.E2EP50), loadtest.Millis(r.E2EP99),
		loadtest.Millis(r.CPUPerMessage()), loadtest.Millis(r.PostgresCPUPerMessage()), r.CommitsPerMessage(),
		loadtest.Millis(r.LoadToolCPUPerMessage()),
		float64(r.RSS)/(1<<20), float64(r.PeakRSS)/(1<<20), r.Errors, r.LoadAverage)
	if r.FirstError != "" {
		fmt.Fprintf(os.Stderr, "%s %s %s: first error: %s\n", m.Label, m.Database, loadLabel(r), r.FirstError)
	}
}

// printRatios puts careline next to the peer for each database and load: throughput as
// careline ÷ peer (above 1 is careline faster), latency and CPU as careline ÷ peer (below 1 is
// careline better).
func printRatios(all []measured) {
	peer := map[string]loadtest.Result{}
	key := func(m measured) string { return m.Database + "|" + loadLabel(m.Result) + "|" + strconv.Itoa(m.Round) }
	for _, m := range all {
		if m.Bridge == loadtest.Peer {
			peer[key(m)] = m.Result
		}
	}
	w := io.Writer(os.Stdout)
	fmt.Fprintln(w, "\ncareline ÷ mautrix-twilio (msg/s: above 1 is careline faster; latency, CPU, RSS: below 1 is careline better)")
	fmt.Fprintln(w, "| careline | db | load | msg/s | ack p99 | e2e p50 | e2e p99 | CPU/msg | RSS |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	ratio := func(a, b float64) string {
		if b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	for _, m := range all {
		p, ok := peer[key(m)]
		if m.Bridge != loadtest.Careline || !ok {
			continue
		}
		c := m.Result
		label := m.Label
		if m.Round > 0 {
			label += fmt.Sprintf(" (round %d)", m.Round)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", label, m.Database, loadLabel(c),
			ratio(c.MsgsPerSecond(), p.MsgsPerSecond()),
			ratio(float64(c.AckP99), float64(p.AckP99)),
			ratio(float64(c.E2EP50), float64(p.E2EP50)), ratio(float64(c.E2EP99), float64(p.E2EP99)),
			ratio(float64(c.CPUPerMessage()), float64(p.CPUPerMessage())),
			ratio(float64(c.RSS), float64(p.RSS)))
	}
}

// runMemory measures careline's RSS with o.memPatients patients on file, o.memActive of them
// active, on each database.
func runMemory(o options) error {
	ctx, cancel := runContext()
	defer cancel()
	if o.workDir == "" {
		dir, err := os.MkdirTemp("", "careline-load-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.workDir = dir
	}
	bin, err := placeBinary(filepath.Join(o.workDir, "bin"), o.bin, "careline")
	if err != nil {
		return err
	}
	fmt.Printf("machine: %d CPUs, load average %s\n", numCPU(), loadtest.LoadAverage())
	fmt.Println("| db | patients in the database | active (texted in + portal session) | seed time s | RSS idle MB | RSS active MB | peak RSS MB | thread pages served | commit |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, db := range o.dbs {
		opts := loadtest.BridgeOptions{Kind: loadtest.Careline, Bin: bin, Dir: filepath.Join(o.workDir, "memory-"+db), LogLevel: o.logLevel, WebhookURL: o.webhookURL}
		if db == "postgres" {
			uri, drop, err := newPostgresDatabase("careline_load_memory", false)
			if err != nil {
				return err
			}
			defer drop()
			opts.DatabaseURI = uri
		} else if db != "sqlite" {
			return fmt.Errorf("-db: unknown database %q (sqlite or postgres)", db)
		}
		rec := &loadtest.Recorder{}
		opts.OnMessage = rec.OnMessage
		b, err := loadtest.StartBridge(ctx, opts)
		if err != nil {
			return err
		}
		res, err := loadtest.MeasureMemory(ctx, b, rec, o.memPatients, o.memActive)
		b.Close()
		if err != nil {
			return fmt.Errorf("memory on %s: %w (see %s)", db, err, opts.Dir)
		}
		mb := func(n int64) float64 { return float64(n) / (1 << 20) }
		fmt.Printf("| %s | %d | %d | %.1f | %.0f | %.0f | %.0f | %d | %s |\n", db, res.Patients, res.Active, res.SeedTime.Seconds(),
			mb(res.IdleRSS), mb(res.ActiveRSS), mb(res.PeakRSS), res.ThreadPages, binaryCommit(bin))
	}
	return nil
}

// printStatements prints the statements PostgreSQL logged for the bridge's database, per
// message sent (warm-up included, so room creation is spread over every message).
func printStatements(logPath, uri string, messages int) {
	name := uri[strings.LastIndex(uri, "/")+1:]
	name, _, _ = strings.Cut(name, "?")
	f, err := os.Open(logPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading the PostgreSQL log:", err)
		return
	}
	defer f.Close()
	counts, err := loadtest.CountStatements(f, name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading the PostgreSQL log:", err)
		return
	}
	total := 0
	for _, c := range counts {
		total += c.Executed
	}
	fmt.Printf("\nPostgreSQL statements on %s: %.1f per message (%d messages)\n| per message | server ms total | statement |\n|---|---|---|\n", name, float64(total)/float64(max(messages, 1)), messages)
	for i, c := range counts {
		if i == 25 || c.Executed == 0 {
			break
		}
		fmt.Printf("| %.2f | %.0f | `%s` |\n", float64(c.Executed)/float64(max(messages, 1)), c.ServerMS, strings.ReplaceAll(c.Statement, "|", "\\|"))
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
