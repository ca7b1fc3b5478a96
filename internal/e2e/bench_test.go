package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/careline/careline/internal/twiliofake"
)

// BenchmarkInbound measures the inbound path on this machine: signed Twilio webhook →
// durable write → acknowledgement → encrypted event in the patient's room, as the staff
// client sees it. It reports messages per second and p50/p99 latency for both the
// acknowledgement and the arrival in the room. Rooms exist beforehand (one per patient).
// "burst" sends as fast as 16 senders can (throughput; room latency is then mostly queueing);
// "paced" sends 10 messages/s, below capacity (latency of one message).
//
//	go test -tags goolm -run '^$' -bench BenchmarkInbound -benchtime 2000x ./internal/e2e/
func BenchmarkInbound(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres"} {
		b.Run(kind+"/burst", func(b *testing.B) { benchmarkInbound(b, kind == "postgres", 0) })
		b.Run(kind+"/paced", func(b *testing.B) { benchmarkInbound(b, kind == "postgres", 10) })
	}
}

func benchmarkInbound(b *testing.B, postgres bool, perSecond float64) {
	const patients, senders = 50, 16
	s := startStack(b, stackOptions{Postgres: postgres})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s.mustLogin(ctx)
	number := func(i int) string { return fmt.Sprintf("+1415555%04d", 1000+i%patients) }
	for i := range patients {
		if status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: number(i), To: clinicNumber, Body: fmt.Sprintf("warm-%d", i)}); err != nil || status != 200 {
			b.Fatalf("warm-up webhook: %d %v", status, err)
		}
	}
	warm := 0
	for warm < patients {
		if err := ctx.Err(); err != nil {
			b.Fatal("warm-up messages did not arrive: ", err)
		}
		warm = 0
		for _, m := range s.nurse.Messages() {
			if len(m.Body) > 5 && m.Body[:5] == "warm-" {
				warm++
			}
		}
		time.Sleep(50 * time.Millisecond)
	}

	var mu sync.Mutex
	posted := make(map[string]time.Time, b.N)
	var ackLatency []time.Duration
	seen := make(map[string]time.Duration, b.N)
	seenCount := len(s.nurse.Messages())
	done := make(chan struct{})
	// Stamp each message when the staff client has it (decrypted).
	go func() {
		defer close(done)
		for {
			msgs := s.nurse.Messages()
			now := time.Now()
			mu.Lock()
			for _, m := range msgs[seenCount:] {
				if t0, ok := posted[m.Body]; ok {
					seen[m.Body] = now.Sub(t0)
				}
			}
			n := len(seen)
			mu.Unlock()
			seenCount = len(msgs)
			if n >= b.N || ctx.Err() != nil {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body := fmt.Sprintf("bench-%d", i)
				mu.Lock()
				posted[body] = time.Now()
				mu.Unlock()
				t0 := time.Now()
				status, _, err := s.Twilio.SendSMS(ctx, s.SMSURL(), twiliofake.Inbound{From: number(i), To: clinicNumber, Body: body})
				if err != nil || status != http.StatusOK {
					b.Errorf("webhook %d: %d %v", i, status, err)
					return
				}
				mu.Lock()
				ackLatency = append(ackLatency, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	var tick <-chan time.Time
	if perSecond > 0 {
		ticker := time.NewTicker(time.Duration(float64(time.Second) / perSecond))
		defer ticker.Stop()
		tick = ticker.C
	}
	for i := range b.N {
		if tick != nil {
			<-tick
		}
		next <- i
	}
	close(next)
	wg.Wait()
	<-done
	elapsed := time.Since(start)
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < b.N {
		b.Fatalf("only %d of %d messages reached the room", len(seen), b.N)
	}
	roomLatency := make([]time.Duration, 0, len(seen))
	for _, d := range seen {
		roomLatency = append(roomLatency, d)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(ms(percentile(ackLatency, 50)), "ack-p50-ms")
	b.ReportMetric(ms(percentile(ackLatency, 99)), "ack-p99-ms")
	b.ReportMetric(ms(percentile(roomLatency, 50)), "room-p50-ms")
	b.ReportMetric(ms(percentile(roomLatency, 99)), "room-p99-ms")
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkOutbound measures staff message → Matrix (Megolm) → careline → outbox → the fake
// Twilio, with the rate limit set out of the way (10,000/s). It reports texts per second
// and the p50/p99 time from the staff client's send to Twilio's acceptance.
//
//	go test -tags goolm -run '^$' -bench BenchmarkOutbound -benchtime 500x ./internal/e2e/
func BenchmarkOutbound(b *testing.B) {
	const senders = 4
	s := startStack(b, stackOptions{Network: func(n map[string]any) {
		n["twilio"].(map[string]any)["messages_per_second"] = 10000
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s.mustLogin(ctx)
	room := s.createDM(ctx, patientNumber)
	if err := s.nurse.WaitForJoin(ctx, room); err != nil {
		b.Fatal(err)
	}
	before := len(s.Twilio.Sent())
	var mu sync.Mutex
	posted := make(map[string]time.Time, b.N)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body := fmt.Sprintf("out-%d", i)
				mu.Lock()
				posted[body] = time.Now()
				mu.Unlock()
				if _, err := s.nurse.SendText(ctx, room, "!plain "+body); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for i := range b.N {
		next <- i
	}
	close(next)
	wg.Wait()
	sent, err := s.Twilio.WaitForSent(ctx, before+b.N)
	if err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	var latency []time.Duration
	mu.Lock()
	for _, m := range sent[before:] {
		if i := strings.Index(m.Body, "out-"); i >= 0 {
			if t0, ok := posted[m.Body[i:]]; ok {
				latency = append(latency, m.Created.Sub(t0))
			}
		}
	}
	mu.Unlock()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "texts/s")
	b.ReportMetric(ms(percentile(latency, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(latency, 99)), "p99-ms")
}
