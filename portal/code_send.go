package portal

import (
	"errors"
	"net/http"
	"strings"

	"github.com/rs/zerolog"

	"github.com/careline/careline/token"
)

// sendCode texts a new one-time code to the number on file, bound to this browser's link.
// The new code replaces any older one; the failure count is left alone.
func (p *Portal) sendCode(w http.ResponseWriter, r *http.Request, pa *preauth) {
	ctx := r.Context()
	log := zerolog.Ctx(ctx).With().Str("patient_id", pa.patientID).Logger()
	v, ok := p.verifyView(w, r, pa)
	if !ok {
		return
	}
	if v.Locked {
		log.Info().Msg("Refused to send a portal code: patient is locked")
		p.render(w, r, http.StatusLocked, "verify", v)
		return
	}
	switch result, err := p.claimCodeSend(ctx, pa.patientID); {
	case err != nil:
		log.Err(err).Msg("Failed to check portal code cool-down")
		p.renderError(w, r)
		return
	case result == sendCooldown:
		log.Info().Msg("Refused to send a portal code: cool-down")
		v.Error = v.L.T("verify.cooldown")
		p.render(w, r, http.StatusTooManyRequests, "verify", v)
		return
	case result == sendCapped:
		log.Warn().Msg("Refused to send a portal code: the patient's codes per hour or day are used up")
		p.backend.Audit(ctx, pa.patientID, "code_capped")
		v.Error = v.L.T("verify.too_many_codes")
		p.render(w, r, http.StatusTooManyRequests, "verify", v)
		return
	}

	code := token.NewCode()
	if err := p.storeCode(ctx, pa.patientID, pa.linkHash, code); err != nil {
		log.Err(err).Msg("Failed to store portal code")
		p.renderError(w, r)
		return
	}
	text := strings.NewReplacer("{code}", code, "{clinic}", v.Clinic).Replace(p.cfg.CodeMessage)
	if err := p.backend.SendSMS(ctx, pa.patientID, text); errors.Is(err, ErrCodeBudget) {
		log.Warn().Msg("Refused to send a portal code: the clinic's code budget is used up")
		v.Error = v.L.T("verify.send_failed")
		p.render(w, r, http.StatusTooManyRequests, "verify", v)
		return
	} else if err != nil {
		log.Err(err).Msg("Failed to send portal code by SMS")
		v.Error = v.L.T("verify.send_failed")
		p.render(w, r, http.StatusBadGateway, "verify", v)
		return
	}
	p.backend.Audit(ctx, pa.patientID, "code_sent")
	log.Info().Msg("Portal code sent")
	http.Redirect(w, r, "/verify?sent=1", http.StatusSeeOther)
}
