// Package locale holds the portal's words in English and Spanish and picks a language
// from the browser's Accept-Language header.
package locale

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Printer translates message keys into one language.
type Printer struct {
	Lang     string
	messages map[string]string
	months   [12]string
}

var printers = map[string]*Printer{
	"en": {Lang: "en", messages: english, months: [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}},
	"es": {Lang: "es", messages: spanish, months: [12]string{"ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"}},
}

// Get returns the printer for lang ("en" or "es"), English for anything else.
func Get(lang string) *Printer {
	if p, ok := printers[lang]; ok {
		return p
	}
	return printers["en"]
}

// T returns the message for key, formatted with args like fmt.Sprintf. Unknown keys fall
// back to English, then to the key itself, so a missing translation never breaks a page.
func (p *Printer) T(key string, args ...any) string {
	msg, ok := p.messages[key]
	if !ok {
		if msg, ok = english[key]; !ok {
			return key
		}
	}
	if len(args) == 0 {
		return msg
	}
	return fmt.Sprintf(msg, args...)
}

// Time formats t for a message list: "Mar 5, 3:04 PM" in English, "5 mar, 15:04" in Spanish.
func (p *Printer) Time(t time.Time) string {
	month := p.months[t.Month()-1]
	if p.Lang == "es" {
		return fmt.Sprintf("%d %s %d, %s", t.Day(), month, t.Year(), t.Format("15:04"))
	}
	return fmt.Sprintf("%s %d, %d, %s", month, t.Day(), t.Year(), t.Format("3:04 PM"))
}

// Size formats a byte count for people, in binary units: "812 KB", "3.4 MB", "10 MB".
func (p *Printer) Size(n int64) string {
	var s string
	switch {
	case n < 1024:
		s = strconv.FormatInt(n, 10) + " B"
	case n < 1024*1024:
		s = strconv.FormatInt((n+512)/1024, 10) + " KB"
	default:
		s = strconv.FormatFloat(float64(n)/(1024*1024), 'f', 1, 64)
		s = strings.TrimSuffix(s, ".0") + " MB"
	}
	if p.Lang == "es" {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

// Negotiate picks "en" or "es" from an Accept-Language header value: the supported
// language with the highest weight, English when nothing matches.
func Negotiate(header string) string {
	best, bestQ := "en", 0.0
	for _, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			q = f
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if _, ok := printers[primary]; ok && q > bestQ {
			best, bestQ = primary, q
		}
	}
	return best
}
