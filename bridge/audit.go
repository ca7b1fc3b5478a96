package bridge

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/careline/careline/audit"
)

// audit appends to the tamper-evident audit trail: who did what to which patient's data,
// never the content. A failure is logged, not passed on: a patient's message is not held
// back because the audit table is unavailable.
func (c *Connector) audit(ctx context.Context, e audit.Entry) {
	if c.Audit == nil {
		return
	}
	if _, err := c.Audit.Append(ctx, e); err != nil {
		zerolog.Ctx(ctx).Err(err).Str("action", e.Action).Msg("Could not write to the audit trail")
	}
}

func patientActor(patientID string) string { return "patient:" + patientID }

// auditIn appends an entry in the caller's transaction: the entry is kept exactly when the
// change it records is, and an error fails the transaction.
func (c *Connector) auditIn(ctx context.Context, e audit.Entry) error {
	if c.Audit == nil {
		return nil
	}
	_, err := c.Audit.Append(ctx, e)
	return err
}

// auditAllIn appends entries, in order, in the caller's transaction (see auditIn), holding the
// audit chain's head once for all of them.
func (c *Connector) auditAllIn(ctx context.Context, entries []audit.Entry) error {
	if c.Audit == nil {
		return nil
	}
	return c.Audit.AppendAll(ctx, entries)
}
