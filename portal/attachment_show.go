package portal

import (
	"mime"
	"net/http"
	"strconv"

	"github.com/rs/zerolog"

	"github.com/careline/careline/portal/form"
)

// showAttachment downloads an attachment of the session's own thread. It is always a
// download (Content-Disposition: attachment), never rendered in the portal's origin.
func (p *Portal) showAttachment(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	log := zerolog.Ctx(ctx).With().Str("patient_id", s.patientID).Logger()
	id := r.PathValue("id")
	// Only attachments listed in this patient's thread (and not withdrawn or expired).
	msgs, err := p.backend.Thread(ctx, s.patientID)
	if err != nil {
		log.Err(err).Msg("Failed to load portal thread for attachment")
		p.renderError(w, r)
		return
	}
	var found *Attachment
	for _, m := range msgs {
		if m.Withdrawn || m.Expired {
			continue
		}
		for i := range m.Attachments {
			if m.Attachments[i].ID == id {
				found = &m.Attachments[i]
			}
		}
	}
	if found == nil {
		log.Info().Msg("Portal attachment not in the patient's thread")
		p.renderSimple(w, r, http.StatusNotFound, "notfound")
		return
	}
	contentType, data, err := p.backend.Attachment(ctx, s.patientID, id)
	if err != nil {
		log.Err(err).Msg("Failed to load portal attachment")
		p.renderError(w, r)
		return
	}
	// The type comes from whoever sent the file (staff's Matrix client, Twilio): only types
	// that cannot run script on the portal's origin are served as themselves.
	if mediaType, _, err := mime.ParseMediaType(contentType); err != nil || !form.Served(mediaType) {
		contentType = "application/octet-stream"
	} else {
		contentType = mediaType
	}
	name := form.CleanFileName(found.FileName, contentType)
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(data)
}
