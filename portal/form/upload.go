package form

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// UploadForm is the thread page's file form (POST /upload, multipart).
type UploadForm struct {
	CSRF        string
	FileName    string
	Data        []byte
	ContentType string // sniffed from Data by Validate, never taken from the request
}

// ErrBadRequest means the request was not a multipart form at all.
var ErrBadRequest = errors.New("form: not a multipart form")

const (
	maxFieldBytes = 1024
	maxParts      = 8
)

// ReadUpload reads the multipart form from r into memory (never into temporary files: the
// file is patient data). A file larger than maxBytes gives ErrUploadTooBig; the caller
// should also wrap r.Body in http.MaxBytesReader.
func ReadUpload(r *http.Request, maxBytes int64) (*UploadForm, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, ErrBadRequest
	}
	f := &UploadForm{}
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return f, nil
		} else if err != nil {
			return nil, tooBigOr(err, ErrBadRequest)
		} else if i >= maxParts {
			return nil, ErrBadRequest
		}
		switch part.FormName() {
		case CSRFField:
			f.CSRF, err = readField(part)
		case "file":
			if part.FileName() == "" && f.Data == nil {
				// A browser sends an empty part when no file was chosen.
				_, err = io.Copy(io.Discard, io.LimitReader(part, 1))
				break
			}
			f.FileName = part.FileName()
			f.Data, err = io.ReadAll(io.LimitReader(part, maxBytes+1))
			if err == nil && int64(len(f.Data)) > maxBytes {
				err = ErrUploadTooBig
			}
		default:
			_, err = readField(part)
		}
		part.Close()
		if err != nil {
			return nil, tooBigOr(err, ErrBadRequest)
		}
	}
}

func readField(p *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, maxFieldBytes+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxFieldBytes {
		return "", ErrBadRequest
	}
	return string(b), nil
}

func tooBigOr(err, other error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || errors.Is(err, ErrUploadTooBig) {
		return ErrUploadTooBig
	}
	return other
}

// Validate checks that a file was chosen and that its content (not its name or declared
// type) is a JPEG, PNG, HEIC or PDF, and cleans up the file name.
func (f *UploadForm) Validate() error {
	if len(f.Data) == 0 {
		return ErrUploadMissing
	}
	f.ContentType = Sniff(f.Data)
	if f.ContentType == "" {
		return ErrUploadType
	}
	f.FileName = CleanFileName(f.FileName, f.ContentType)
	return nil
}

// Sniff returns the content type of data if it is one the portal accepts (image/jpeg,
// image/png, image/heic, application/pdf), judged by its first bytes, and "" otherwise.
func Sniff(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("\xff\xd8\xff")):
		return "image/jpeg"
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png"
	case bytes.HasPrefix(data, []byte("%PDF-")):
		return "application/pdf"
	case isHEIC(data):
		return "image/heic"
	}
	return ""
}

var heicBrands = []string{"heic", "heix", "heim", "heis", "hevc", "hevx"}

// isHEIC reads the ISO-BMFF "ftyp" box: HEIC if the major brand or a compatible brand is
// one of HEIF's HEVC brands.
func isHEIC(data []byte) bool {
	if len(data) < 16 || string(data[4:8]) != "ftyp" {
		return false
	}
	size := int(binary.BigEndian.Uint32(data[0:4]))
	if size < 16 || size > len(data) || size > 4096 {
		return false
	}
	brands := [][]byte{data[8:12]} // major brand; data[12:16] is the minor version
	for i := 16; i+4 <= size; i += 4 {
		brands = append(brands, data[i:i+4])
	}
	for _, b := range brands {
		for _, h := range heicBrands {
			if string(b) == h {
				return true
			}
		}
	}
	return false
}

// extensions lists, for each type the portal accepts or serves, the file name endings that
// type goes by; the first is added to a name that ends otherwise.
var extensions = map[string][]string{
	"image/jpeg":      {".jpg", ".jpeg", ".jfif"},
	"image/png":       {".png"},
	"image/heic":      {".heic", ".heif"},
	"image/gif":       {".gif"},
	"image/webp":      {".webp"},
	"application/pdf": {".pdf"},
}

// Served reports whether the portal serves a file of this type as that type; any other is
// served as application/octet-stream.
func Served(contentType string) bool {
	_, ok := extensions[contentType]
	return ok
}

// CleanFileName keeps the last path element of name without control or format
// characters, at most 100 characters, and falls back to "upload" plus the type's extension.
// For a known type the name ends in one of its extensions: "lab-results.bat" that is a PDF
// becomes "lab-results.bat.pdf", so the file opens as what it is.
func CleanFileName(name, contentType string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.ToValidUTF8(name, "")
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '"' {
			return -1
		}
		return r
	}, name)
	// Dots and spaces in any order at either end: " .bashrc" must not become a hidden file.
	name = strings.TrimFunc(name, func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
	exts := extensions[contentType]
	if name == "" {
		name = "upload"
	}
	if len(exts) > 0 && !slices.ContainsFunc(exts, func(ext string) bool { return strings.HasSuffix(strings.ToLower(name), ext) }) {
		name += exts[0]
	}
	for utf8.RuneCountInString(name) > 100 {
		// Shorten before the extension, which must stay.
		ext := ""
		if len(exts) > 0 {
			ext = name[strings.LastIndexByte(name, '.'):]
		}
		stem := name[:len(name)-len(ext)]
		_, size := utf8.DecodeLastRuneInString(stem)
		name = stem[:len(stem)-size] + ext
	}
	return name
}
