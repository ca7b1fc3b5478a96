package bridge

import (
	"context"
	"net/http"
	"time"

	"github.com/careline/careline/api"
)

// clinicLocation is the clinic's time zone for {date} and {time}.
func (c *Connector) clinicLocation() *time.Location { return time.UTC }

// renderTemplate fills a configured template; an unknown template or a missing value is a
// *api.Refusal naming it. It returns the text and whether it is sensitive (secure link only).
func (c *Connector) renderTemplate(name string, values map[string]string) (string, bool, error) {
	return "", true, &api.Refusal{Status: http.StatusUnprocessableEntity, Message: "templates are not available yet"}
}

// renderForPatient fills a template for a patient: the clinic and given params.
func (c *Connector) renderForPatient(ctx context.Context, patientID, name string, params map[string]string) (string, bool, error) {
	values := map[string]string{"clinic": c.Config.ClinicName}
	for k, v := range params {
		values[k] = v
	}
	return c.renderTemplate(name, values)
}

// StartBroadcast starts a broadcast through the broadcast engine.
func (b *apiBackend) StartBroadcast(ctx context.Context, integration, id string, req *api.BroadcastRequest) error {
	return &api.Refusal{Status: http.StatusServiceUnavailable, Message: "broadcasts are not available yet"}
}

// Broadcast reports a broadcast's progress.
func (b *apiBackend) Broadcast(ctx context.Context, id string) (*api.BroadcastStatus, error) {
	return nil, nil
}
