package template

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRefusesMalformedPlaceholders(t *testing.T) {
	for _, body := range []string{
		"Hi {first name}", "Hi {First}", "Hi {}", "Hi {first_name", "Hi first_name}", "Hi {{first_name}}", "{1st}",
	} {
		_, err := Parse("lab_ready", body, true)
		if err == nil {
			t.Errorf("%q: accepted", body)
		} else if !strings.Contains(err.Error(), `"lab_ready"`) {
			t.Errorf("%q: error does not name the template: %v", body, err)
		}
	}
	tpl, err := Parse("ok", "Hi {first_name}, {clinic} has your {what} ready. {first_name}!", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tpl.Placeholders(), ","); got != "first_name,clinic,what" {
		t.Errorf("placeholders %s", got)
	}
}

func TestRenderNamesEveryMissingValueAndRendersNothing(t *testing.T) {
	tpl, err := Parse("lab_ready", "Hi {first_name}, your {what} from {clinic} is ready.", true)
	if err != nil {
		t.Fatal(err)
	}
	text, err := tpl.Render(map[string]string{"clinic": "Sunrise Clinic", "first_name": "  "})
	var missing *MissingError
	if !errors.As(err, &missing) {
		t.Fatalf("err %v", err)
	}
	if text != "" || strings.Join(missing.Keys, ",") != "first_name,what" {
		t.Errorf("text %q, missing %v", text, missing.Keys)
	}
	text, err = tpl.Render(map[string]string{"clinic": "Sunrise Clinic", "first_name": "Ana", "what": "{x} result"})
	if err != nil || text != "Hi Ana, your {x} result from Sunrise Clinic is ready." {
		t.Errorf("%q %v", text, err)
	}
}

func TestParseArgsQuotedValues(t *testing.T) {
	got, err := ParseArgs(`date="Tue, Dec 1" time=9:30 note="say \"hi\"" empty=""`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"date": "Tue, Dec 1", "time": "9:30", "note": `say "hi"`, "empty": ""}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if got, err := ParseArgs(`date=“Tue, Dec 1”`); err != nil || got["date"] != "Tue, Dec 1" {
		t.Errorf("smart quotes: %v %v", got, err)
	}
	for _, bad := range []string{`date="Tue`, `hello`, `Date=1`, `a=1 a=2`} {
		if _, err := ParseArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCostNamesTheCharacterThatForcedUCS2(t *testing.T) {
	for _, tc := range []struct {
		text     string
		encoding string
		segments int
		forcing  rune
	}{
		{strings.Repeat("a", 160), GSM7, 1, 0},
		{strings.Repeat("a", 161), GSM7, 2, 0},
		{strings.Repeat("a", 153*3), GSM7, 3, 0},
		{strings.Repeat("€", 80), GSM7, 1, 0}, // two septets each
		{strings.Repeat("€", 81), GSM7, 2, 0}, // 162 septets
		{strings.Repeat("a", 70), GSM7, 1, 0},
		{"Your results are ready 🙂", UCS2, 1, '🙂'},
		{strings.Repeat("a", 69) + "’", UCS2, 1, '’'},
		{strings.Repeat("a", 70) + "’", UCS2, 2, '’'},
		{strings.Repeat("a", 69) + "🙂", UCS2, 2, '🙂'}, // an emoji is two UTF-16 units
	} {
		got := Cost(tc.text)
		if got.Encoding != tc.encoding || got.Segments != tc.segments || got.Forcing != tc.forcing {
			t.Errorf("%.20q…: got %+v", tc.text, got)
		}
	}
	if s := Cost("We’re closed").String(); s != "1 segment, UCS-2 (forced by the smart quote ’ — use ')" {
		t.Errorf("%s", s)
	}
	if s := Cost(strings.Repeat("x", 200)).String(); s != "2 segments, GSM-7" {
		t.Errorf("%s", s)
	}
}

func TestSetReportsEveryBadTemplate(t *testing.T) {
	_, err := NewSet(map[string]Definition{
		"ok":       {Body: "Hi {first_name}"},
		"broken":   {Body: "Hi {first name}"},
		"Bad Name": {Body: "x"},
		"empty":    {Body: " "},
	})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`"broken"`, `"Bad Name"`, `"empty"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v does not name %s", err, want)
		}
	}
	set, err := NewSet(map[string]Definition{"b": {Body: "{clinic} closes early today."}, "a": {Body: "x"}})
	if err != nil || strings.Join(set.Names(), ",") != "a,b" {
		t.Fatalf("%v %v", set.Names(), err)
	}
	if c := set.Get("b").Preview(map[string]string{"clinic": strings.Repeat("c", 150)}); c.Segments != 2 {
		t.Errorf("preview %+v", c)
	}
}
