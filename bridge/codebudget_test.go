package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/careline/careline/store"
	"github.com/careline/careline/throttle"
)

// TestCodeBudgetSurvivesRestart: the per-login code budget counts the codes in the outbox, so
// a restart (a connector with fresh memory) does not reset it, and the admin is alerted once
// per window, not again after the restart.
func TestCodeBudgetSurvivesRestart(t *testing.T) {
	f := newInboundFixture(t)
	ctx := context.Background()
	restart := func() *Connector {
		c := &Connector{Store: f.store}
		c.wf.throttle = throttle.New(f.store.DB, zerolog.Nop())
		if err := c.wf.throttle.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, err := f.store.GetOrCreatePatient(ctx, "p1", "L", testPatient); err != nil {
		t.Fatal(err)
	}
	c := restart()
	now := time.Now()
	for i := range 3 {
		if ok, alert, err := c.codeBudget(ctx, "L", 3, now); !ok || alert || err != nil {
			t.Fatalf("code %d: ok=%v alert=%v %v", i, ok, alert, err)
		}
		if err := f.store.Enqueue(ctx, &store.Outgoing{LoginID: "L", PatientID: "p1", Kind: store.KindCode, Body: "code", GiveUpAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	// Staff texts do not use the code budget; another login has its own.
	if err := f.store.Enqueue(ctx, &store.Outgoing{LoginID: "L", PatientID: "p1", Kind: store.KindMessage, Body: "staff", GiveUpAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := c.codeBudget(ctx, "other", 3, now); !ok || err != nil {
		t.Fatalf("another login refused: %v", err)
	}
	if ok, alert, err := c.codeBudget(ctx, "L", 3, now); ok || !alert || err != nil {
		t.Fatalf("over budget: ok=%v alert=%v %v", ok, alert, err)
	}
	c = restart()
	if ok, alert, err := c.codeBudget(ctx, "L", 3, now.Add(time.Minute)); ok || alert || err != nil {
		t.Fatalf("over budget after a restart: ok=%v alert=%v %v", ok, alert, err)
	}
	// An hour after the codes, the budget is free again.
	if ok, _, err := c.codeBudget(ctx, "L", 3, now.Add(time.Hour+time.Second)); !ok || err != nil {
		t.Fatalf("refused after the window moved on: %v", err)
	}
}
