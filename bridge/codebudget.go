package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/config"
	"github.com/careline/careline/metrics"
)

// codeBudget says whether a clinic login may text another code at now under
// network.portal.max_codes_per_login_per_hour, next to the portal's per-patient caps: a few
// dozen links pumping codes to premium numbers (toll fraud) stop at the budget. It counts the
// codes in the outbox, so a restart does not reset it; alert is true the first time in a
// window that the budget is used up (recorded durably too).
func (c *Connector) codeBudget(ctx context.Context, loginID string, limit int, now time.Time) (ok, alert bool, err error) {
	sent, err := c.Store.CodesSince(ctx, loginID, now.Add(-config.CodeBudgetWindow))
	if err != nil || sent < limit {
		return err == nil, false, err
	}
	alert, err = c.wf.throttle.Take(ctx, "code-budget-alert:"+loginID, now, config.CodeBudgetWindow)
	return false, alert, err
}

// takeCodeBudget reports whether the login may text another code now, telling the admin who
// connected the number (in their management room) when the budget is first used up. When the
// count cannot be read, no code goes: the budget guards the clinic's money.
func (c *Connector) takeCodeBudget(ctx context.Context, client *Client) bool {
	limit := c.Config.Portal.MaxCodesPerLoginPerHour
	log := zerolog.Ctx(ctx)
	ok, alert, err := c.codeBudget(ctx, string(client.login.ID), limit, time.Now())
	if err != nil {
		log.Err(err).Msg("Could not read the code budget; the code is not sent")
	}
	if !ok {
		c.Metrics.Code(metrics.CodeCapped)
	}
	if !alert {
		return ok
	}
	log.Warn().Str("login_id", string(client.login.ID)).Int("limit", limit).Msg("Code texts per hour used up for this clinic number; further codes wait")
	c.audit(ctx, audit.Entry{Actor: "system", Action: "code.budget_exhausted", Detail: fmt.Sprintf("limit=%d per hour", limit)})
	c.tellAdmin(ctx, client, fmt.Sprintf("⚠️ Patients asked for more than %d verification codes in the last hour on this clinic number, "+
		"the limit of network.portal.max_codes_per_login_per_hour. Further codes are refused until the hour has passed "+
		"(patients are asked to try later). If this is not a rush of genuine patients, someone may be using the portal "+
		"to send texts at the clinic's expense: check the audit trail (code.sent).", limit))
	return false
}
