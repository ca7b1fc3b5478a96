package template

import (
	"fmt"
	"slices"
	"strings"
)

// Set is the clinic's templates by name.
type Set struct {
	byName map[string]*Template
}

// Definition is one template as an admin writes it in the config.
type Definition struct {
	Body      string
	Sensitive bool
}

// NewSet parses every definition and reports all problems at once, each naming its template.
func NewSet(defs map[string]Definition) (*Set, error) {
	s := &Set{byName: make(map[string]*Template, len(defs))}
	var problems []string
	for name, def := range defs {
		if !validKey(name) {
			problems = append(problems, fmt.Sprintf("template name %q: use lower-case letters, digits and _ only", name))
			continue
		}
		t, err := Parse(name, def.Body, def.Sensitive)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		s.byName[name] = t
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return s, nil
}

// Get returns the named template, or nil.
func (s *Set) Get(name string) *Template {
	if s == nil {
		return nil
	}
	return s.byName[name]
}

// Names lists the templates alphabetically.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.byName))
	for name := range s.byName {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// PreviewValueLength is the length assumed for each value not known in advance.
const PreviewValueLength = 10

// Preview estimates what a send of t costs, with known values filled in (the clinic's name)
// and every other placeholder assumed PreviewValueLength plain letters long.
func (t *Template) Preview(known map[string]string) SMSCost {
	values := make(map[string]string, len(t.keys))
	for _, key := range t.keys {
		if v, ok := known[key]; ok && v != "" {
			values[key] = v
		} else {
			values[key] = strings.Repeat("x", PreviewValueLength)
		}
	}
	text, _ := t.Render(values)
	return Cost(text)
}
