package twiliofake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// apiError is Twilio's JSON error body; twilio-go decodes it into
// client.TwilioRestError.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, apiError{
		Code:     code,
		Message:  msg,
		MoreInfo: "https://www.twilio.com/docs/errors/" + strconv.Itoa(code),
		Status:   status,
	})
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, 20404,
		fmt.Sprintf("The requested resource %s was not found", r.URL.Path))
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusMethodNotAllowed, 20004, "Method not allowed: "+r.Method)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// newSid returns prefix + 32 lowercase hex digits, the shape of every Twilio
// resource SID.
func newSid(prefix string) string { return prefix + randomHex(16) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}

// formatTime renders Twilio's RFC 2822 dates, always in GMT as "+0000".
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC1123Z) }

// optionalTime renders a date or JSON null for the zero time.
func optionalTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := formatTime(t)
	return &s
}

func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// page is the paging envelope every Twilio list response carries.
type page struct {
	End             int     `json:"end"`
	FirstPageURI    string  `json:"first_page_uri"`
	NextPageURI     *string `json:"next_page_uri"`
	Page            int     `json:"page"`
	PageSize        int     `json:"page_size"`
	PreviousPageURI *string `json:"previous_page_uri"`
	Start           int     `json:"start"`
	URI             string  `json:"uri"`
}

// paginate slices n items per the PageSize/Page query parameters and builds
// the envelope. Twilio's real next_page_uri carries an opaque PageToken; the
// fake only needs Page, which twilio-go passes back verbatim.
func paginate(r *http.Request, base string, n int) (p page, lo, hi int, errMsg string) {
	q := r.URL.Query()
	size := 50
	if v := q.Get("PageSize"); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i < 1 || i > 1000 {
			return p, 0, 0, "PageSize must be between 1 and 1000"
		}
		size = i
	}
	num := 0
	if v := q.Get("Page"); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 {
			return p, 0, 0, "Page must be a non-negative integer"
		}
		num = i
	}
	lo = min(num*size, n)
	hi = min(lo+size, n)
	uriFor := func(pg int) string {
		q2 := r.URL.Query()
		q2.Del("PageToken")
		q2.Set("PageSize", strconv.Itoa(size))
		q2.Set("Page", strconv.Itoa(pg))
		return base + "?" + q2.Encode()
	}
	p = page{
		Start:        lo,
		End:          max(hi-1, lo),
		FirstPageURI: uriFor(0),
		Page:         num,
		PageSize:     size,
		URI:          uriFor(num),
	}
	if hi < n {
		next := uriFor(num + 1)
		p.NextPageURI = &next
	}
	if num > 0 {
		prev := uriFor(num - 1)
		p.PreviousPageURI = &prev
	}
	return p, lo, hi, ""
}
