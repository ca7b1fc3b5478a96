// Package template renders a clinic's message templates: "{name}" placeholders filled from
// the patient's record and values staff give at send time. A value that is missing is named
// and nothing is rendered, so a patient never reads "Hi {first_name}" or "Hi ,".
package template

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Template is one named message body with its placeholders, checked when it was parsed.
type Template struct {
	Name      string
	Body      string
	Sensitive bool // true: content goes by secure link; false: the admin marked it non-sensitive
	keys      []string
}

// Placeholders are the template's keys in the order they first appear.
func (t *Template) Placeholders() []string { return slices.Clone(t.keys) }

// Parse checks a template's body. A placeholder is "{" key "}" with a key of lower-case
// letters, digits and underscores; a lone brace or anything else between braces is an error
// naming the template, so a typo is found when careline starts, not by a patient.
func Parse(name, body string, sensitive bool) (*Template, error) {
	if strings.TrimSpace(body) == "" {
		return nil, fmt.Errorf("template %q has an empty body", name)
	}
	keys, err := scan(body, nil)
	if err != nil {
		return nil, fmt.Errorf("template %q: %w", name, err)
	}
	return &Template{Name: name, Body: body, Sensitive: sensitive, keys: keys}, nil
}

// MissingError names the values a template needs and was not given.
type MissingError struct {
	Template string
	Keys     []string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("template %q needs a value for %s", e.Template, strings.Join(e.Keys, ", "))
}

// Render fills every placeholder from values. An empty value counts as missing. When any is
// missing it returns a *MissingError listing all of them and no text.
func (t *Template) Render(values map[string]string) (string, error) {
	var missing []string
	for _, key := range t.keys {
		if strings.TrimSpace(values[key]) == "" {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		return "", &MissingError{Template: t.Name, Keys: missing}
	}
	var out strings.Builder
	_, err := scan(t.Body, func(literal, key string) {
		out.WriteString(literal)
		out.WriteString(values[key])
	})
	return out.String(), err
}

// Fill renders any text with placeholders (an auto-reply, a spoken message), for callers that
// have no named template. It fails like Render.
func Fill(name, body string, values map[string]string) (string, error) {
	t, err := Parse(name, body, false)
	if err != nil {
		return "", err
	}
	return t.Render(values)
}

// scan walks body, calling emit (when not nil) with each run of literal text and the key that
// follows it ("" after the last run). It returns the distinct keys in order of appearance.
func scan(body string, emit func(literal, key string)) ([]string, error) {
	var keys []string
	rest := body
	for {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			if emit != nil {
				emit(rest, "")
			}
			return keys, nil
		}
		if rest[open] == '}' {
			return nil, errors.New("has a '}' without a matching '{'")
		}
		end := strings.IndexAny(rest[open+1:], "{}")
		if end < 0 || rest[open+1+end] == '{' {
			return nil, fmt.Errorf("has a '{' that is not closed near %q", excerpt(rest[open:]))
		}
		key := rest[open+1 : open+1+end]
		if !validKey(key) {
			return nil, fmt.Errorf("has a malformed placeholder {%s}: use lower-case letters, digits and _ only, like {first_name}", key)
		}
		if !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
		if emit != nil {
			emit(rest[:open], key)
		}
		rest = rest[open+1+end+1:]
	}
}

func validKey(key string) bool {
	if key == "" || key[0] < 'a' || key[0] > 'z' {
		return false
	}
	for _, r := range key {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

func excerpt(s string) string {
	if r := []rune(s); len(r) > 20 {
		return string(r[:20]) + "…"
	}
	return s
}
