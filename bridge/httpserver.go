package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// startHTTP opens the public listener: Twilio webhooks and the patient portal. It is separate
// from the appservice port so only it needs to face the internet (through a reverse proxy).
// /twilio/{login}/voice is reserved for missed-call webhooks.
func (c *Connector) startHTTP(ctx context.Context) error {
	log := c.Bridge.Log.With().Str("component", "public http").Logger()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /twilio/{login}/sms", c.Metrics.TimeWebhook("sms", c.handleSMSWebhook))
	mux.HandleFunc("POST /twilio/{login}/status/{outbox}", c.Metrics.TimeWebhook("status", c.handleStatusWebhook))
	mux.HandleFunc("POST /twilio/{login}/voice", c.Metrics.TimeWebhook("voice", c.handleVoiceWebhook))
	mux.HandleFunc("GET /healthz", handleHealthz)
	c.registerAPI(mux)
	mux.Handle("/", c.whileAccepting(c.Metrics.TimePortal(c.Web.Handler())))
	c.server = &http.Server{
		// Requests log through the listener's logger, which BaseContext puts in their
		// context; nothing adds fields to it, so no copy per request (hlog.NewHandler).
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return log.WithContext(c.backgroundCtx()) },
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

// accepting answers 503 once shutdown began: Twilio retries a 503, and a patient's browser
// shows it, while a message accepted now could no longer reach its room.
func (c *Connector) accepting(w http.ResponseWriter) bool {
	if c.shuttingDown.Load() || c.Bridge.IsStopping() {
		w.Header().Set("Retry-After", "30")
		http.Error(w, "careline is restarting; try again in a moment.", http.StatusServiceUnavailable)
		return false
	}
	return true
}

func (c *Connector) whileAccepting(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.accepting(w) {
			next.ServeHTTP(w, r)
		}
	})
}

// stopHTTP waits for requests in flight (each either stored what it took or refused it).
func (c *Connector) stopHTTP() {
	if c.server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.server.Shutdown(ctx); err != nil {
		c.Bridge.Log.Err(err).Msg("Public HTTP listener did not shut down cleanly")
	}
}
