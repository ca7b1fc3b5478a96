package e2e

// Fault tests of the inbound path ("Delivery guarantees"): careline killed with SIGKILL,
// Dendrite restarted and PostgreSQL restarted while patients' texts stream in. Twilio's side
// is played by twilioRetrier, which retries every webhook with the same MessageSid until it
// gets 200, as Twilio does; the property checked is that every acknowledged-or-retried text
// shows up in the care team's (decrypted) view exactly once.

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/pgtest"
	"github.com/careline/careline/internal/testenv"
	"github.com/careline/careline/internal/twiliofake"
)

// inboundText is one patient text of a fault test, with its Twilio MessageSid fixed up front
// so that every retry of its webhook carries the same SID.
type inboundText struct {
	from, body, sid string
}

func patientNumber4(i int) string { return fmt.Sprintf("+1415555%04d", 2000+i) }

// makeTexts builds n distinct texts from patients patients; tag keeps SIDs and bodies apart
// between tests.
func makeTexts(tag string, n, patients int) []inboundText {
	texts := make([]inboundText, n)
	salt := rand.Uint32()
	for i := range texts {
		texts[i] = inboundText{
			from: patientNumber4(i % patients),
			body: fmt.Sprintf("%s-%04d from patient %d", tag, i, i%patients),
			sid:  fmt.Sprintf("SM%08x%024x", salt, i),
		}
	}
	return texts
}

// twilioRetrier posts webhooks like Twilio: a connection error or a 5xx is retried after a
// short pause with the same MessageSid, until careline answers 200. Any other answer is a
// failure: Twilio would not retry it, so the text would be lost.
type twilioRetrier struct {
	s     *stack
	pause time.Duration

	acked      atomic.Int64 // webhooks answered 200
	attempts   atomic.Int64 // POSTs, retries included
	serverErrs atomic.Int64 // 5xx answers
	connErrs   atomic.Int64 // connection refused, reset, timed out
}

func (tw *twilioRetrier) failures() int64 { return tw.serverErrs.Load() + tw.connErrs.Load() }

func (tw *twilioRetrier) deliver(ctx context.Context, m inboundText) error {
	for {
		tw.attempts.Add(1)
		status, _, err := tw.s.Twilio.SendSMS(ctx, tw.s.SMSURL(), twiliofake.Inbound{
			From: m.from, To: clinicNumber, Body: m.body, MessageSid: m.sid,
		})
		switch {
		case err == nil && status == http.StatusOK:
			tw.acked.Add(1)
			return nil
		case err != nil:
			if ctx.Err() != nil {
				return fmt.Errorf("webhook %s never acknowledged: %w", m.sid, ctx.Err())
			}
			tw.connErrs.Add(1)
		case status >= 500:
			tw.serverErrs.Add(1)
		default:
			return fmt.Errorf("webhook %s answered HTTP %d: Twilio does not retry that, the text is lost", m.sid, status)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("webhook %s never acknowledged: %w", m.sid, ctx.Err())
		case <-time.After(tw.pause):
		}
	}
}

// run sends texts with senders parallel connections, one new text per tick when every > 0
// (otherwise as fast as possible). The returned channel yields the first error, or nil.
func (tw *twilioRetrier) run(ctx context.Context, texts []inboundText, senders int, every time.Duration) <-chan error {
	result := make(chan error, 1)
	next := make(chan inboundText)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range next {
				if err := tw.deliver(ctx, m); err != nil {
					once.Do(func() { firstErr = err })
				}
			}
		}()
	}
	go func() {
		var tick <-chan time.Time
		if every > 0 {
			ticker := time.NewTicker(every)
			defer ticker.Stop()
			tick = ticker.C
		}
	feed:
		for _, m := range texts {
			if tick != nil {
				select {
				case <-tick:
				case <-ctx.Done():
					break feed
				}
			}
			select {
			case next <- m:
			case <-ctx.Done():
				break feed
			}
		}
		close(next)
		wg.Wait()
		if firstErr == nil && ctx.Err() != nil {
			firstErr = ctx.Err()
		}
		result <- firstErr
	}()
	return result
}

// warmUp opens one room per patient with a first text and waits until the nurse (who
// auto-joins) has read all of them, so that every later text is one she can decrypt.
func warmUp(ctx context.Context, t *testing.T, s *stack, patients int) {
	t.Helper()
	tw := &twilioRetrier{s: s, pause: 100 * time.Millisecond}
	texts := make([]inboundText, patients)
	for i := range texts {
		texts[i] = inboundText{from: patientNumber4(i), body: fmt.Sprintf("warm-up %d", i), sid: fmt.Sprintf("SM%08x%024x", rand.Uint32(), i)}
	}
	if err := <-tw.run(ctx, texts, 4, 0); err != nil {
		t.Fatal("warm-up: ", err)
	}
	if err := waitUntil(ctx, "the warm-up texts in the nurse's rooms", func() bool {
		n := 0
		for _, m := range s.nurse.Messages() {
			if strings.HasPrefix(m.Body, "warm-up ") {
				n++
			}
		}
		return n >= patients
	}); err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls cond every 50 ms until it holds or ctx ends.
func waitUntil(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// deliveredCount is how many distinct texts the nurse has seen.
func deliveredCount(nurse *testenv.StaffClient, want map[string]bool) int {
	seen := map[string]bool{}
	for _, m := range nurse.Messages() {
		if want[m.Body] {
			seen[m.Body] = true
		}
	}
	return len(seen)
}

// pendingInbound counts webhooks careline stored but has not yet marked bridged.
func (s *stack) pendingInbound(ctx context.Context) (int, error) {
	db, err := sql.Open(s.dbDriver, s.dbURI)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM careline_inbound WHERE bridged_at IS NULL`).Scan(&n)
	return n, err
}

// acknowledgedByHomeserver reports which of the given texts the homeserver acknowledged
// although the nurse's /sync never delivered them: careline's records hold the event ID the
// homeserver answered with. Dendrite, stopped in the instant after answering, can lose such
// an event from /sync or altogether; careline's guarantee ends where the homeserver accepted
// the event. held says which of them the homeserver still returns by ID.
func (s *stack) acknowledgedByHomeserver(ctx context.Context, missing []inboundText) (acked, held map[string]bool) {
	acked, held = map[string]bool{}, map[string]bool{}
	db, err := sql.Open(s.dbDriver, s.dbURI)
	if err != nil {
		return acked, held
	}
	defer db.Close()
	query := `SELECT mxid, room_id FROM message WHERE id=$1`
	if s.dbDriver != pgtest.Driver {
		query = `SELECT mxid, room_id FROM message WHERE id=?`
	}
	for _, m := range missing {
		var eventID, roomID string
		if db.QueryRowContext(ctx, query, m.sid).Scan(&eventID, &roomID) != nil || eventID == "" {
			continue
		}
		acked[m.body] = true
		if _, err := s.nurse.Client.GetEvent(ctx, id.RoomID(roomID), id.EventID(eventID)); err == nil {
			held[m.body] = true
		}
	}
	return acked, held
}

// allReached reports whether every text is in the nurse's view or was acknowledged by the
// homeserver (see acknowledgedByHomeserver): careline holds the event ID Dendrite answered
// with, so a text missing from the room was lost by Dendrite, not careline. How many Dendrite
// loses depends on how many events are in flight when it is stopped, which grows with
// careline's speed and the machine's load: up to a fifth of the texts is accepted, a text
// careline never got acknowledged is never.
func allReached(ctx context.Context, s *stack, texts []inboundText) bool {
	seen := map[string]bool{}
	for _, m := range s.nurse.Messages() {
		seen[m.Body] = true
	}
	var missing []inboundText
	for _, m := range texts {
		if !seen[m.body] {
			missing = append(missing, m)
		}
	}
	if len(missing) == 0 {
		return true
	}
	if len(missing) > len(texts)/5 {
		return false
	}
	acked, _ := s.acknowledgedByHomeserver(ctx, missing)
	return len(acked) == len(missing)
}

// assertExactlyOnce waits until every text is in the nurse's view and careline has nothing
// pending, then sends one more text per patient as a barrier (Dendrite's sync is ordered, so
// once the nurse has the barrier she has everything sent before it) and counts by body.
func assertExactlyOnce(ctx context.Context, t *testing.T, s *stack, texts []inboundText, patients int) {
	t.Helper()
	want := make(map[string]bool, len(texts))
	for _, m := range texts {
		want[m.body] = true
	}
	err := waitUntil(ctx, "every text in the nurse's rooms", func() bool { return allReached(ctx, s, texts) })
	if err != nil {
		reportCounts(t, s, texts)
		t.Fatal(err)
	}
	if err = waitUntil(ctx, "careline to mark every stored webhook bridged", func() bool {
		n, err := s.pendingInbound(ctx)
		return err == nil && n == 0
	}); err != nil {
		t.Fatal(err)
	}
	barrier := make([]inboundText, patients)
	for i := range barrier {
		barrier[i] = inboundText{from: patientNumber4(i), body: fmt.Sprintf("barrier %d", i), sid: fmt.Sprintf("SM%08x%024x", rand.Uint32(), i)}
	}
	tw := &twilioRetrier{s: s, pause: 100 * time.Millisecond}
	if err = <-tw.run(ctx, barrier, 4, 0); err != nil {
		t.Fatal("barrier: ", err)
	}
	if err = waitUntil(ctx, "the barrier texts", func() bool {
		n := 0
		for _, m := range s.nurse.Messages() {
			if strings.HasPrefix(m.Body, "barrier ") {
				n++
			}
		}
		return n >= patients
	}); err != nil {
		t.Fatal(err)
	}
	reportCounts(t, s, texts)
}

// keepLogOnFailure copies careline's logs out of the test's temporary directory when the test
// fails (the tail printed by startStack is too short for a crash investigation).
func keepLogOnFailure(t *testing.T, s *stack) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dir, err := os.MkdirTemp("", "careline-"+t.Name()+"-")
		if err != nil {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(s.Dir, "bridge*"))
		for _, name := range logs {
			if data, err := os.ReadFile(name); err == nil {
				_ = os.WriteFile(filepath.Join(dir, filepath.Base(name)), data, 0o600)
			}
		}
		t.Logf("careline's logs: %s", dir)
	})
}

// reportCounts fails the test for every text missing, duplicated or not end-to-end encrypted.
func reportCounts(t *testing.T, s *stack, texts []inboundText) {
	t.Helper()
	count := map[string]int{}
	plain := 0
	for _, m := range s.nurse.Messages() {
		count[m.Body]++
		if !m.Encrypted {
			plain++
		}
	}
	var missing, dup []string
	dups := 0
	for _, m := range texts {
		switch n := count[m.body]; {
		case n == 0:
			missing = append(missing, m.sid)
		case n > 1:
			dup = append(dup, fmt.Sprintf("%s×%d", m.sid, n))
			dups += n - 1
		}
	}
	if len(missing) > 0 {
		var missingTexts []inboundText
		for _, m := range texts {
			if count[m.body] == 0 {
				missingTexts = append(missingTexts, m)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		acked, held := s.acknowledgedByHomeserver(ctx, missingTexts)
		cancel()
		if len(acked) == len(missing) {
			t.Logf("%d texts were acknowledged by the homeserver (careline holds the event IDs it answered with) but never reached the nurse: Dendrite lost them when it was stopped right after answering (%d still returned by ID): %v",
				len(missing), len(held), first(missing, 5))
		} else {
			t.Errorf("%d of %d texts never reached the room (%d acknowledged by the homeserver), e.g. %v", len(missing), len(texts), len(acked), first(missing, 5))
		}
	}
	if len(dup) > 0 {
		t.Errorf("%d texts reached the room more than once (%d extra events), e.g. %v", len(dup), dups, first(dup, 5))
	}
	if plain > 0 {
		t.Errorf("%d messages reached the nurse unencrypted", plain)
	}
	var fails []testenv.DecryptError
	replayCtx, cancelReplay := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelReplay()
	for _, f := range s.nurse.DecryptErrors() {
		if original := homeserverReplay(replayCtx, s, f); original != "" {
			// careline encrypted and sent it once; a retry of that request (the same body and
			// transaction ID) reached a homeserver that had stored the first and then restarted,
			// forgetting the transaction, so the room holds the ciphertext twice and the client
			// rightly refuses the copy. Every text's body is counted above, exactly once.
			t.Logf("event %s repeats the ciphertext of %s (the homeserver stored a retried send twice across its restart): %v", f.Event.ID, original, f.Err)
			continue
		}
		fails = append(fails, f)
	}
	if len(fails) > 0 {
		t.Errorf("the nurse could not decrypt %d events, e.g. %v", len(fails), fails[0].Err)
	}
}

// encryptedContent is an m.room.encrypted event's content.
func encryptedContent(evt *event.Event) (*event.EncryptedEventContent, bool) {
	if evt.Content.Parsed == nil {
		if err := evt.Content.ParseRaw(event.EventEncrypted); err != nil {
			return nil, false
		}
	}
	c, ok := evt.Content.Parsed.(*event.EncryptedEventContent)
	return c, ok && len(c.Ciphertext) > 0
}

// homeserverReplay returns the event whose ciphertext an undecryptable event repeats byte for
// byte (another event ID in the same room), or "" when it is not such a copy: a megolm index
// used twice with different ciphertexts would be careline reusing a key, and stays an error.
func homeserverReplay(ctx context.Context, s *stack, f testenv.DecryptError) id.EventID {
	if !errors.Is(f.Err, crypto.ErrDuplicateMessageIndex) {
		return ""
	}
	copyOf, ok := encryptedContent(f.Event)
	if !ok {
		return ""
	}
	resp, err := s.nurse.Client.Messages(ctx, f.Event.RoomID, "", "", mautrix.DirectionBackward, nil, 1000)
	if err != nil {
		return ""
	}
	for _, evt := range resp.Chunk {
		if evt.ID == f.Event.ID || evt.Type != event.EventEncrypted {
			continue
		}
		if c, ok := encryptedContent(evt); ok && c.SessionID == copyOf.SessionID && bytes.Equal(c.Ciphertext, copyOf.Ciphertext) {
			return evt.ID
		}
	}
	return ""
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// TestInboundSurvivesKill9 sends a burst of texts while careline is killed with SIGKILL and
// restarted at random points: during the webhook burst, and twice while the backlog drains
// into the rooms. Nothing acknowledged may be lost and nothing may appear twice.
func TestInboundSurvivesKill9(t *testing.T) {
	const (
		patients = 20
		total    = 1000 // texts in the burst
		senders  = 16   // Twilio's parallel webhook connections
	)
	s := startStack(t, stackOptions{})
	keepLogOnFailure(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s.mustLogin(ctx)
	warmUp(ctx, t, s, patients)

	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	t.Logf("seed %d", seed)
	texts := makeTexts("k9", total, patients)
	want := make(map[string]bool, total)
	for _, m := range texts {
		want[m.body] = true
	}
	// Kill points: one while webhooks are still being acknowledged, two while the stored
	// backlog is being bridged (that is when workers are between "sent to Matrix" and
	// "marked bridged").
	killAfterAcks := 150 + rng.IntN(450)
	killAfterDelivered := []int{200 + rng.IntN(250), 550 + rng.IntN(300)}

	tw := &twilioRetrier{s: s, pause: 100 * time.Millisecond}
	start := time.Now()
	sending := tw.run(ctx, texts, senders, 0)
	kill := func(when string) time.Time {
		t.Helper()
		delivered := deliveredCount(s.nurse, want)
		s.KillBridge()
		down := time.Duration(rng.IntN(400)) * time.Millisecond
		time.Sleep(down)
		t0 := time.Now()
		if err := s.StartBridge(ctx); err != nil {
			t.Fatal("restarting careline after SIGKILL: ", err)
		}
		t.Logf("SIGKILL %s (acked %d, in rooms %d); down %v, careline up again after %v",
			when, tw.acked.Load(), delivered, down, time.Since(t0).Round(time.Millisecond))
		return time.Now()
	}
	if err := waitUntil(ctx, fmt.Sprintf("%d acknowledged webhooks", killAfterAcks), func() bool { return tw.acked.Load() >= int64(killAfterAcks) }); err != nil {
		t.Fatal(err)
	}
	kill("during the webhook burst")
	var restarted time.Time
	var pendingAtRestart int
	for _, k := range killAfterDelivered {
		if err := waitUntil(ctx, fmt.Sprintf("%d texts in the rooms", k), func() bool { return deliveredCount(s.nurse, want) >= k }); err != nil {
			reportCounts(t, s, texts)
			t.Fatal(err)
		}
		restarted = kill("while the backlog drains")
		pendingAtRestart = total - deliveredCount(s.nurse, want)
	}
	if err := <-sending; err != nil {
		t.Fatal(err)
	}
	acked := time.Since(start)
	if err := waitUntil(ctx, "every text in the nurse's rooms", func() bool { return deliveredCount(s.nurse, want) == total }); err != nil {
		reportCounts(t, s, texts)
		t.Fatal(err)
	}
	recovery := time.Since(restarted)
	elapsed := time.Since(start)
	t.Logf("%d texts: all acknowledged after %v (%d POSTs, %d connection errors, %d 5xx); all in rooms after %v (%.0f msgs/s overall, 3 crashes included)",
		total, acked.Round(time.Millisecond), tw.attempts.Load(), tw.connErrs.Load(), tw.serverErrs.Load(), elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds())
	t.Logf("after the last restart: %d texts pending, all in rooms %v later (%.0f msgs/s)",
		pendingAtRestart, recovery.Round(time.Millisecond), float64(pendingAtRestart)/recovery.Seconds())
	assertExactlyOnce(ctx, t, s, texts, patients)
}

// TestInboundSurvivesHomeserverRestart stops Dendrite in the middle of a stream of texts,
// checks careline keeps acknowledging them (they are stored, the homeserver is not needed for
// that), then starts Dendrite again: every text must arrive exactly once.
func TestInboundSurvivesHomeserverRestart(t *testing.T) {
	const (
		patients = 10
		total    = 200
		senders  = 8
		every    = 40 * time.Millisecond // 25 texts/s
	)
	s := startStack(t, stackOptions{})
	keepLogOnFailure(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s.mustLogin(ctx)
	warmUp(ctx, t, s, patients)
	texts := makeTexts("hs", total, patients)
	want := make(map[string]bool, total)
	for _, m := range texts {
		want[m.body] = true
	}

	tw := &twilioRetrier{s: s, pause: 100 * time.Millisecond}
	sending := tw.run(ctx, texts, senders, every)
	if err := waitUntil(ctx, "60 acknowledged webhooks", func() bool { return tw.acked.Load() >= 60 }); err != nil {
		t.Fatal(err)
	}
	if err := s.HS.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	ackedAtStop, deliveredAtStop := tw.acked.Load(), deliveredCount(s.nurse, want)
	// Keep streaming with Dendrite down: careline must go on answering 200.
	if err := waitUntil(ctx, "50 more acknowledged webhooks with Dendrite down", func() bool { return tw.acked.Load() >= ackedAtStop+50 }); err != nil {
		t.Fatalf("careline stopped acknowledging texts while the homeserver was down (%d acked before, %d after, %d 5xx, %d connection errors): %v",
			ackedAtStop, tw.acked.Load(), tw.serverErrs.Load(), tw.connErrs.Load(), err)
	}
	if !s.BridgeRunning() {
		t.Fatal("careline exited while the homeserver was down")
	}
	ackedDuringOutage := tw.acked.Load() - ackedAtStop
	if err := s.HS.Restart(ctx); err != nil {
		t.Fatal("starting Dendrite again: ", err)
	}
	restarted := time.Now()
	pendingAtRestart := total - deliveredCount(s.nurse, want)
	if err := <-sending; err != nil {
		t.Fatal(err)
	}
	if err := waitUntil(ctx, "every text in the nurse's rooms", func() bool { return allReached(ctx, s, texts) }); err != nil {
		reportCounts(t, s, texts)
		t.Fatal(err)
	}
	t.Logf("Dendrite down %v: %d texts acknowledged meanwhile (%d in rooms at the stop, %d 5xx, %d connection errors); %d pending at restart, all in rooms %v after the restart except %d that Dendrite acknowledged and then lost",
		restarted.Sub(stopped).Round(time.Millisecond), ackedDuringOutage, deliveredAtStop, tw.serverErrs.Load(), tw.connErrs.Load(),
		pendingAtRestart, time.Since(restarted).Round(time.Millisecond), total-deliveredCount(s.nurse, want))
	assertExactlyOnce(ctx, t, s, texts, patients)
}

// TestInboundSurvivesPostgresRestart runs careline on a PostgreSQL server of its own and
// restarts that server (immediate shutdown, i.e. crash recovery) in the middle of a stream of
// texts. While it is down careline cannot store webhooks and must not acknowledge them;
// Twilio retries, and every text must arrive exactly once.
func TestInboundSurvivesPostgresRestart(t *testing.T) {
	const (
		patients = 10
		total    = 200
		senders  = 8
		every    = 40 * time.Millisecond
	)
	pg := startPrivatePostgres(t)
	s := startStack(t, stackOptions{DatabaseURI: pg.URI})
	keepLogOnFailure(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s.mustLogin(ctx)
	warmUp(ctx, t, s, patients)
	texts := makeTexts("pg", total, patients)
	want := make(map[string]bool, total)
	for _, m := range texts {
		want[m.body] = true
	}

	// bridgev2's crypto syncer ends the process (exit 51) when the database is unreachable, so
	// careline runs under a supervisor in production (systemd Restart=always, a container
	// restart policy). This emulates one: careline is started again whenever it has exited.
	supCtx, stopSupervisor := context.WithCancel(ctx)
	supervisorDone := make(chan struct{})
	var restarts int
	go func() {
		defer close(supervisorDone)
		for supCtx.Err() == nil {
			if !s.BridgeRunning() && s.StartBridge(supCtx) == nil {
				restarts++
			}
			select {
			case <-supCtx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	stopSupervising := func() { stopSupervisor(); <-supervisorDone }
	defer stopSupervising()

	tw := &twilioRetrier{s: s, pause: 200 * time.Millisecond}
	sending := tw.run(ctx, texts, senders, every)
	if err := waitUntil(ctx, "60 acknowledged webhooks", func() bool { return tw.acked.Load() >= 60 }); err != nil {
		t.Fatal(err)
	}
	if err := pg.Stop("immediate"); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	ackedAtStop, failuresAtStop := tw.acked.Load(), tw.failures()
	// An outage Twilio notices: about 3 s of refused webhooks with 8 connections retrying
	// every 200 ms.
	if err := waitUntil(ctx, "refused webhooks while PostgreSQL is down", func() bool { return tw.failures() >= failuresAtStop+120 }); err != nil {
		t.Fatalf("careline did not refuse webhooks while its database was down (acked %d → %d): %v", ackedAtStop, tw.acked.Load(), err)
	}
	ackedDuringOutage := tw.acked.Load() - ackedAtStop
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	if err := <-sending; err != nil {
		t.Fatal(err)
	}
	if err := waitUntil(ctx, "every text in the nurse's rooms", func() bool { return deliveredCount(s.nurse, want) == total }); err != nil {
		reportCounts(t, s, texts)
		t.Fatal(err)
	}
	stopSupervising()
	t.Logf("PostgreSQL down %v: %d webhooks acknowledged meanwhile (in flight at the stop), %d 5xx, %d connection errors in all; careline restarted %d times by the supervisor; all %d texts in rooms %v after the restart",
		restarted.Sub(stopped).Round(time.Millisecond), ackedDuringOutage, tw.serverErrs.Load(), tw.connErrs.Load(),
		restarts, total, time.Since(restarted).Round(time.Millisecond))
	assertExactlyOnce(ctx, t, s, texts, patients)
}
