package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"
)

// startHTTP opens the public listener: Twilio webhooks and the patient portal. It is separate
// from the appservice port so only it needs to face the internet (through a reverse proxy).
func (c *Connector) startHTTP(ctx context.Context) error {
	log := c.Bridge.Log.With().Str("component", "public http").Logger()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /twilio/sms", c.handleSMSWebhook)
	mux.HandleFunc("POST /twilio/status", c.handleStatusWebhook)
	c.registerAPI(mux)
	mux.Handle("/", c.Portal.Handler())
	c.server = &http.Server{
		Handler:           hlog.NewHandler(log)(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return log.WithContext(context.Background()) },
	}
	listener, err := net.Listen("tcp", c.Config.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on network.http.listen %s: %w", c.Config.HTTP.Listen, err)
	}
	go func() {
		if err := c.server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Err(err).Msg("Public HTTP listener stopped")
		}
	}()
	log.Info().Str("listen", c.Config.HTTP.Listen).Str("public_url", c.Config.PublicURL()).Msg("Public HTTP listener started")
	return nil
}

func (c *Connector) stopHTTP() {
	if c.server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.server.Shutdown(ctx); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Public HTTP listener did not shut down cleanly")
	}
}

func (c *Connector) smsWebhookURL() string    { return c.Config.PublicURL() + "/twilio/sms" }
func (c *Connector) statusWebhookURL() string { return c.Config.PublicURL() + "/twilio/status" }
