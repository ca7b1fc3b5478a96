package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/careline/careline/api"
	"github.com/careline/careline/template"
)

// clinicLocation is the clinic's time zone for {date} and {time}.
func (c *Connector) clinicLocation() *time.Location { return c.Config.Location() }

// renderTemplate fills a configured template. An unknown template or a missing value is a
// refusal naming it. It returns the text and whether it is sensitive (secure link only).
func (c *Connector) renderTemplate(name string, values map[string]string) (string, bool, error) {
	t := c.Config.TemplateSet().Get(name)
	if t == nil {
		known := strings.Join(c.Config.TemplateSet().Names(), ", ")
		if known == "" {
			known = "none are configured"
		}
		return "", true, api.Refuse(fmt.Sprintf("there is no template %q in network.templates (%s)", name, known))
	}
	text, err := t.Render(values)
	var missing *template.MissingError
	if errors.As(err, &missing) {
		return "", true, api.Refuse(err.Error())
	} else if err != nil {
		return "", true, err
	}
	return text, t.Sensitive, nil
}

// renderForPatient fills a template for an API message: {clinic}, the patient's recorded
// name, and the request's params.
func (c *Connector) renderForPatient(ctx context.Context, patientID, name string, params map[string]string) (string, bool, error) {
	values, err := c.templateValues(ctx, patientID, params)
	if err != nil {
		return "", true, err
	}
	return c.renderTemplate(name, values)
}
