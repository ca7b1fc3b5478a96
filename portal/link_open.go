package portal

import (
	"net/http"

	"github.com/rs/zerolog"
)

// openLink redeems a link token from an SMS: it binds a pre-auth cookie to the link and
// redirects to /verify, a URL without the token. Unknown and expired links get the same
// neutral page.
func (p *Portal) openLink(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	log := zerolog.Ctx(ctx)
	if isLinkPreview(r) {
		// The same neutral page whether or not the link exists: a preview shows nothing.
		log.Debug().Msg("Portal link fetched for a preview; not redeemed")
		p.renderSimple(w, r, http.StatusOK, "home")
		return
	}
	l, err := p.findLink(ctx, p.linkHash(r.PathValue("token")))
	if err != nil {
		log.Err(err).Msg("Failed to look up portal link")
		p.renderError(w, r)
		return
	}
	if l != nil {
		patient, err := p.backend.Patient(ctx, l.patientID)
		if err != nil {
			log.Err(err).Str("patient_id", l.patientID).Msg("Failed to load patient for portal link")
			p.renderError(w, r)
			return
		} else if patient == nil {
			l = nil
		}
	}
	if l == nil {
		log.Info().Msg("Portal link not found or expired")
		p.renderSimple(w, r, http.StatusNotFound, "link.invalid")
		return
	}

	// A session for this patient already proves who the browser is; a session for anyone
	// else ends here, so the other patient's thread never shows behind this link.
	if s, err := p.session(r); err != nil {
		log.Err(err).Msg("Failed to load portal session")
		p.renderError(w, r)
		return
	} else if s != nil && s.patientID == l.patientID {
		p.backend.Audit(ctx, l.patientID, "link_opened")
		http.Redirect(w, r, "/thread", http.StatusSeeOther)
		return
	} else if s != nil {
		if err = p.deleteSession(ctx, s.hash); err != nil {
			log.Err(err).Msg("Failed to end other patient's portal session")
			p.renderError(w, r)
			return
		}
		clearCookie(w, sessionCookie)
		log.Info().Str("patient_id", s.patientID).Msg("Ended portal session: browser opened another patient's link")
	}
	if old := cookieValue(r, linkCookie); old != "" {
		_ = p.deletePreauth(ctx, p.preauthHash(old))
	}

	raw, expires, err := p.createPreauth(ctx, l)
	if err != nil {
		log.Err(err).Str("patient_id", l.patientID).Msg("Failed to create portal pre-auth")
		p.renderError(w, r)
		return
	}
	setCookie(w, linkCookie, raw, expires.Sub(p.now()))
	p.backend.Audit(ctx, l.patientID, "link_opened")
	log.Info().Str("patient_id", l.patientID).Msg("Portal link opened")
	http.Redirect(w, r, "/verify", http.StatusSeeOther)
}
