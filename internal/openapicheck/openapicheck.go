// Package openapicheck checks HTTP responses against an OpenAPI 3.0 description, for tests.
// It understands the subset careline's description uses: path templates, responses by status
// code, required headers, media types, and JSON Schema's $ref, type, enum, required,
// properties, additionalProperties, items, minItems, maxItems, minimum, maxLength, pattern
// and format date-time.
package openapicheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Doc is a parsed OpenAPI description.
type Doc struct {
	root  map[string]any
	paths []pathTemplate
}

type pathTemplate struct {
	template string
	re       *regexp.Regexp
	item     map[string]any
}

// Load parses an OpenAPI 3 description.
func Load(data []byte) (*Doc, error) {
	var root map[string]any
	if err := json.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if v, _ := root["openapi"].(string); !strings.HasPrefix(v, "3.") {
		return nil, fmt.Errorf("not an OpenAPI 3 document (openapi: %q)", v)
	}
	d := &Doc{root: root}
	paths, _ := root["paths"].(map[string]any)
	for template, item := range paths {
		pattern := "^" + regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(template), `[^/]+`) + "$"
		m, _ := item.(map[string]any)
		d.paths = append(d.paths, pathTemplate{template: template, re: regexp.MustCompile(pattern), item: m})
	}
	return d, nil
}

// Operations lists "METHOD template" for every operation, to check tests covered them.
func (d *Doc) Operations() []string {
	var out []string
	for _, p := range d.paths {
		for method := range p.item {
			if method != "parameters" {
				out = append(out, strings.ToUpper(method)+" "+p.template)
			}
		}
	}
	return out
}

// Check validates one response to method path and returns the operation it matched
// ("METHOD template") and every way the response departs from the description.
func (d *Doc) Check(method, path string, status int, header http.Header, body []byte) (string, error) {
	var op map[string]any
	var name string
	for _, p := range d.paths {
		if p.re.MatchString(path) {
			op, _ = p.item[strings.ToLower(method)].(map[string]any)
			name = method + " " + p.template
			break
		}
	}
	if op == nil {
		return "", fmt.Errorf("%s %s is not in the description", method, path)
	}
	responses, _ := op["responses"].(map[string]any)
	resp, ok := responses[strconv.Itoa(status)]
	if !ok {
		if resp, ok = responses["default"]; !ok {
			return name, fmt.Errorf("%s: status %d is not described", name, status)
		}
	}
	r := d.resolve(resp)
	var errs []error
	headers, _ := r["headers"].(map[string]any)
	for h, spec := range headers {
		if req, _ := d.resolve(spec)["required"].(bool); req && header.Get(h) == "" {
			errs = append(errs, fmt.Errorf("%s %d: required header %s missing", name, status, h))
		}
	}
	content, _ := r["content"].(map[string]any)
	if len(content) == 0 {
		if len(body) > 0 {
			errs = append(errs, fmt.Errorf("%s %d: a body where none is described", name, status))
		}
		return name, errors.Join(errs...)
	}
	mediaType, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	media, ok := content[mediaType].(map[string]any)
	if !ok {
		return name, errors.Join(append(errs, fmt.Errorf("%s %d: Content-Type %q is not described", name, status, mediaType))...)
	}
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		return name, errors.Join(append(errs, fmt.Errorf("%s %d: body is not JSON: %v", name, status, err))...)
	}
	if schema, ok := media["schema"]; ok {
		for _, e := range d.validate(schema, value, "body") {
			errs = append(errs, fmt.Errorf("%s %d: %s", name, status, e))
		}
	}
	return name, errors.Join(errs...)
}

// resolve follows a local $ref.
func (d *Doc) resolve(v any) map[string]any {
	m, _ := v.(map[string]any)
	for m != nil {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		var cur any = d.root
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cm, _ := cur.(map[string]any)
			cur = cm[part]
		}
		m, _ = cur.(map[string]any)
	}
	return m
}

func (d *Doc) validate(schemaRef any, v any, at string) []string {
	s := d.resolve(schemaRef)
	if s == nil {
		return nil
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || fmt.Sprint(e) == fmt.Sprint(v)
		}
		if !found {
			fail("%v is not one of %v", v, enum)
		}
	}
	switch s["type"] {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			fail("want an object, got %T", v)
			return errs
		}
		required, _ := s["required"].([]any)
		for _, r := range required {
			if _, ok := obj[r.(string)]; !ok {
				fail("required property %q missing", r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, val := range obj {
			if p, ok := props[k]; ok {
				errs = append(errs, d.validate(p, val, at+"."+k)...)
				continue
			}
			switch extra := s["additionalProperties"].(type) {
			case bool:
				if !extra {
					fail("property %q is not described", k)
				}
			case map[string]any:
				errs = append(errs, d.validate(extra, val, at+"."+k)...)
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			fail("want an array, got %T", v)
			return errs
		}
		if n, ok := s["minItems"].(float64); ok && float64(len(arr)) < n {
			fail("%d items, fewer than %v", len(arr), n)
		}
		if n, ok := s["maxItems"].(float64); ok && float64(len(arr)) > n {
			fail("%d items, more than %v", len(arr), n)
		}
		for i, item := range arr {
			errs = append(errs, d.validate(s["items"], item, fmt.Sprintf("%s[%d]", at, i))...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			fail("want a string, got %T", v)
			return errs
		}
		if n, ok := s["maxLength"].(float64); ok && float64(len([]rune(str))) > n {
			fail("longer than %v", n)
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			fail("%q does not match %s", str, p)
		}
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				fail("%q is not an RFC 3339 date-time", str)
			}
		}
	case "integer", "number":
		n, ok := v.(float64)
		if !ok || (s["type"] == "integer" && n != float64(int64(n))) {
			fail("want %s, got %v", s["type"], v)
			return errs
		}
		if m, ok := s["minimum"].(float64); ok && n < m {
			fail("%v is below the minimum %v", n, m)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			fail("want a boolean, got %T", v)
		}
	}
	return errs
}
