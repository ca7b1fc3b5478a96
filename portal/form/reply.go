package form

import (
	"net/http"
	"strings"
	"unicode/utf8"
)

// MaxReplyChars is the longest reply a patient can send, in characters.
const MaxReplyChars = 1600

// ReplyForm is the thread page's message form (POST /reply).
type ReplyForm struct {
	Body string
}

// NewReplyForm reads the form from r (already size-limited by the caller).
func NewReplyForm(r *http.Request) *ReplyForm {
	return &ReplyForm{Body: r.PostFormValue("body")}
}

// Validate normalizes line ends, trims surrounding space and checks the body is valid
// UTF-8 without control characters (other than newline and tab), non-empty and at most
// MaxReplyChars characters.
func (f *ReplyForm) Validate() error {
	if !utf8.ValidString(f.Body) {
		return ErrReplyInvalid
	}
	body := strings.ReplaceAll(f.Body, "\r\n", "\n")
	body = strings.ReplaceAll(body, "\r", "\n")
	body = strings.TrimSpace(body)
	for _, r := range body {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ErrReplyInvalid
		}
	}
	if body == "" {
		return ErrReplyEmpty
	}
	if utf8.RuneCountInString(body) > MaxReplyChars {
		return ErrReplyTooLong
	}
	f.Body = body
	return nil
}
