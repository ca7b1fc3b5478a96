package loadtest

import (
	"bufio"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// StatementCount is how often one statement ran and how long the server spent on it
// (parse, bind and execute summed).
type StatementCount struct {
	Statement string
	Executed  int
	ServerMS  float64
}

var durationLine = regexp.MustCompile(`duration: ([0-9.]+) ms  (?:(parse|bind|execute) [^:]*|statement): (.*)$`)

// CountStatements reads a PostgreSQL server log written with log_min_duration_statement = 0
// and counts the statements run in database db (the log_line_prefix must name the database,
// as Debian's default '%m [%p] %q%u@%d ' does). Statements are told apart by their first
// 120 characters; the most executed come first.
func CountStatements(log io.Reader, db string) ([]StatementCount, error) {
	byText := map[string]*StatementCount{}
	sc := bufio.NewScanner(log)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var current *StatementCount
	var currentExec bool
	var text strings.Builder
	flush := func() {
		if current == nil {
			return
		}
		key := strings.Join(strings.Fields(text.String()), " ")
		if len(key) > 120 {
			key = key[:120]
		}
		entry := byText[key]
		if entry == nil {
			entry = &StatementCount{Statement: key}
			byText[key] = entry
		}
		entry.ServerMS += current.ServerMS
		if currentExec {
			entry.Executed++
		}
		current = nil
	}
	for sc.Scan() {
		line := sc.Text()
		if current != nil && strings.HasPrefix(line, "\t") {
			// A multi-line statement continues on tab-indented lines.
			text.WriteString(" " + line)
			continue
		}
		flush()
		if !strings.Contains(line, "@"+db+" ") {
			continue
		}
		m := durationLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ms, _ := strconv.ParseFloat(m[1], 64)
		current, currentExec = &StatementCount{ServerMS: ms}, m[2] == "" || m[2] == "execute"
		text.Reset()
		text.WriteString(m[3])
	}
	flush()
	out := make([]StatementCount, 0, len(byText))
	for _, entry := range byText {
		out = append(out, *entry)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Executed != out[j].Executed {
			return out[i].Executed > out[j].Executed
		}
		return out[i].Statement < out[j].Statement
	})
	return out, sc.Err()
}
