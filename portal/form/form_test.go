package form

import (
	"bytes"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var now = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func postForm(vals url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(vals.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func TestVerifyCode(t *testing.T) {
	good := map[string]string{"123456": "123456", " 123 456 ": "123456", "123-456": "123456", "000000": "000000"}
	for in, want := range good {
		f := NewVerifyForm(postForm(url.Values{"code": {in}}))
		if err := f.Validate(false, "en", now); err != nil || f.Code != want {
			t.Errorf("code %q: %q, %v; want %q", in, f.Code, err, want)
		}
	}
	for _, in := range []string{"", "12345", "1234567", "12345a", "١٢٣٤٥٦", "123456\x00", "+123456", strings.Repeat(" ", 100) + "123456"} {
		f := NewVerifyForm(postForm(url.Values{"code": {in}}))
		if err := f.Validate(false, "en", now); err != ErrCodeInvalid {
			t.Errorf("code %q accepted (%v)", in, err)
		}
	}
}

func TestVerifyDOB(t *testing.T) {
	want := time.Date(1984, 3, 27, 0, 0, 0, 0, time.UTC)
	cases := []struct{ in, lang string }{{"1984-03-27", "en"}, {"03/27/1984", "en"}, {"3/27/1984", "en"}, {"27/03/1984", "es"}, {"1984-03-27", "es"}}
	for _, c := range cases {
		f := NewVerifyForm(postForm(url.Values{"code": {"123456"}, "dob": {c.in}}))
		if err := f.Validate(true, c.lang, now); err != nil || !f.BirthDate.Equal(want) {
			t.Errorf("dob %q (%s): %v, %v", c.in, c.lang, f.BirthDate, err)
		}
	}
	for _, c := range []struct{ in, lang string }{{"", "en"}, {"27/03/1984", "en"}, {"1850-01-01", "en"}, {"2030-01-01", "en"}, {"1984-02-30", "en"}, {"yesterday", "es"}} {
		f := NewVerifyForm(postForm(url.Values{"code": {"123456"}, "dob": {c.in}}))
		if err := f.Validate(true, c.lang, now); err != ErrDOBInvalid {
			t.Errorf("dob %q (%s) accepted: %v", c.in, c.lang, err)
		}
	}
	// Not needed: not checked.
	f := NewVerifyForm(postForm(url.Values{"code": {"123456"}, "dob": {"junk"}}))
	if err := f.Validate(false, "en", now); err != nil {
		t.Error(err)
	}
}

func TestReply(t *testing.T) {
	cases := []struct {
		in, want string
		err      error
	}{
		{"hello", "hello", nil},
		{"  a\r\nb\rc  ", "a\nb\nc", nil},
		{"tab\there", "tab\there", nil},
		{"", "", ErrReplyEmpty},
		{" \n\t ", "", ErrReplyEmpty},
		{strings.Repeat("ñ", 1600), strings.Repeat("ñ", 1600), nil},
		{strings.Repeat("ñ", 1601), "", ErrReplyTooLong},
		{"bad \xff utf8", "", ErrReplyInvalid},
		{"nul\x00", "", ErrReplyInvalid},
		{"esc\x1b[31m", "", ErrReplyInvalid},
		{"c1\u0085x", "", ErrReplyInvalid},
	}
	for _, c := range cases {
		f := NewReplyForm(postForm(url.Values{"body": {c.in}}))
		err := f.Validate()
		if err != c.err || (err == nil && f.Body != c.want) {
			t.Errorf("reply %q: %q, %v; want %q, %v", c.in, f.Body, err, c.want, c.err)
		}
	}
}

func TestSniff(t *testing.T) {
	cases := map[string]string{
		"\xff\xd8\xff\xe0\x00\x10JFIF": "image/jpeg",
		"\x89PNG\r\n\x1a\n\x00":        "image/png",
		"%PDF-1.7":                     "application/pdf",
		"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic": "image/heic",
		"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic": "image/heic",
		"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00mif1avif": "",
		"\x00\x00\x00\x18ftypheic":                         "", // box larger than the data
		"\x00\x00\x00\x20ftypisom\x00\x00\x00\x00isomiso2": "",
		"GIF89a":                         "",
		"<svg xmlns=":                    "",
		"<html>":                         "",
		" %PDF-1.7":                      "",
		"":                               "",
		"\xff\xd8":                       "",
		"PK\x03\x04 a zip pretending...": "",
	}
	for in, want := range cases {
		if got := Sniff([]byte(in)); got != want {
			t.Errorf("Sniff(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCleanFileName(t *testing.T) {
	cases := map[string]string{
		"scan.PDF":               "scan.PDF",
		`C:\Users\me\scan.pdf`:   "scan.pdf",
		"../../etc/passwd":       "passwd.pdf",
		"a\x00b\nc\u202ed.pdf":   "abcd.pdf",
		`say "hi".pdf`:           "say hi.pdf",
		"":                       "upload.pdf",
		"...":                    "upload.pdf",
		strings.Repeat("x", 300): strings.Repeat("x", 96) + ".pdf",
		"bad\xffname.pdf":        "badname.pdf",
		// The extension must match the type the bytes have: a PDF named .bat or .jpg
		// stays a PDF on the staff member's computer.
		"lab-results.bat": "lab-results.bat.pdf",
		"photo.jpg":       "photo.jpg.pdf",
		"results.pdf.exe": "results.pdf.exe.pdf",
	}
	for in, want := range cases {
		if got := CleanFileName(in, "application/pdf"); got != want {
			t.Errorf("CleanFileName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"IMG_1.JPEG": "IMG_1.JPEG", "a.jpg": "a.jpg", "a.png": "a.png.jpg", "": "upload.jpg"} {
		if got := CleanFileName(in, "image/jpeg"); got != want {
			t.Errorf("CleanFileName(%q, image/jpeg) = %q, want %q", in, got, want)
		}
	}
	// A type careline does not serve as itself keeps its name.
	if got := CleanFileName("notes.txt", "application/octet-stream"); got != "notes.txt" {
		t.Errorf("CleanFileName(notes.txt, octet-stream) = %q", got)
	}
}

func multipartRequest(t testing.TB, fields map[string]string, fileName string, data []byte) *http.Request {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	if data != nil || fileName != "" {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, fileName))
		w, _ := mw.CreatePart(h)
		_, _ = w.Write(data)
	}
	_ = mw.Close()
	r := httptest.NewRequest(http.MethodPost, "/upload", &buf)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	return r
}

func TestReadUpload(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\nrest")
	f, err := ReadUpload(multipartRequest(t, map[string]string{"csrf": "tok"}, "a.png", png), 100)
	if err != nil || f.CSRF != "tok" || f.FileName != "a.png" || !bytes.Equal(f.Data, png) {
		t.Fatalf("%+v, %v", f, err)
	}
	if err = f.Validate(); err != nil || f.ContentType != "image/png" {
		t.Fatalf("%v %q", err, f.ContentType)
	}
	if _, err = ReadUpload(multipartRequest(t, nil, "a.png", make([]byte, 101)), 100); err != ErrUploadTooBig {
		t.Fatalf("oversized file: %v", err)
	}
	if _, err = ReadUpload(multipartRequest(t, nil, "a.png", make([]byte, 100)), 100); err != nil {
		t.Fatalf("file at the limit: %v", err)
	}
	if _, err = ReadUpload(multipartRequest(t, map[string]string{"csrf": strings.Repeat("x", 2000)}, "", nil), 100); err != ErrBadRequest {
		t.Fatalf("oversized field: %v", err)
	}
	if _, err = ReadUpload(postForm(url.Values{"csrf": {"x"}}), 100); err != ErrBadRequest {
		t.Fatalf("not multipart: %v", err)
	}
	// A request body cut by http.MaxBytesReader reads as too big.
	r := multipartRequest(t, nil, "a.png", make([]byte, 5000))
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1000)
	if _, err = ReadUpload(r, 100000); err != ErrUploadTooBig {
		t.Fatalf("cut body: %v", err)
	}
	f, err = ReadUpload(multipartRequest(t, map[string]string{"csrf": "tok"}, "", nil), 100)
	if err != nil || f.Validate() != ErrUploadMissing {
		t.Fatalf("no file: %v", err)
	}
}

func FuzzReplyForm(f *testing.F) {
	for _, s := range []string{"hello", "", " \r\n ", strings.Repeat("ñ", 1601), "a\x00b", "\xff", "line\r\nline"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		rf := NewReplyForm(postForm(url.Values{"body": {body}}))
		err := rf.Validate()
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a form error", err)
			}
			return
		}
		n := utf8.RuneCountInString(rf.Body)
		if n == 0 || n > MaxReplyChars || !utf8.ValidString(rf.Body) {
			t.Fatalf("accepted %q (%d chars)", rf.Body, n)
		}
		if strings.ContainsAny(rf.Body, "\r\x00") || strings.TrimSpace(rf.Body) != rf.Body {
			t.Fatalf("accepted body not normalized: %q", rf.Body)
		}
		again := &ReplyForm{Body: rf.Body}
		if again.Validate() != nil || again.Body != rf.Body {
			t.Fatalf("validation not idempotent for %q", rf.Body)
		}
	})
}

func FuzzVerifyForm(f *testing.F) {
	f.Add("123456", "1984-03-27", "en")
	f.Add(" 12-34 56", "27/03/1984", "es")
	f.Add("abc", "", "en")
	f.Add("１２３４５６", "9999-99-99", "es")
	f.Fuzz(func(t *testing.T, code, dob, lang string) {
		vf := NewVerifyForm(postForm(url.Values{"code": {code}, "dob": {dob}}))
		err := vf.Validate(true, lang, now)
		if err != nil {
			if err != ErrCodeInvalid && err != ErrDOBInvalid {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// The code is the digits typed, in order: spaces and dashes are all that is dropped.
		typed := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, code)
		if len(vf.Code) != 6 || strings.Trim(vf.Code, "0123456789") != "" || vf.Code != typed {
			t.Fatalf("accepted code %q from %q", vf.Code, code)
		}
		if vf.BirthDate.Year() < 1900 || vf.BirthDate.After(now) {
			t.Fatalf("accepted date %v from %q", vf.BirthDate, dob)
		}
	})
}
