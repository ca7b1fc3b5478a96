package bridge

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/careline/careline/broadcast"
	"github.com/careline/careline/names"
	"github.com/careline/careline/schedule"
	"github.com/careline/careline/throttle"
)

// workflows are the clinic workflows' parts: names, scheduled sends, broadcasts and the
// once-per-window records of automatic texts. Each package owns its tables.
type workflows struct {
	names       *names.Store
	schedule    *schedule.Store
	scheduler   *schedule.Runner
	broadcasts  *broadcast.Store
	broadcaster *broadcast.Engine
	throttle    *throttle.Store

	ctx     context.Context
	stop    context.CancelFunc
	stopped []<-chan struct{}
}

// startWorkflows upgrades the workflow tables, starts the scheduler and resumes broadcasts a
// restart interrupted.
func (c *Connector) startWorkflows(ctx context.Context) error {
	log := c.Bridge.Log.With().Str("component", "workflows").Logger()
	db := c.Bridge.DB.Database
	wf := &c.wf
	wf.names = names.New(db, c.Seal, log.With().Str("db_section", "careline_names").Logger())
	wf.schedule = schedule.New(db, c.Seal, log.With().Str("db_section", "careline_schedule").Logger())
	wf.broadcasts = broadcast.New(db, c.Seal, log.With().Str("db_section", "careline_broadcast").Logger())
	wf.throttle = throttle.New(db, log.With().Str("db_section", "careline_throttle").Logger())
	if err := upgradeSections(ctx, dbSection{"careline_names", wf.names.Upgrade}, dbSection{"careline_schedule", wf.schedule.Upgrade},
		dbSection{"careline_broadcast", wf.broadcasts.Upgrade}, dbSection{"careline_throttle", wf.throttle.Upgrade}); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(log.WithContext(context.Background()))
	wf.ctx, wf.stop = runCtx, cancel
	wf.scheduler = &schedule.Runner{Store: wf.schedule, Deliver: c.deliverScheduled, After: c.afterScheduled}
	wf.broadcaster = &broadcast.Engine{
		Store: wf.broadcasts, Prepare: c.prepareBroadcastTarget, Deliver: c.deliverBroadcastTarget,
		After: c.afterBroadcastTarget, Progress: c.reportBroadcast,
		Pace: time.Duration(float64(time.Second) / c.Config.Twilio.MessagesPerSecond),
	}
	wf.stopped = append(wf.stopped, wf.scheduler.Start(runCtx))
	go c.resumeBroadcasts(runCtx)
	return nil
}

func (c *Connector) stopWorkflows() {
	if c.wf.stop == nil {
		return
	}
	c.wf.stop()
	for _, done := range c.wf.stopped {
		<-done
	}
}

// resumeBroadcasts restarts unfinished broadcasts once their clinic login is connected
// (bridgev2 loads logins after the connector has started).
func (c *Connector) resumeBroadcasts(ctx context.Context) {
	log := zerolog.Ctx(ctx)
	unfinished, err := c.wf.broadcasts.Unfinished(ctx)
	if err != nil {
		log.Err(err).Msg("Could not read unfinished broadcasts; they resume at the next start")
		return
	}
	for _, b := range unfinished {
		for c.clientForLogin(ctx, networkid.UserLoginID(b.LoginID)) == nil {
			timer := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
		}
		log.Info().Str("broadcast_id", b.ID).Msg("Resuming a broadcast interrupted by a restart")
		c.wf.broadcaster.Start(ctx, b)
	}
}

// runCtx is the context workflow work runs under: it ends when careline stops, not when the
// command that started it returns.
func (wf *workflows) runCtx() context.Context { return wf.ctx }
