package twiliofake

import (
	"context"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The watch page is the local demo's "SMS sink": what careline sent, newest
// first, and a form to text careline as a patient. No JavaScript; it simply
// reloads every few seconds.
var watchTmpl = template.Must(template.New("watch").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="3">
<title>careline SMS sink (fake Twilio)</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:70rem}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
td.body{white-space:pre-wrap;word-break:break-word}.note{padding:.5rem;background:#eef}.err{background:#fee}
label{display:block;margin-top:.5rem}
</style></head><body>
<h1>SMS sink</h1>
<p>Fake Twilio account {{.Account}}. This page reloads every 3 seconds.</p>
{{with .Note}}<p class="note{{if $.IsErr}} err{{end}}" role="status">{{.}}</p>{{end}}
<h2>Messages</h2>
{{if .Messages}}<table>
<thead><tr><th>Time (UTC)</th><th>Direction</th><th>From</th><th>To</th><th>Body</th><th>Status</th></tr></thead>
<tbody>{{range .Messages}}<tr>
<td>{{.Time}}</td><td>{{.Direction}}</td><td>{{.From}}</td><td>{{.To}}</td>
<td class="body">{{.Body}}{{range .Media}}<br>[media: {{.}}]{{end}}</td>
<td>{{.Status}}{{with .ErrorCode}} ({{.}}){{end}}</td>
</tr>{{end}}</tbody></table>
{{else}}<p>No messages yet.</p>{{end}}
<h2>Send SMS as patient</h2>
<form method="post" action="/ui/send">
<label for="from">From (patient's number, E.164)</label>
<input id="from" name="From" type="tel" required value="{{.DefaultFrom}}">
<label for="to">To (clinic number)</label>
<select id="to" name="To">{{range .Numbers}}<option value="{{.}}">{{.}}</option>{{end}}</select>
<label for="body">Body</label>
<textarea id="body" name="Body" rows="3" cols="60" maxlength="1600"></textarea>
<p><button type="submit">Send SMS</button></p>
</form>
</body></html>
`))

type watchRow struct {
	Time, Direction, From, To, Body, Status string
	ErrorCode                               int
	Media                                   []string
}

// watchNotes are fixed texts selected by a query code, so the page never
// reflects attacker-chosen text.
var watchNotes = map[string]string{
	"sent":    "Message delivered to careline's webhook.",
	"nourl":   "That number has no SMS webhook configured yet (log in to careline first).",
	"badfrom": "From must be an E.164 number such as +15551234567.",
	"empty":   "Write a message first.",
	"failed":  "careline's webhook could not be reached.",
	"status":  "careline's webhook answered with an error status.",
}

func (s *Server) serveWatch(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rows := make([]watchRow, 0, len(s.messages))
	for i := len(s.messages) - 1; i >= 0; i-- {
		m := s.messages[i]
		row := watchRow{
			Time: m.created.Format("2006-01-02 15:04:05"), Direction: m.direction,
			From: m.from, To: m.to, Body: m.body, Status: m.status, ErrorCode: m.errorCode,
		}
		row.Media = append(row.Media, m.mediaURLs...)
		for _, me := range m.mediaSids {
			if it, ok := s.media[me]; ok {
				row.Media = append(row.Media, it.contentType+", "+strconv.Itoa(len(it.data))+" bytes")
			}
		}
		rows = append(rows, row)
	}
	numbers := make([]string, 0, len(s.numbers))
	for _, n := range s.numbers {
		numbers = append(numbers, n.phone)
	}
	s.mu.Unlock()

	code := r.URL.Query().Get("note")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	_ = watchTmpl.Execute(w, map[string]any{
		"Account":     s.opts.AccountSID,
		"Messages":    rows,
		"Numbers":     numbers,
		"DefaultFrom": "+14155550123",
		"Note":        watchNotes[code],
		"IsErr":       code != "" && code != "sent",
	})
}

// serveUISend texts careline as a patient: it looks up the webhook careline
// configured for the chosen number and calls it like Twilio would.
func (s *Server) serveUISend(w http.ResponseWriter, r *http.Request) {
	// A page on another origin must not be able to make the fake text
	// careline; browsers send Origin on form posts.
	if o := r.Header.Get("Origin"); o != "" && o != s.URL {
		http.Error(w, "cross-origin form post refused", http.StatusForbidden)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	from := strings.TrimSpace(r.PostForm.Get("From"))
	to := strings.TrimSpace(r.PostForm.Get("To"))
	body := r.PostForm.Get("Body")
	back := func(note string) { http.Redirect(w, r, "/?note="+note, http.StatusSeeOther) }
	if !e164Re.MatchString(from) {
		back("badfrom")
		return
	}
	if strings.TrimSpace(body) == "" {
		back("empty")
		return
	}
	s.mu.Lock()
	n := s.lookupNumberLocked(to)
	var hook, method string
	if n != nil {
		hook, method = n.smsURL, n.smsMethod
	}
	s.mu.Unlock()
	if hook == "" {
		back("nourl")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	status, _, err := s.sendInbound(ctx, method, hook, Inbound{From: from, To: to, Body: body})
	switch {
	case err != nil:
		back("failed")
	case status < 200 || status >= 300:
		back("status")
	default:
		back("sent")
	}
}
