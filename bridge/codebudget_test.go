package bridge

import (
	"testing"
	"time"
)

func TestCodeBudgetPerLoginPerHour(t *testing.T) {
	var b codeBudget
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for i := range 3 {
		if ok, alert := b.take("login1", 3, t0.Add(time.Duration(i)*time.Minute)); !ok || alert {
			t.Fatalf("code %d: ok=%v alert=%v", i, ok, alert)
		}
	}
	// The fourth is refused and alerts once; the fifth is refused quietly.
	if ok, alert := b.take("login1", 3, t0.Add(10*time.Minute)); ok || !alert {
		t.Fatalf("over budget: ok=%v alert=%v", ok, alert)
	}
	if ok, alert := b.take("login1", 3, t0.Add(11*time.Minute)); ok || alert {
		t.Fatalf("over budget again: ok=%v alert=%v", ok, alert)
	}
	// Another login has its own budget.
	if ok, _ := b.take("login2", 3, t0.Add(11*time.Minute)); !ok {
		t.Fatal("another login was refused")
	}
	// An hour after the first code, one slot is free again.
	if ok, _ := b.take("login1", 3, t0.Add(time.Hour)); !ok {
		t.Fatal("refused after the window moved on")
	}
	if ok, alert := b.take("login1", 3, t0.Add(time.Hour+time.Second)); ok || alert {
		t.Fatalf("alerted twice in one window: ok=%v alert=%v", ok, alert)
	}
	if ok, alert := b.take("login1", 3, t0.Add(3*time.Hour)); !ok || alert {
		t.Fatalf("a new hour: ok=%v alert=%v", ok, alert)
	}
}
