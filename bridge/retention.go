package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/careline/careline/audit"
)

const retentionEvery = time.Hour

// runRetention erases what is past its retention period, every hour, until ctx ends.
func (c *Connector) runRetention(ctx context.Context) {
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if err := c.purgeExpired(ctx, time.Now()); err != nil && ctx.Err() == nil {
			zerolog.Ctx(ctx).Err(err).Msg("Retention purge failed; will try again in an hour")
		}
		timer.Reset(retentionEvery)
	}
}

// purgeExpired erases message content older than retention.messages, expired portal links,
// codes and sessions, and audit entries older than retention.audit; it reports the counts.
func (c *Connector) purgeExpired(ctx context.Context, now time.Time) error {
	purged, err := c.Store.PurgeBefore(ctx, now.Add(-c.Config.Retention.Messages))
	if err != nil {
		return err
	}
	portalRows, err := c.Web.PurgeExpired(ctx)
	if err != nil {
		return err
	}
	c.purgeIntegration(ctx, now.Add(-c.Config.Retention.Messages))
	auditRows, err := c.Audit.PurgeBefore(ctx, now.Add(-c.Config.Retention.Audit))
	if err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Int64("message_bodies", purged.Messages).Int64("attachments", purged.Attachments).
		Int64("webhook_records", purged.Inbound).Int64("outbox_records", purged.Outbox).
		Int64("portal_records", portalRows).Int64("audit_entries", auditRows).Msg("Retention purge done")
	c.audit(ctx, audit.Entry{Actor: "system", Action: "retention.purge", Detail: fmt.Sprintf(
		"bodies %d, attachments %d, webhooks %d, outbox %d, portal %d, audit %d",
		purged.Messages, purged.Attachments, purged.Inbound, purged.Outbox, portalRows, auditRows)})
	return nil
}
