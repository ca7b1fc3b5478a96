package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/matrix"

	"github.com/careline/careline/metrics"
	"github.com/careline/careline/store"
	"github.com/careline/careline/twilioapi"
)

// handleHealthz answers on the public listener while the process serves, with no detail:
// the public must not learn which dependency is down. /readyz on the metrics listener says.
func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// startMetrics opens the private metrics listener (network.metrics.listen): Prometheus
// /metrics and /readyz.
func (c *Connector) startMetrics(ctx context.Context) error {
	c.Metrics.WatchDB(c.Bridge.DB.RawDB)
	c.readiness.Add("database", metrics.DatabaseCheck(c.Bridge.DB.RawDB))
	c.readiness.Add("homeserver", c.homeserverCheck)
	c.readiness.Add("twilio", c.twilioCheck.run(c))
	c.watchBacklogs()
	if !c.Config.MetricsEnabled() {
		return nil
	}
	log := c.Bridge.Log.With().Str("component", "metrics http").Logger()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", c.Metrics.Handler())
	mux.Handle("GET /readyz", &c.readiness)
	c.metricsServer = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return log.WithContext(context.Background()) },
	}
	listener, err := net.Listen("tcp", c.Config.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on network.metrics.listen %s: %w", c.Config.Metrics.Listen, err)
	}
	go func() {
		if err := c.metricsServer.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Err(err).Msg("Metrics listener stopped")
		}
	}()
	log.Info().Str("listen", c.Config.Metrics.Listen).Msg("Metrics listener started (/metrics, /readyz)")
	return nil
}

func (c *Connector) stopMetrics() {
	if c.metricsServer == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.metricsServer.Shutdown(ctx); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Metrics listener did not shut down cleanly")
	}
}

// homeserverCheck asks the homeserver for its versions, as any client's first request does.
func (c *Connector) homeserverCheck(ctx context.Context) error {
	mc, ok := c.Bridge.Matrix.(*matrix.Connector)
	if !ok {
		return nil
	}
	if _, err := mc.AS.BotClient().Versions(ctx); err != nil {
		return fmt.Errorf("the homeserver does not answer: %w", err)
	}
	return nil
}

// twilioReachability checks each connected number's account with Twilio, at most once a
// minute: /readyz may be polled every few seconds, and each check is a Twilio API request.
type twilioReachability struct {
	mu      sync.Mutex
	checked time.Time
	last    error
}

const twilioCheckEvery = time.Minute

func (t *twilioReachability) run(c *Connector) metrics.Check {
	return func(ctx context.Context) error {
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.checked.IsZero() && time.Since(t.checked) < twilioCheckEvery {
			return t.last
		}
		var clients []*Client
		for _, login := range c.Bridge.GetAllCachedUserLogins() {
			if cl, ok := login.Client.(*Client); ok {
				clients = append(clients, cl)
			}
		}
		done := make(chan error, 1)
		go func() {
			var errs []error
			for _, cl := range clients {
				if err := cl.twilio.CheckAccount(); err != nil {
					errs = append(errs, fmt.Errorf("number of login %s: %w", cl.login.ID, err))
				}
			}
			done <- errors.Join(errs...)
		}()
		select {
		case err := <-done:
			t.checked, t.last = time.Now(), err
			return err
		case <-ctx.Done():
			return errors.New("no answer from Twilio in time")
		}
	}
}

// portalCodeEvents maps the portal's audited actions to the code metric's events.
var portalCodeEvents = map[string]string{
	"code_sent": metrics.CodeSent, "code_failed": metrics.CodeFailed, "locked": metrics.CodeLocked, "code_capped": metrics.CodeCapped,
}

// countPortalEvent counts code events and portal messages for the metrics.
func (c *Connector) countPortalEvent(action string) {
	if event, ok := portalCodeEvents[action]; ok {
		c.Metrics.Code(event)
	}
	if action == "reply" || action == "upload" {
		c.Metrics.Message(metrics.In, metrics.ModePortal, metrics.ResultOK)
	}
}

// countInbound counts a patient's message that reached its room (ok) or was given up on
// (failed). Portal posts are counted when the portal accepts them (countPortalEvent), so only
// their failures are counted here.
func (c *Connector) countInbound(in *store.Inbound, result string) {
	switch {
	case in.Channel == store.ChannelSMS:
		c.Metrics.Message(metrics.In, metrics.ModeSMS, result)
	case result != metrics.ResultOK:
		c.Metrics.Message(metrics.In, metrics.ModePortal, result)
	}
}

// countOutcome counts a text the sender handed to Twilio or gave up on; a retry is counted
// when it is scheduled, not here.
func (c *Connector) countOutcome(oc store.Outcome) {
	mode := metrics.ModeSMS // codes and HELP answers
	switch oc.Text.Channel {
	case store.ChannelSecure:
		mode = metrics.ModeSecure
	case store.ChannelSMS:
		mode = metrics.ModePlain
	}
	switch {
	case oc.SID != "":
		c.Metrics.Message(metrics.Out, mode, metrics.ResultOK)
	case oc.Failed && (oc.ErrorCode == twilioapi.CodeOptedOut || oc.Text.PatientGone):
		c.Metrics.Message(metrics.Out, mode, metrics.ResultRefused)
	case oc.Failed:
		c.Metrics.Message(metrics.Out, mode, metrics.ResultFailed)
	}
}

// watchBacklogs exports the outbox's and the inbox's depth and age, and makes /readyz fail
// while either has had an item due for longer than metrics.MaxBacklogAge.
func (c *Connector) watchBacklogs() {
	queues := []struct {
		name, help string
		read       func(context.Context) (store.Backlog, error)
	}{
		{"outbox", "Texts waiting to be handed to Twilio", c.Store.OutboxBacklog},
		{"inbox", "Patients' messages waiting to reach their rooms", c.Store.InboundBacklog},
	}
	var checks []metrics.Check
	for _, q := range queues {
		read := func(ctx context.Context) (metrics.Backlog, error) {
			b, err := q.read(ctx)
			if err != nil {
				return metrics.Backlog{}, err
			}
			mb := metrics.Backlog{Depth: b.Depth}
			if !b.OldestDue.IsZero() {
				mb.OldestAge = max(time.Since(b.OldestDue), 0)
			}
			return mb, nil
		}
		c.Metrics.WatchBacklog(q.name, q.help, read)
		checks = append(checks, metrics.BacklogCheck(q.name, read))
	}
	c.readiness.Add("backlog", func(ctx context.Context) error {
		var errs []error
		for _, check := range checks {
			errs = append(errs, check(ctx))
		}
		return errors.Join(errs...)
	})
}
