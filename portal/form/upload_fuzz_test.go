package form

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzUploadForm: whatever file name and content a browser sends, an accepted upload has a
// type sniffed from its bytes (never the name), holds exactly the bytes sent, and a file name
// that is one short, printable path element.
func FuzzUploadForm(f *testing.F) {
	f.Add("scan.pdf", []byte("%PDF-1.7 rest"), "tok")
	f.Add("../../etc/passwd.png", []byte("\x89PNG\r\n\x1a\n"), "")
	f.Add("photo\u202e gpj.exe", []byte("\xff\xd8\xff\xe0"), "x")
	f.Add("", []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), "t")
	f.Add(strings.Repeat("é", 300), []byte("MZ\x90\x00"), "t")
	f.Fuzz(func(t *testing.T, fileName string, data []byte, csrf string) {
		const maxBytes = 4096
		fields := map[string]string{CSRFField: csrf}
		uf, err := ReadUpload(multipartRequest(t, fields, fileName, data), maxBytes)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrUploadTooBig) {
				t.Fatalf("unexpected error %v", err)
			}
			if errors.Is(err, ErrUploadTooBig) && len(data) <= maxBytes {
				t.Fatalf("%d bytes refused as too big", len(data))
			}
			return
		}
		if err = uf.Validate(); err != nil {
			return
		}
		if uf.ContentType == "" || uf.ContentType != Sniff(data) {
			t.Fatalf("accepted as %q, the bytes say %q", uf.ContentType, Sniff(data))
		}
		if !bytes.Equal(uf.Data, data) {
			t.Fatal("the stored bytes differ from those sent")
		}
		name := uf.FileName
		if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > 100 || strings.ContainsAny(name, `/\"`) ||
			strings.HasPrefix(name, ".") {
			t.Fatalf("file name %q (from %q) is not one clean path element", name, fileName)
		}
		if exts := extensions[uf.ContentType]; !slices.ContainsFunc(exts, func(ext string) bool { return strings.HasSuffix(strings.ToLower(name), ext) }) {
			t.Fatalf("file name %q does not end in an extension of %s", name, uf.ContentType)
		}
		for _, r := range name {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("file name %q keeps control or format character %U", name, r)
			}
		}
	})
}
