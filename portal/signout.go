package portal

import (
	"net/http"

	"github.com/rs/zerolog"

	"github.com/careline/careline/portal/form"
)

// signOut ends the session on the server, expires both cookies and asks the browser to
// forget everything of this origin. Without a valid session there is nothing to protect,
// so the browser is simply cleaned up; with one, the CSRF token must match.
func (p *Portal) signOut(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	log := zerolog.Ctx(ctx)
	if !p.sameOrigin(r) {
		log.Warn().Str("path", r.URL.Path).Msg("Portal refused a cross-origin request")
		p.renderForbidden(w, r)
		return
	}
	s, err := p.session(r)
	if err != nil {
		log.Err(err).Msg("Failed to load portal session")
		p.renderError(w, r)
		return
	}
	if s != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if !validCSRF(s.csrf, r.PostFormValue(form.CSRFField)) {
			log.Warn().Str("patient_id", s.patientID).Msg("Portal refused a request without a valid CSRF token")
			p.renderForbidden(w, r)
			return
		}
		if err = p.deleteSession(ctx, s.hash); err != nil {
			log.Err(err).Str("patient_id", s.patientID).Msg("Failed to delete portal session")
			p.renderError(w, r)
			return
		}
		p.backend.Audit(ctx, s.patientID, "signout")
		log.Info().Str("patient_id", s.patientID).Msg("Portal signed out")
	}
	if raw := cookieValue(r, linkCookie); raw != "" {
		_ = p.deletePreauth(ctx, p.preauthHash(raw))
	}
	clearCookie(w, sessionCookie)
	clearCookie(w, linkCookie)
	w.Header().Set("Clear-Site-Data", `"cache", "cookies", "storage"`)
	p.renderSimple(w, r, http.StatusOK, "signout")
}
