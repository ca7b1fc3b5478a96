package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/careline/careline/internal/testenv"
	"github.com/careline/careline/internal/twiliofake"
)

const outboxRate = 20 // texts per second in these tests

// outboxStack is a stack whose number may send outboxRate texts per second, with one room per
// patient already open.
func outboxStack(t *testing.T, patients int) (*stack, []id.RoomID, []string) {
	s := startStack(t, stackOptions{Network: func(n map[string]any) {
		n["twilio"].(map[string]any)["messages_per_second"] = outboxRate
	}})
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	var rooms []id.RoomID
	var numbers []string
	for i := range patients {
		number := fmt.Sprintf("+1415555%04d", 2000+i)
		room := s.createDM(ctx, number)
		if err := s.nurse.WaitForJoin(ctx, room); err != nil {
			t.Fatal(err)
		}
		rooms, numbers = append(rooms, room), append(numbers, number)
	}
	return s, rooms, numbers
}

// checkDelivered asserts that every text "!plain out-<i>" reached Twilio exactly once, each
// patient's in order, and never faster than the configured rate.
func checkDelivered(t *testing.T, s *stack, n int, numbers []string) {
	t.Helper()
	sent := s.Twilio.Sent()
	seen := map[string]int{}
	lastIndex := map[string]int{}
	var times []time.Time
	for _, m := range sent {
		i := strings.Index(m.Body, "out-")
		if i < 0 {
			continue
		}
		var k int
		fmt.Sscanf(m.Body[i:], "out-%d", &k)
		seen[m.Body[i:]]++
		if prev, ok := lastIndex[m.To]; ok && k < prev {
			t.Errorf("texts to %s out of order: out-%d after out-%d", m.To, k, prev)
		}
		lastIndex[m.To] = k
		times = append(times, m.Created)
	}
	for i := range n {
		if c := seen[fmt.Sprintf("out-%d", i)]; c != 1 {
			t.Errorf("out-%d reached Twilio %d times, want 1", i, c)
		}
	}
	// Rate limit: any outboxRate+1 consecutive accepted texts span at least one second
	// (a small allowance for clock granularity).
	for i := 0; i+outboxRate < len(times); i++ {
		if span := times[i+outboxRate].Sub(times[i]); span < 950*time.Millisecond {
			t.Fatalf("%d texts within %v: the rate limit of %d/s was exceeded", outboxRate+1, span, outboxRate)
		}
	}
}

// TestOutboxThroughTwilioOutage: Twilio answers 429 and then 500 for a while during a burst
// of staff messages; every message reaches Twilio once recovered, none twice, in order per
// patient, within the rate limit.
func TestOutboxThroughTwilioOutage(t *testing.T) {
	const n = 500
	s, rooms, numbers := outboxStack(t, 5)
	// 500 encrypted sends from one test client take about 40 s here; allow for a slower machine.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s.Twilio.FailNextSends(twiliofake.Fault{Status: 429, Code: 20429, Message: "Too Many Requests", Times: 25})
	for i := range n {
		if i == n/4 {
			s.Twilio.FailNextSends(twiliofake.Fault{Status: 500, Code: 20500, Message: "Internal Server Error"})
		}
		if i == n/2 {
			s.Twilio.ClearFaults()
		}
		if _, err := s.nurse.SendText(ctx, rooms[i%len(rooms)], fmt.Sprintf("!plain out-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Twilio.ClearFaults()
	waitForTexts(t, s, n)
	checkDelivered(t, s, n, numbers)
}

// TestOutboxSurvivesKill9: careline is killed during a burst of staff messages and
// restarted; texts interrupted mid-send are reconciled with Twilio, none lost or doubled.
func TestOutboxSurvivesKill9(t *testing.T) {
	const n = 120
	s, rooms, numbers := outboxStack(t, 3)
	ctx := waitCtx(t)
	for i := range n {
		if _, err := s.nurse.SendText(ctx, rooms[i%len(rooms)], fmt.Sprintf("!plain out-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Kill while the outbox is draining (at 20/s it needs about 6 s), then restart.
	for range 2 {
		time.Sleep(1500 * time.Millisecond)
		s.KillBridge()
		if err := s.StartBridge(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitForTexts(t, s, n)
	checkDelivered(t, s, n, numbers)
}

// waitForTexts waits until n distinct "out-" texts reached Twilio, then a little longer so a
// duplicate would show.
func waitForTexts(t *testing.T, s *stack, n int) {
	t.Helper()
	ctx := waitCtx(t)
	for {
		distinct := map[string]bool{}
		for _, m := range s.Twilio.Sent() {
			if i := strings.Index(m.Body, "out-"); i >= 0 {
				distinct[m.Body[i:]] = true
			}
		}
		if len(distinct) >= n {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("only %d of %d texts reached Twilio", len(distinct), n)
		case <-time.After(100 * time.Millisecond):
		}
	}
	time.Sleep(2 * time.Second)
}

// TestStatusArrivingBeforeTwilioAnswers: Twilio posts a text's delivery statuses before its
// answer to the send call reaches careline. The statuses are held and applied once the SID is
// recorded: a failure still reaches staff in words, a delivery still marks the message delivered.
func TestStatusArrivingBeforeTwilioAnswers(t *testing.T) {
	const landline, mobile = "+14155550199", "+14155550142"
	s := startStack(t, stackOptions{})
	ctx := waitCtx(t)
	s.mustLogin(ctx)
	s.Twilio.PostStatusBeforeAnswer()
	s.Twilio.FailDeliveryTo(landline, 30006)
	failing, delivered := s.createDM(ctx, landline), s.createDM(ctx, mobile)
	for _, room := range []id.RoomID{failing, delivered} {
		if err := s.nurse.WaitForJoin(ctx, room); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := s.nurse.SendText(ctx, failing, "!plain please call us back"); err != nil {
		t.Fatal(err)
	}
	notice, err := s.nurse.WaitForMessage(ctx, func(m testenv.Message) bool {
		return m.Notice && m.RoomID == failing && strings.Contains(m.Body, "Not delivered")
	})
	if err != nil {
		t.Fatal("a failure posted before Twilio's answer never reached staff: ", err)
	}
	if !strings.Contains(notice.Body, "30006") {
		t.Fatalf("the failure notice does not say why: %q", notice.Body)
	}

	eventID, err := s.nurse.SendText(ctx, delivered, "!plain your results are ready")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.nurse.WaitForEvent(ctx, func(evt *event.Event) bool {
		if evt.Type != event.BeeperMessageStatus || evt.RoomID != delivered {
			return false
		}
		st, ok := evt.Content.Parsed.(*event.BeeperMessageStatusEventContent)
		if !ok {
			_ = evt.Content.ParseRaw(evt.Type)
			st, ok = evt.Content.Parsed.(*event.BeeperMessageStatusEventContent)
		}
		return ok && st.RelatesTo.EventID == eventID && st.DeliveredToUsers != nil && len(*st.DeliveredToUsers) > 0
	})
	if err != nil {
		t.Fatal("a delivery posted before Twilio's answer was not shown to staff: ", err)
	}
}
