package portal

import (
	"net/http"

	"github.com/rs/zerolog"
)

// showVerify is the code page: clinic, masked number, "Text me a code", the code field and,
// when required, the date of birth.
func (p *Portal) showVerify(w http.ResponseWriter, r *http.Request, pa *preauth) {
	v, ok := p.verifyView(w, r, pa)
	if !ok {
		return
	}
	if r.URL.Query().Get("sent") == "1" && !v.Locked {
		v.Notice = v.L.T("verify.sent", v.Masked, int(p.cfg.CodeLifetime.Minutes()))
	}
	p.render(w, r, http.StatusOK, "verify", v)
}

// verifyView builds the code page for pa; on false it has already answered.
func (p *Portal) verifyView(w http.ResponseWriter, r *http.Request, pa *preauth) (*view, bool) {
	ctx := r.Context()
	log := zerolog.Ctx(ctx)
	patient, err := p.backend.Patient(ctx, pa.patientID)
	if err != nil {
		log.Err(err).Str("patient_id", pa.patientID).Msg("Failed to load patient for portal")
		p.renderError(w, r)
		return nil, false
	} else if patient == nil {
		p.renderSimple(w, r, http.StatusNotFound, "link.invalid")
		return nil, false
	}
	locked, err := p.Locked(ctx, pa.patientID)
	if err != nil {
		log.Err(err).Str("patient_id", pa.patientID).Msg("Failed to check portal lock")
		p.renderError(w, r)
		return nil, false
	}
	v := p.newView(r, "verify.title")
	v.Clinic = patient.ClinicName
	v.Masked = patient.MaskedPhone
	v.CSRF = pa.csrf
	v.NeedDOB = p.cfg.RequireDOB && patient.HasDOB
	v.Locked = locked
	if locked {
		v.Error = v.L.T("verify.locked")
	}
	return v, true
}
