package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/careline/careline/internal/stubhs"
)

// Load is one measurement: Messages inbound texts spread over Patients senders, either
// Concurrency webhooks at a time as fast as acknowledged (closed loop), or at Rate per second
// whatever the bridge does (open loop, when Rate > 0; Concurrency then only caps requests in
// flight).
type Load struct {
	Messages    int
	Patients    int
	Concurrency int
	Rate        float64
	// PatientOffset shifts the senders, so a run can use patients another run did not.
	PatientOffset int
}

// Result is what one Load measured.
type Result struct {
	Load        Load
	Sent, Acked int
	Arrived     int
	Errors      int
	FirstError  string
	Elapsed     time.Duration // first send to last arrival at the homeserver
	AckElapsed  time.Duration // first send to last acknowledgement
	AckP50      time.Duration
	AckP99      time.Duration
	E2EP50      time.Duration
	E2EP99      time.Duration
	CPU         time.Duration // bridge process CPU over the run
	// LoadToolCPU is this process's CPU over the same window: the load generator, the stub
	// homeserver and the fake Twilio. It shares the machine with the bridge, so what it burns
	// per message lowers every bridge's msg/s.
	LoadToolCPU time.Duration
	// PostgresCPU is the PostgreSQL server's CPU over the run for the bridge's database: its
	// backends, those that exited during the run included, and the postmaster (postgresCPU).
	PostgresCPU time.Duration
	// PostgresCommits is transactions committed in the bridge's database over the run.
	PostgresCommits int64
	RSS, PeakRSS    int64
	LoadAverage     string // at the end of the run
}

// MsgsPerSecond is messages that reached the homeserver per second of the run.
func (r Result) MsgsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Arrived) / r.Elapsed.Seconds()
}

// CPUPerMessage is the bridge's CPU time per bridged message.
func (r Result) CPUPerMessage() time.Duration {
	if r.Arrived == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Arrived)
}

// LoadToolCPUPerMessage is the load tool's own CPU time per bridged message.
func (r Result) LoadToolCPUPerMessage() time.Duration {
	if r.Arrived == 0 {
		return 0
	}
	return r.LoadToolCPU / time.Duration(r.Arrived)
}

// CommitsPerMessage is PostgreSQL commits per bridged message.
func (r Result) CommitsPerMessage() float64 {
	if r.Arrived == 0 {
		return 0
	}
	return float64(r.PostgresCommits) / float64(r.Arrived)
}

// PostgresCPUPerMessage is PostgreSQL's CPU time per bridged message.
func (r Result) PostgresCPUPerMessage() time.Duration {
	if r.Arrived == 0 {
		return 0
	}
	return r.PostgresCPU / time.Duration(r.Arrived)
}

// StallTimeout is how long Run waits for the next message to reach the homeserver before
// it gives up on the rest (a bridge that acknowledged messages and lost them).
var StallTimeout = time.Minute

// marker tags a message body so its arrival at the homeserver can be matched to its send.
const marker = "ld:"

// Recorder matches m.room.message arrivals at the stub homeserver to sent webhooks. Give its
// OnMessage to the stub (BridgeOptions.OnMessage).
type Recorder struct {
	mu      sync.Mutex
	run     string
	arrived []time.Time
	count   int
	notify  chan struct{}
}

// OnMessage records the arrival of a message whose body carries the current run's marker.
func (rec *Recorder) OnMessage(m stubhs.Message) {
	i := strings.Index(m.Body, marker)
	if i < 0 {
		return
	}
	runID, num, ok := strings.Cut(m.Body[i+len(marker):], ":")
	if !ok {
		return
	}
	if j := strings.IndexFunc(num, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
		num = num[:j]
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if runID != rec.run || n < 0 || n >= len(rec.arrived) || !rec.arrived[n].IsZero() {
		return
	}
	rec.arrived[n] = m.Arrived
	rec.count++
	select {
	case rec.notify <- struct{}{}:
	default:
	}
}

func (rec *Recorder) begin(runID string, n int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.run, rec.arrived, rec.count = runID, make([]time.Time, n), 0
	rec.notify = make(chan struct{}, 1)
}

func (rec *Recorder) progress() (int, chan struct{}) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.count, rec.notify
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// PatientNumber is the phone number of patient i: 555 numbers under twenty US area codes, so
// up to 200,000 distinct patients.
func PatientNumber(i int) string {
	areas := []string{"415", "212", "310", "617", "312", "206", "303", "404", "503", "512",
		"213", "305", "702", "713", "808", "919", "971", "267", "480", "615"}
	return fmt.Sprintf("+1%s555%04d", areas[(i/10000)%len(areas)], i%10000)
}

// Run sends the load to the bridge and waits until every acknowledged message reached the
// stub homeserver (or ctx ends). The bridge must have been started with rec.OnMessage.
func Run(ctx context.Context, b *Bridge, rec *Recorder, load Load) (Result, error) {
	res := Result{Load: load}
	if load.Messages <= 0 || load.Patients <= 0 || load.Concurrency <= 0 {
		return res, fmt.Errorf("messages, patients and concurrency must be positive")
	}
	runID := randomHex(4)
	rec.begin(runID, load.Messages)

	sent := make([]time.Time, load.Messages)
	acked := make([]time.Duration, load.Messages)
	ok := make([]bool, load.Messages)
	var errCount atomic.Int64
	var firstErr sync.Once
	webhooks, err := NewWebhooks(b.WebhookURL)
	if err != nil {
		return res, err
	}
	client, err := newWebhookClient(ctx, webhooks, b.WebhookURL, load.Concurrency)
	if err != nil {
		return res, err
	}
	defer client.Close()
	senders := make([]string, load.Patients)
	for p := range senders {
		senders[p] = PatientNumber(load.PatientOffset + p)
	}
	bodyPrefix := "Load test message " + marker + runID + ":"
	send := func(i int, intended time.Time) {
		sent[i] = intended
		status, err := client.Post(senders[i%load.Patients], bodyPrefix+strconv.Itoa(i))
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("webhook answered HTTP %d", status)
		}
		if err != nil {
			errCount.Add(1)
			firstErr.Do(func() { res.FirstError = err.Error() })
			return
		}
		acked[i], ok[i] = time.Since(intended), true
	}

	before, err := SampleProc(b.PID())
	if err != nil {
		return res, err
	}
	var pg *pgProbe
	var pgBefore pgSample
	var commitsBefore int64
	if b.Opts.DatabaseURI != "" {
		if pg, err = openPGProbe(ctx, b.Opts.DatabaseURI); err != nil {
			return res, fmt.Errorf("watching PostgreSQL: %w", err)
		}
		defer pg.Close()
		pgBefore = pg.sample(ctx)
		commitsBefore = pg.commits(ctx)
	}
	selfBefore := SelfCPU()
	start := time.Now()
	var wg sync.WaitGroup
	if load.Rate > 0 {
		// Open loop: message i is due at start + i/Rate, sent then whatever came before; its
		// latencies count from when it was due, so a stalled bridge shows as latency.
		slots := make(chan struct{}, load.Concurrency)
		interval := time.Duration(float64(time.Second) / load.Rate)
		for i := range load.Messages {
			due := start.Add(time.Duration(i) * interval)
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				send(i, due)
			}()
		}
	} else {
		var next atomic.Int64
		for range load.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= load.Messages || ctx.Err() != nil {
						return
					}
					send(i, time.Now())
				}
			}()
		}
	}
	wg.Wait()
	res.AckElapsed = time.Since(start)
	var ackLatency []time.Duration
	for i := range acked {
		if ok[i] {
			ackLatency = append(ackLatency, acked[i])
		}
	}
	res.Sent, res.Acked, res.Errors = load.Messages, len(ackLatency), int(errCount.Load())
	// Wait for every acknowledged message to reach the homeserver, as long as they keep coming.
	lastCount, lastProgress := -1, time.Now()
	for {
		n, notify := rec.progress()
		if n >= res.Acked {
			break
		}
		if n != lastCount {
			lastCount, lastProgress = n, time.Now()
		} else if time.Since(lastProgress) > StallTimeout {
			return res, fmt.Errorf("%d of %d acknowledged messages reached the homeserver, none in the last %v", n, res.Acked, StallTimeout)
		}
		select {
		case <-notify:
		case <-time.After(time.Second):
		case <-ctx.Done():
			return res, fmt.Errorf("%d of %d acknowledged messages reached the homeserver: %w", n, res.Acked, ctx.Err())
		}
	}
	rec.mu.Lock()
	var last time.Time
	var e2e []time.Duration
	for i, t := range rec.arrived {
		if t.IsZero() {
			continue
		}
		e2e = append(e2e, t.Sub(sent[i]))
		if t.After(last) {
			last = t
		}
	}
	res.Arrived = rec.count
	rec.mu.Unlock()
	// What a message costs after it arrived (marking it bridged) belongs to it too; and
	// PostgreSQL publishes its commit counter within a second.
	time.Sleep(1500 * time.Millisecond)
	res.LoadToolCPU = SelfCPU() - selfBefore
	after, err := SampleProc(b.PID())
	if err != nil {
		return res, err
	}
	if pg != nil {
		res.PostgresCPU = postgresCPU(pgBefore, pg.sample(ctx))
		res.PostgresCommits = pg.commits(ctx) - commitsBefore
	}
	res.Elapsed = last.Sub(start)
	res.AckP50, res.AckP99 = Percentile(ackLatency, 50), Percentile(ackLatency, 99)
	res.E2EP50, res.E2EP99 = Percentile(e2e, 50), Percentile(e2e, 99)
	res.CPU = after.CPU - before.CPU
	res.RSS, res.PeakRSS = after.RSS, after.PeakRSS
	res.LoadAverage = LoadAverage()
	return res, nil
}

// Warm sends one message from each of the first n patients (from offset) and waits until all
// arrived, so their rooms exist and the measured run is steady state.
func Warm(ctx context.Context, b *Bridge, rec *Recorder, offset, n, concurrency int) error {
	res, err := Run(ctx, b, rec, Load{Messages: n, Patients: n, Concurrency: concurrency, PatientOffset: offset})
	if err != nil {
		return err
	}
	if res.Errors > 0 {
		return fmt.Errorf("warm-up: %d of %d webhooks failed (first: %s)", res.Errors, n, res.FirstError)
	}
	return nil
}
