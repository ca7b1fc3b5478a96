package bridge

import (
	"context"
	"errors"
	"testing"
)

// A login that arrives while Start is still preparing careline's tables waits for them, and
// is told careline is starting when it cannot wait longer.
func TestWaitTablesReady(t *testing.T) {
	c := &Connector{tablesReady: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.waitTablesReady(ctx); !errors.Is(err, errStillStarting) {
		t.Fatalf("before the tables are ready: %v, want errStillStarting", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- c.waitTablesReady(context.Background()) }()
	close(c.tablesReady)
	if err := <-waited; err != nil {
		t.Fatalf("once the tables are ready: %v", err)
	}
}
