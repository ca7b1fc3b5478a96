package portal

import (
	"html/template"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/careline/careline/portal/form"
)

const (
	// threadBudget bounds the escaped size of the messages on one thread page, so that with
	// the layout and forms every page stays under 30 KB; older messages go to earlier pages.
	threadBudget = 20000
	// maxBodyBytes bounds one message's escaped body; longer bodies are cut with a note.
	maxBodyBytes = 16000
	// messageOverhead approximates one message's markup without its body.
	messageOverhead = 300
)

// showThread is the conversation, newest page first, with the reply and upload forms.
// Staff messages shown are marked read (read receipts from the patient's ghost).
func (p *Portal) showThread(w http.ResponseWriter, r *http.Request, s *session) {
	v, ok := p.threadView(w, r, s)
	if !ok {
		return
	}
	switch r.URL.Query().Get("sent") {
	case "reply":
		v.Notice = v.L.T("reply.sent")
	case "upload":
		v.Notice = v.L.T("upload.sent")
	}
	if notice := appointmentNotice(v.L, r.URL.Query().Get("appointment")); notice != "" {
		v.Notice = notice
	}
	p.backend.Audit(r.Context(), s.patientID, "portal_view")
	p.render(w, r, http.StatusOK, "thread", v)
}

// threadView builds the thread page for s; on false it has already answered.
func (p *Portal) threadView(w http.ResponseWriter, r *http.Request, s *session) (*view, bool) {
	ctx := r.Context()
	log := zerolog.Ctx(ctx).With().Str("patient_id", s.patientID).Logger()
	patient, err := p.backend.Patient(ctx, s.patientID)
	if err != nil {
		log.Err(err).Msg("Failed to load patient for portal thread")
		p.renderError(w, r)
		return nil, false
	} else if patient == nil {
		_ = p.deleteSession(ctx, s.hash)
		clearCookie(w, sessionCookie)
		p.renderSimple(w, r, http.StatusUnauthorized, "session.ended")
		return nil, false
	}
	msgs, err := p.backend.Thread(ctx, s.patientID)
	if err != nil {
		log.Err(err).Msg("Failed to load portal thread")
		p.renderError(w, r)
		return nil, false
	}

	v := p.newView(r, "thread.title")
	v.Clinic = patient.ClinicName
	v.CSRF = s.csrf
	v.UploadHint = v.L.T("upload.hint", v.L.Size(p.cfg.MaxUploadBytes))
	v.Appointment = p.appointmentCard(ctx, s.patientID, v.L)

	start, end := pageOf(msgs, r.URL.Query().Get("before"))
	if start > 0 {
		v.Earlier = "/thread?before=" + url.QueryEscape(msgs[start].ID)
	}
	if end < len(msgs) {
		v.Later = "/thread"
	}
	var toMark []string
	for _, m := range msgs[start:end] {
		vm := viewMessage{Class: "staff", Who: m.SenderName}
		switch {
		case m.FromPatient:
			vm.Class, vm.Who = "mine", v.L.T("thread.you")
		case vm.Who == "":
			vm.Who = v.L.T("thread.staff")
		}
		vm.Time, vm.ISOTime = p.formatTime(v.L, m.SentAt)
		switch {
		case m.Withdrawn:
			vm.Placeholder = v.L.T("thread.withdrawn")
		case m.Expired:
			vm.Placeholder = v.L.T("thread.expired")
		default:
			vm.Body, vm.Truncated = cutBody(m.Body)
			for _, a := range m.Attachments {
				vm.Files = append(vm.Files, viewAttachment{
					URL:      "/attachment/" + url.PathEscape(a.ID),
					FileName: form.CleanFileName(a.FileName, a.ContentType),
					Size:     v.L.Size(a.Size),
				})
			}
			if !m.FromPatient && !m.Read {
				toMark = append(toMark, m.ID)
			}
		}
		if m.FromPatient {
			switch m.State {
			case StateSending:
				vm.State = v.L.T("thread.state.sending")
			case StateFailed:
				vm.State, vm.Failed = v.L.T("thread.state.failed"), true
			}
		}
		v.Messages = append(v.Messages, vm)
	}
	p.markRead(r, s.patientID, toMark)
	return v, true
}

// markRead sends read receipts for the staff messages the patient has not seen before; the
// backend records them read (its message record is the one read state).
// A failure is logged, not shown: the patient did see the messages.
func (p *Portal) markRead(r *http.Request, patientID string, unread []string) {
	if len(unread) == 0 {
		return
	}
	if err := p.backend.MarkRead(r.Context(), patientID, unread); err != nil {
		zerolog.Ctx(r.Context()).Err(err).Str("patient_id", patientID).Msg("Failed to mark portal messages read")
	}
}

// pageOf picks the messages for one page: the newest that fit threadBudget, ending just
// before the message with id before (or at the end). At least one message is shown.
func pageOf(msgs []Message, before string) (start, end int) {
	end = len(msgs)
	if before != "" {
		for i, m := range msgs {
			if m.ID == before {
				end = i
				break
			}
		}
	}
	used := 0
	for start = end; start > 0; start-- {
		cost := messageCost(msgs[start-1])
		if used+cost > threadBudget && start < end {
			break
		}
		used += cost
	}
	return start, end
}

func messageCost(m Message) int {
	cost := messageOverhead + len(template.HTMLEscapeString(m.SenderName))
	if m.Withdrawn || m.Expired {
		return cost
	}
	cost += min(len(template.HTMLEscapeString(m.Body)), maxBodyBytes)
	for _, a := range m.Attachments {
		cost += 150 + 2*len(template.HTMLEscapeString(a.FileName)) + len(a.ID)
	}
	return cost
}

// cutBody shortens body so that its escaped form fits maxBodyBytes.
func cutBody(body string) (string, bool) {
	if len(body) <= maxBodyBytes/6 || len(template.HTMLEscapeString(body)) <= maxBodyBytes {
		return body, false
	}
	size := 0
	for i, r := range body {
		n := len(template.HTMLEscapeString(string(r)))
		if r == utf8.RuneError {
			n = 3
		}
		if size+n > maxBodyBytes {
			return body[:i], true
		}
		size += n
	}
	return body, false
}
