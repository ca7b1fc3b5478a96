package bridge

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/careline/careline/api"
	"github.com/careline/careline/audit"
	"github.com/careline/careline/broadcast"
	"github.com/careline/careline/template"
)

// StartBroadcast starts an API broadcast on the same engine as the `broadcast` command.
func (b *apiBackend) StartBroadcast(ctx context.Context, integration, id string, req *api.BroadcastRequest) error {
	c := b.c
	cl := c.apiClient()
	if cl == nil {
		return errNoLogin
	}
	if existing, err := c.wf.broadcasts.Get(ctx, id); err != nil {
		return err
	} else if existing != nil {
		return nil // a retry of a request that got this far: it is already running
	}
	t := c.Config.TemplateSet().Get(req.Template)
	if t == nil {
		_, _, err := c.renderTemplate(req.Template, nil)
		return err
	}
	// Values everyone needs must be given now; first_name and last_name are per patient (a
	// patient without a recorded name is skipped as missing_value).
	probe := map[string]string{"first_name": "x", "last_name": "x"}
	maps.Copy(probe, req.Params)
	probe["clinic"] = c.Config.ClinicName
	var missing *template.MissingError
	if _, err := t.Render(probe); errors.As(err, &missing) {
		return api.Refuse(err.Error() + `: add it to "params"; nothing was sent to anyone`)
	}
	bc := &broadcast.Broadcast{ID: id, LoginID: string(cl.login.ID), Template: t.Name, Values: req.Params,
		CreatedBy: "api:" + integration, Origin: "api"}
	if err := c.wf.broadcasts.Create(ctx, bc, req.To); err != nil {
		return err
	}
	c.audit(ctx, audit.Entry{Actor: bc.CreatedBy, Action: "broadcast.started",
		Detail: fmt.Sprintf("broadcast %s, template %s, %d targets", bc.ID, t.Name, len(req.To))})
	c.wf.broadcaster.Start(c.wf.runCtx(), bc)
	return nil
}

// Broadcast reports an API broadcast's progress.
func (b *apiBackend) Broadcast(ctx context.Context, id string) (*api.BroadcastStatus, error) {
	c := b.c
	if bc, err := c.wf.broadcasts.Get(ctx, id); err != nil || bc == nil {
		return nil, err
	}
	counts, err := c.wf.broadcasts.Counts(ctx, id)
	if err != nil {
		return nil, err
	}
	return &api.BroadcastStatus{ID: id, Sent: counts.Sent, Skipped: counts.Skipped, Failed: counts.Failed, Done: counts.Done}, nil
}
