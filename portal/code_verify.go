package portal

import (
	"errors"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/careline/careline/portal/form"
)

// lockNotice is posted in the patient's staff room when the portal locks.
const lockNotice = "The patient portal is locked for this patient after too many wrong verification codes. " +
	"If the patient asks, staff can unlock it with `!careline unlock`."

// verifyCode checks the one-time code (and date of birth when required). Every failure
// counts against the patient, across resends; at MaxFailures the portal locks until staff
// unlock it. Success starts a session under a new token and drops the pre-auth.
func (p *Portal) verifyCode(w http.ResponseWriter, r *http.Request, pa *preauth) {
	ctx := r.Context()
	log := zerolog.Ctx(ctx).With().Str("patient_id", pa.patientID).Logger()
	v, ok := p.verifyView(w, r, pa)
	if !ok {
		return
	}
	if v.Locked {
		log.Info().Msg("Refused portal code: patient is locked")
		p.render(w, r, http.StatusLocked, "verify", v)
		return
	}

	f := form.NewVerifyForm(r)
	if err := f.Validate(v.NeedDOB, v.L.Lang, p.now()); err != nil {
		// A malformed entry is not a guess: say what to fix, count nothing.
		var fe *form.Error
		errors.As(err, &fe)
		v.Error = v.L.T(fe.Key)
		p.render(w, r, http.StatusBadRequest, "verify", v)
		return
	}

	if throttled, err := p.linkThrottled(ctx, pa.linkHash); err != nil {
		log.Err(err).Msg("Failed to check portal link throttle")
		p.renderError(w, r)
		return
	} else if throttled {
		log.Info().Msg("Refused portal code: too many wrong codes through this link just now")
		v.Error = v.L.T("verify.throttled")
		p.render(w, r, http.StatusTooManyRequests, "verify", v)
		return
	}
	result, err := p.checkCode(ctx, pa.patientID, pa.linkHash, f.Code)
	if err != nil {
		log.Err(err).Msg("Failed to check portal code")
		p.renderError(w, r)
		return
	}
	dobOK := true
	if result == codeOK && v.NeedDOB {
		if dobOK, err = p.backend.CheckDOB(ctx, pa.patientID, f.BirthDate); err != nil {
			log.Err(err).Msg("Failed to check date of birth")
			p.renderError(w, r)
			return
		}
	}
	var session string
	if result == codeOK && dobOK {
		session, err = p.completeVerification(ctx, pa, f.Code)
		if errors.Is(err, errLocked) {
			v.Locked, v.Error = true, v.L.T("verify.locked")
			p.render(w, r, http.StatusLocked, "verify", v)
			return
		} else if err != nil {
			log.Err(err).Msg("Failed to start portal session")
			p.renderError(w, r)
			return
		}
	} else if result == codeOK {
		// Right code, wrong date of birth: the code is spent, so guessing the date needs
		// a new code each time.
		if _, err = p.useCode(ctx, pa.patientID, pa.linkHash, f.Code); err != nil {
			log.Err(err).Msg("Failed to use portal code")
		}
	}
	if session == "" {
		p.codeFailed(w, r, pa, v, result)
		return
	}

	setCookie(w, sessionCookie, session, 0)
	clearCookie(w, linkCookie)
	p.backend.Audit(ctx, pa.patientID, "code_verified")
	log.Info().Msg("Portal code verified")
	http.Redirect(w, r, "/thread", http.StatusSeeOther)
}

func (p *Portal) codeFailed(w http.ResponseWriter, r *http.Request, pa *preauth, v *view, result int) {
	ctx := r.Context()
	log := zerolog.Ctx(ctx).With().Str("patient_id", pa.patientID).Logger()
	if result == codeNone {
		// No code is outstanding for this link: nothing was guessed, so nothing is counted
		// (otherwise anyone holding the link could lock the patient out without a code).
		log.Info().Msg("Portal code entered while none is outstanding")
		v.Error = v.L.T("verify.no_code")
		p.render(w, r, http.StatusUnauthorized, "verify", v)
		return
	}
	if err := p.recordLinkFailure(ctx, pa.linkHash); err != nil {
		log.Err(err).Msg("Failed to count portal link failure")
		p.renderError(w, r)
		return
	}
	failures, locked, err := p.recordFailure(ctx, pa.patientID)
	if err != nil {
		log.Err(err).Msg("Failed to count portal code failure")
		p.renderError(w, r)
		return
	}
	p.backend.Audit(ctx, pa.patientID, "code_failed")
	log.Info().Int("failures", failures).Bool("had_code", result != codeNone).Msg("Wrong portal code")
	if locked {
		p.backend.Audit(ctx, pa.patientID, "locked")
		log.Warn().Int("failures", failures).Msg("Portal locked after too many wrong codes")
		if err = p.backend.NotifyStaff(ctx, pa.patientID, lockNotice); err != nil {
			log.Err(err).Msg("Failed to tell staff the portal is locked")
		}
	}
	if failures >= p.cfg.MaxFailures {
		v.Locked, v.Error = true, v.L.T("verify.locked")
		p.render(w, r, http.StatusLocked, "verify", v)
		return
	}
	switch {
	case v.NeedDOB:
		v.Error = v.L.T("verify.wrong_dob")
	default:
		v.Error = v.L.T("verify.wrong")
	}
	p.render(w, r, http.StatusUnauthorized, "verify", v)
}
