package portal

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/careline/careline/portal/form"
)

// multipartOverhead is the room the upload form's other parts and boundaries may take.
const multipartOverhead = 64 << 10

// upload sends the patient's photo or PDF to the room. The type is judged from the content,
// never from the name or the declared type.
func (p *Portal) upload(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	log := zerolog.Ctx(ctx).With().Str("patient_id", s.patientID).Logger()
	// Taken before reading the body: each upload is held in memory.
	release, ok := p.uploads.acquire(string(s.hash))
	if !ok {
		log.Info().Msg("Portal upload refused: another upload is in progress")
		p.threadError(w, r, s, http.StatusTooManyRequests, "upload.busy", "")
		return
	}
	defer release()
	// The listener's whole-request timeout suits pages, not a 10 MB photo from a slow phone.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(p.cfg.UploadTimeout))
	_ = rc.SetWriteDeadline(time.Now().Add(p.cfg.UploadTimeout + time.Minute))
	r.Body = http.MaxBytesReader(w, r.Body, p.cfg.MaxUploadBytes+multipartOverhead)
	f, err := form.ReadUpload(r, p.cfg.MaxUploadBytes)
	if errors.Is(err, form.ErrUploadTooBig) {
		// The CSRF token may not have been read yet: change nothing, just explain.
		log.Info().Msg("Portal upload too large")
		p.threadError(w, r, s, http.StatusRequestEntityTooLarge, "upload.too_large", "")
		return
	} else if err != nil {
		log.Info().Err(err).Msg("Bad portal upload form")
		p.renderForbidden(w, r)
		return
	}
	if !validCSRF(s.csrf, f.CSRF) {
		log.Warn().Str("path", r.URL.Path).Msg("Portal refused a request without a valid CSRF token")
		p.renderForbidden(w, r)
		return
	}
	if err = f.Validate(); err != nil {
		var fe *form.Error
		errors.As(err, &fe)
		log.Info().Str("reason", fe.Key).Msg("Portal upload refused")
		p.threadError(w, r, s, http.StatusUnsupportedMediaType, fe.Key, "")
		return
	}
	if err = p.backend.Upload(ctx, s.patientID, f.FileName, f.ContentType, f.Data); err != nil {
		log.Err(err).Msg("Failed to send portal upload")
		p.threadError(w, r, s, http.StatusBadGateway, "upload.failed", "")
		return
	}
	p.backend.Audit(ctx, s.patientID, "upload")
	log.Info().Str("content_type", f.ContentType).Int("size", len(f.Data)).Msg("Portal upload sent")
	http.Redirect(w, r, "/thread?sent=upload", http.StatusSeeOther)
}

// uploadSlots bound the uploads read at once: one per session, MaxUploads in all.
type uploadSlots struct {
	global   chan struct{}
	mu       sync.Mutex
	sessions map[string]bool
}

// acquire takes a slot for the session without waiting; ok is false when the session already
// uploads or all slots are taken.
func (u *uploadSlots) acquire(session string) (release func(), ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sessions[session] {
		return nil, false
	}
	select {
	case u.global <- struct{}{}:
	default:
		return nil, false
	}
	u.sessions[session] = true
	return func() {
		u.mu.Lock()
		delete(u.sessions, session)
		u.mu.Unlock()
		<-u.global
	}, true
}
