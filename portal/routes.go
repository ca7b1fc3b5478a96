package portal

import (
	"net/http"
)

// Handler returns all portal routes. Mount it at the root of the public listener (next to
// /twilio/*), e.g. mux.Handle("/", p.Handler()); it answers unknown paths with its own 404.
//
//	GET  /l/{token}         open a secure link (redirects to /verify or /thread)
//	GET  /verify            code page
//	POST /code/send         text a one-time code
//	POST /code/verify       check the code, start a session
//	GET  /thread            the conversation
//	POST /reply             send a message
//	POST /upload            send a photo or PDF
//	POST /appointment/answer confirm or cancel an appointment a reminder asked about
//	GET  /attachment/{id}   download an attachment
//	POST /signout           end the session
//	GET  /static/portal.css the stylesheet
func (p *Portal) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /l/{token}", p.openLink) // GET matches HEAD too: previews are answered there
	mux.HandleFunc("GET /verify", p.withPreauth(p.showVerify))
	mux.HandleFunc("POST /code/send", p.withPreauth(p.sendCode))
	mux.HandleFunc("POST /code/verify", p.withPreauth(p.verifyCode))
	mux.HandleFunc("GET /thread", p.withSession(false, p.showThread))
	mux.HandleFunc("POST /reply", p.withSession(true, p.sendReply))
	mux.HandleFunc("POST /upload", p.withSession(false, p.upload))
	mux.HandleFunc("POST /appointment/answer", p.withSession(true, p.answerAppointment))
	mux.HandleFunc("GET /attachment/{id}", p.withSession(false, p.showAttachment))
	mux.HandleFunc("POST /signout", p.signOut)
	mux.HandleFunc("GET /static/portal.css", p.serveCSS)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		p.renderSimple(w, r, http.StatusOK, "home")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p.renderSimple(w, r, http.StatusNotFound, "notfound")
	})
	return securityHeaders(mux)
}

func (p *Portal) serveCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(p.staticCSS)
}
