package portal

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"time"

	"github.com/rs/zerolog"

	"github.com/careline/careline/portal/form"
	"github.com/careline/careline/token"
)

const (
	// sessionCookie holds the session token of a verified browser.
	sessionCookie = "__Host-careline_session"
	// linkCookie holds the pre-auth token of a browser that opened a link.
	linkCookie = "__Host-careline_link"

	contentSecurityPolicy = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

	maxFormBytes = 64 << 10
)

// securityHeaders sets the headers every response carries, errors and 404s included.
// Handlers that serve non-patient data (the stylesheet) may relax Cache-Control.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
		next.ServeHTTP(w, r)
	})
}

// setCookie sets a __Host- cookie: Secure, HttpOnly, SameSite=Strict, Path=/, no Domain.
// Secure is set even on plain HTTP: the portal runs behind a TLS-terminating proxy.
func setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	}
	if maxAge > 0 {
		c.MaxAge = int(maxAge.Seconds())
	}
	http.SetCookie(w, c)
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    "",
		Path:     "/",
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		MaxAge:   -1,
		Expires:  time.Unix(1, 0),
	})
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// csrfToken derives the anti-CSRF token of a pre-auth or session from its raw cookie value:
// HMAC-SHA256 keyed by the secret the browser holds in an HttpOnly cookie. A page from
// another site can neither read the cookie nor compute the token, and nothing more needs
// storing.
func csrfToken(secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("careline portal csrf v1"))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func validCSRF(want, got string) bool {
	return got != "" && token.Equal([]byte(want), []byte(got))
}

// sameOrigin refuses requests a browser marks as cross-site, and requests whose Origin is
// not the public URL's: defense in depth next to the CSRF token and SameSite=Strict.
func (p *Portal) sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	switch site {
	case "", "same-origin", "none":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if origin == "null" {
		// Chromium sends "Origin: null" for form posts from pages with Referrer-Policy:
		// no-referrer; then only the browser's own Sec-Fetch-Site can vouch for the request.
		return site == "same-origin"
	}
	pub, _ := url.Parse(p.cfg.PublicURL)
	return origin == pub.Scheme+"://"+pub.Host
}

type sessionHandler func(w http.ResponseWriter, r *http.Request, s *session)
type preauthHandler func(w http.ResponseWriter, r *http.Request, pa *preauth)

// withSession loads the verified session (enforcing its timeouts) and, for a POST with a
// form body, checks origin and CSRF token before calling h. Upload checks its CSRF token
// itself once the multipart body is read (checkCSRF false).
func (p *Portal) withSession(checkCSRF bool, h sessionHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		log := zerolog.Ctx(r.Context())
		if r.Method == http.MethodPost && !p.sameOrigin(r) {
			log.Warn().Str("path", r.URL.Path).Msg("Portal refused a cross-origin request")
			p.renderForbidden(w, r)
			return
		}
		s, err := p.session(r)
		if err != nil {
			log.Err(err).Msg("Failed to load portal session")
			p.renderError(w, r)
			return
		} else if s == nil {
			clearCookie(w, sessionCookie)
			p.renderSimple(w, r, http.StatusUnauthorized, "session.ended")
			return
		}
		if checkCSRF {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if !validCSRF(s.csrf, r.PostFormValue(form.CSRFField)) {
				log.Warn().Str("patient_id", s.patientID).Str("path", r.URL.Path).
					Msg("Portal refused a request without a valid CSRF token")
				p.renderForbidden(w, r)
				return
			}
		}
		h(w, r, s)
	}
}

// session returns the browser's valid session, or nil.
func (p *Portal) session(r *http.Request) (*session, error) {
	raw := cookieValue(r, sessionCookie)
	if raw == "" {
		return nil, nil
	}
	return p.findSession(r.Context(), raw)
}

// withPreauth loads the pre-auth bound to the link the browser opened and, for a POST,
// checks origin and CSRF token before calling h.
func (p *Portal) withPreauth(h preauthHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		log := zerolog.Ctx(r.Context())
		if r.Method == http.MethodPost && !p.sameOrigin(r) {
			log.Warn().Str("path", r.URL.Path).Msg("Portal refused a cross-origin request")
			p.renderForbidden(w, r)
			return
		}
		var pa *preauth
		if raw := cookieValue(r, linkCookie); raw != "" {
			var err error
			if pa, err = p.findPreauth(r.Context(), raw); err != nil {
				log.Err(err).Msg("Failed to load portal pre-auth")
				p.renderError(w, r)
				return
			}
		}
		if pa == nil {
			if r.Method == http.MethodGet {
				// Already verified in this browser: nothing to do here.
				if s, err := p.session(r); err == nil && s != nil {
					http.Redirect(w, r, "/thread", http.StatusSeeOther)
					return
				}
			}
			clearCookie(w, linkCookie)
			p.renderSimple(w, r, http.StatusUnauthorized, "session.ended")
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if !validCSRF(pa.csrf, r.PostFormValue(form.CSRFField)) {
				log.Warn().Str("patient_id", pa.patientID).Str("path", r.URL.Path).
					Msg("Portal refused a request without a valid CSRF token")
				p.renderForbidden(w, r)
				return
			}
		}
		h(w, r, pa)
	}
}
