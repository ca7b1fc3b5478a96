package bridge

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/careline/careline/audit"
	"github.com/careline/careline/config"
	"github.com/careline/careline/metrics"
)

// codeBudget caps code texts per clinic login per hour (network.portal.max_codes_per_login_per_hour),
// next to the portal's per-patient caps: a few dozen links pumping codes to premium numbers
// (toll fraud) stop at the budget, and the admin hears of it once per window. It is kept in
// memory: a restart forgets at most one hour's count, and the per-patient caps are durable.
type codeBudget struct {
	mu      sync.Mutex
	sent    map[string][]time.Time // by login ID, oldest first
	alerted map[string]time.Time
}

// take records a code text for login at now if the budget allows; alert is true the first
// time in a window that it does not.
func (b *codeBudget) take(login string, limit int, now time.Time) (ok, alert bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sent == nil {
		b.sent, b.alerted = map[string][]time.Time{}, map[string]time.Time{}
	}
	since := now.Add(-config.CodeBudgetWindow)
	times := b.sent[login]
	for len(times) > 0 && !times[0].After(since) {
		times = times[1:]
	}
	b.sent[login] = times
	if len(times) >= limit {
		if last, ok := b.alerted[login]; !ok || !last.After(since) {
			b.alerted[login] = now
			return false, true
		}
		return false, false
	}
	b.sent[login] = append(times, now)
	return true, false
}

// takeCodeBudget reports whether the login may text another code now, telling the admin who
// connected the number (in their management room) when the budget is first used up.
func (c *Connector) takeCodeBudget(ctx context.Context, client *Client) bool {
	limit := c.Config.Portal.MaxCodesPerLoginPerHour
	ok, alert := c.codes.take(string(client.login.ID), limit, time.Now())
	if !ok {
		c.Metrics.Code(metrics.CodeCapped)
	}
	if !alert {
		return ok
	}
	log := zerolog.Ctx(ctx)
	log.Warn().Str("login_id", string(client.login.ID)).Int("limit", limit).Msg("Code texts per hour used up for this clinic number; further codes wait")
	c.audit(ctx, audit.Entry{Actor: "system", Action: "code.budget_exhausted", Detail: fmt.Sprintf("limit=%d per hour", limit)})
	notice := fmt.Sprintf("⚠️ Patients asked for more than %d verification codes in the last hour on this clinic number, "+
		"the limit of network.portal.max_codes_per_login_per_hour. Further codes are refused until the hour has passed "+
		"(patients are asked to try later). If this is not a rush of genuine patients, someone may be using the portal "+
		"to send texts at the clinic's expense: check the audit trail (code.sent).", limit)
	c.tellAdmin(ctx, client, notice)
	return false
}
