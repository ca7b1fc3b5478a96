package portal

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/careline/careline/portal/locale"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/portal.css
var portalCSS []byte

var pageNames = []string{"verify", "thread", "simple"}

// view is the data every template gets.
type view struct {
	L       *locale.Printer
	Title   string
	Clinic  string
	Masked  string
	CSRF    string
	Error   string // a translated message the patient can act on
	Notice  string // a translated confirmation
	NeedDOB bool
	Locked  bool

	// thread
	Messages    []viewMessage
	Body        string // the reply being written, kept when it could not be sent
	Earlier     string // URL of the earlier page, if any
	Later       string // URL of the later page, if any
	UploadHint  string
	Appointment *viewAppointment // awaiting the patient's answer (appointment_answer.go)

	// simple pages
	Heading string
	Text    string
}

// viewMessage is a Message prepared for the template: words translated, placeholders
// decided, no embedded structs (template field lookups through them are slow).
type viewMessage struct {
	Class       string // "mine" or "staff"
	Who         string
	Time        string
	ISOTime     string
	Placeholder string // withdrawn or expired: shown instead of body and files
	Body        string
	Truncated   bool
	Files       []viewAttachment
	State       string // the patient's own message: on its way, or not delivered
	Failed      bool
}

type viewAttachment struct {
	URL, FileName, Size string
}

func (p *Portal) loadTemplates() error {
	p.pages = make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return err
		}
		p.pages[name] = t
	}
	p.staticCSS = portalCSS
	return nil
}

func (p *Portal) newView(r *http.Request, titleKey string) *view {
	l := locale.Get(locale.Negotiate(r.Header.Get("Accept-Language")))
	return &view{L: l, Title: l.T(titleKey)}
}

// render executes a page into a buffer first, so a template error becomes a clean 500.
func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	var buf bytes.Buffer
	if err := p.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		zerolog.Ctx(r.Context()).Err(err).Str("page", page).Msg("Failed to render portal page")
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", v.L.Lang)
	h.Add("Vary", "Accept-Language, Cookie")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderSimple shows a page with a heading and one paragraph: key+".title", key+".body".
func (p *Portal) renderSimple(w http.ResponseWriter, r *http.Request, status int, key string) {
	v := p.newView(r, key+".title")
	v.Heading = v.Title
	v.Text = v.L.T(key + ".body")
	p.render(w, r, status, "simple", v)
}

func (p *Portal) renderForbidden(w http.ResponseWriter, r *http.Request) {
	p.renderSimple(w, r, http.StatusForbidden, "forbidden")
}

func (p *Portal) renderError(w http.ResponseWriter, r *http.Request) {
	p.renderSimple(w, r, http.StatusInternalServerError, "error")
}

func (p *Portal) formatTime(l *locale.Printer, t time.Time) (human, iso string) {
	t = t.In(p.cfg.Location)
	return l.Time(t), t.Format(time.RFC3339)
}
