package bridge

import (
	"context"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/careline/careline/api"
	"github.com/careline/careline/apitoken"
	"github.com/careline/careline/appointment"
	"github.com/careline/careline/webhookout"
)

// integration is the EHR-facing side of careline: the API, appointments and their reminders,
// and the outgoing webhooks that report patients' answers.
type integration struct {
	server       *api.Server
	tokens       *apitoken.Store
	appointments *appointment.Store
	reminders    *appointment.Runner
	webhooks     *webhookout.Queue
	stop         context.CancelFunc
}

// startIntegration opens the API's tables and starts the reminder and webhook loops.
func (c *Connector) startIntegration(ctx context.Context) error {
	db := c.Bridge.DB.Database
	log := c.Bridge.Log.With().Str("component", "integration").Logger()
	in := &integration{
		tokens:       apitoken.New(db, apitoken.KeyFromSecret(c.Config.Privacy.IdentityKey), log),
		appointments: appointment.New(db, c.Seal, log),
		webhooks:     webhookout.New(db, c.Config.API.WebhookURL, c.Config.API.WebhookSecret, log),
	}
	backend := &apiBackend{c: c}
	var err error
	in.server, err = api.New(api.Config{
		RequestsPerMinute: c.Config.API.RequestsPerMinute,
		ReminderOffsets:   c.Config.Reminders.Offsets,
	}, db, in.tokens, in.appointments, c.Audit, backend, log)
	if err != nil {
		return err
	}
	if err = upgradeSections(ctx, dbSection{"careline_apitoken", in.tokens.Upgrade}, dbSection{"careline_appointment", in.appointments.Upgrade},
		dbSection{"careline_webhookout", in.webhooks.Upgrade}, dbSection{"careline_api", in.server.Upgrade}); err != nil {
		return err
	}
	in.reminders = appointment.NewRunner(in.appointments, backend)
	loopCtx, cancel := context.WithCancel(log.WithContext(context.Background()))
	in.stop = cancel
	go in.reminders.Run(loopCtx)
	go in.webhooks.Run(loopCtx)
	c.integration = in
	return nil
}

func (c *Connector) stopIntegration() {
	if c.integration != nil && c.integration.stop != nil {
		c.integration.stop()
	}
}

// registerAPI adds the integration API's routes to the public listener.
func (c *Connector) registerAPI(mux *http.ServeMux) {
	c.integration.server.Register(mux)
}

// apiClient is the clinic login the API sends through: the connected number that sorts first.
func (c *Connector) apiClient() *Client {
	var first *Client
	for _, login := range c.Bridge.GetAllCachedUserLogins() {
		cl, ok := login.Client.(*Client)
		if ok && (first == nil || cl.meta.PhoneNumber < first.meta.PhoneNumber) {
			first = cl
		}
	}
	return first
}

// apiBackend is what the integration API and the reminder loop may ask of careline.
type apiBackend struct{ c *Connector }

var (
	_ api.Backend        = (*apiBackend)(nil)
	_ appointment.Sender = (*apiBackend)(nil)
)

// purgeIntegration applies network.retention.messages to appointments and delivered webhooks.
func (c *Connector) purgeIntegration(ctx context.Context, cutoff time.Time) {
	if c.integration == nil {
		return
	}
	appointments, err := c.integration.appointments.PurgeBefore(ctx, cutoff)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not purge old appointments")
		return
	}
	webhooks, err := c.integration.webhooks.PurgeDelivered(ctx, cutoff)
	if err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Could not purge delivered webhooks")
		return
	}
	zerolog.Ctx(ctx).Info().Int64("appointments", appointments).Int64("webhooks", webhooks).Msg("Retention purge of appointments done")
}
