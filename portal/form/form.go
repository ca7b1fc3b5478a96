// Package form parses and validates the portal's forms. Errors carry a locale key, so the
// handler can show them in the patient's language.
package form

// Error is a validation failure the patient can fix. Key names a message in package locale.
type Error struct {
	Key string
}

func (e *Error) Error() string { return "form: " + e.Key }

// The validation errors, by locale key.
var (
	ErrCodeInvalid   = &Error{Key: "form.code.invalid"}
	ErrDOBInvalid    = &Error{Key: "form.dob.invalid"}
	ErrReplyEmpty    = &Error{Key: "reply.empty"}
	ErrReplyTooLong  = &Error{Key: "reply.too_long"}
	ErrReplyInvalid  = &Error{Key: "reply.invalid"}
	ErrUploadMissing = &Error{Key: "upload.missing"}
	ErrUploadTooBig  = &Error{Key: "upload.too_large"}
	ErrUploadType    = &Error{Key: "upload.bad_type"}
)

// CSRFField is the name of the hidden anti-CSRF field in every form.
const CSRFField = "csrf"
