package template

import (
	"fmt"
	"strings"
)

// ParseArgs reads staff's "key=value" arguments: values with spaces in double quotes
// (date="Tue, Dec 1"), a backslash escaping a quote inside them. A word without "=" is an
// error naming it, as is a key given twice.
func ParseArgs(args string) (map[string]string, error) {
	values := map[string]string{}
	words, err := splitQuoted(args)
	if err != nil {
		return nil, err
	}
	for _, w := range words {
		key, value, ok := strings.Cut(w, "=")
		if !ok || !validKey(key) {
			return nil, fmt.Errorf("%q is not key=value (keys are lower-case, like first_name=Ana)", w)
		}
		if _, dup := values[key]; dup {
			return nil, fmt.Errorf("%s is given twice", key)
		}
		values[key] = value
	}
	return values, nil
}

// splitQuoted splits on spaces outside double quotes and removes the quotes.
func splitQuoted(s string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inQuote bool
		started bool
	)
	runes := []rune(s)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case r == '\\' && inQuote && i+1 < len(runes) && (runes[i+1] == '"' || runes[i+1] == '\\'):
			i++
			cur.WriteRune(runes[i])
		case r == '"' || r == '“' || r == '”':
			// Matrix clients often turn typed quotes into smart quotes.
			inQuote = !inQuote
			started = true
		case (r == ' ' || r == '\t' || r == '\n') && !inQuote:
			if started {
				words = append(words, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("a double quote is not closed in %q", s)
	}
	if started {
		words = append(words, cur.String())
	}
	return words, nil
}
