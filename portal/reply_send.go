package portal

import (
	"errors"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/careline/careline/portal/form"
)

// sendReply posts the patient's message to the room as the patient's ghost.
func (p *Portal) sendReply(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	log := zerolog.Ctx(ctx).With().Str("patient_id", s.patientID).Logger()
	f := form.NewReplyForm(r)
	if err := f.Validate(); err != nil {
		var fe *form.Error
		errors.As(err, &fe)
		p.threadError(w, r, s, http.StatusBadRequest, fe.Key, f.Body)
		return
	}
	if err := p.backend.Reply(ctx, s.patientID, f.Body); err != nil {
		log.Err(err).Msg("Failed to send portal reply")
		p.threadError(w, r, s, http.StatusBadGateway, "reply.failed", f.Body)
		return
	}
	p.backend.Audit(ctx, s.patientID, "reply")
	log.Info().Msg("Portal reply sent")
	http.Redirect(w, r, "/thread?sent=reply", http.StatusSeeOther)
}

// threadError shows the thread again with an error and, for a reply, the text the patient
// wrote so it is not lost.
func (p *Portal) threadError(w http.ResponseWriter, r *http.Request, s *session, status int, key, body string) {
	v, ok := p.threadView(w, r, s)
	if !ok {
		return
	}
	switch key {
	case "upload.too_large":
		v.Error = v.L.T(key, v.L.Size(p.cfg.MaxUploadBytes))
	default:
		v.Error = v.L.T(key)
	}
	if len(body) <= 4*form.MaxReplyChars {
		v.Body = body
	}
	p.render(w, r, status, "thread", v)
}
