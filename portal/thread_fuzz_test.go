package portal

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzThreadPaging: the thread page's "before" parameter (its "earlier messages" link) picks
// the messages a page shows. For any thread and any parameter, a page holds at least one
// message, as many as fit the size budget (over it only when one message alone is),
// and following the earlier links from the newest page shows every message once, in order.
func FuzzThreadPaging(f *testing.F) {
	plainBody, markupBody := strings.Repeat("a", 255*80), strings.Repeat("<", 255*2)
	f.Add([]byte{0, 1, 255, 3}, "2")
	f.Add([]byte{}, "")
	f.Add([]byte(strings.Repeat("\xc8", 40)), "39")
	f.Add([]byte{5, 5, 5}, "x")
	f.Fuzz(func(t *testing.T, sizes []byte, before string) {
		// Byte b makes a message whose body is 8b bytes, 80b from 200 on (16 to 20 KB, past
		// maxBodyBytes), or, for a multiple of 3, 2b "<" that escape to four times their size;
		// a multiple of 7 is withdrawn and one of 5 has a file. (Small: every byte of every
		// body is scanned a few times per run.)
		sizes = sizes[:min(len(sizes), 100)] // pages enough even of the smallest messages
		msgs := make([]Message, len(sizes))
		for i, b := range sizes {
			body := plainBody[:int(b)*8]
			if b >= 200 {
				body = plainBody[:int(b)*80]
			}
			if b%3 == 0 {
				body = markupBody[:int(b)*2]
			}
			msgs[i] = Message{ID: strconv.Itoa(i), SenderName: "Dr. <Lee>", Body: body, Withdrawn: b%7 == 0}
			if b%5 == 0 {
				msgs[i].Attachments = []Attachment{{ID: "a" + strconv.Itoa(i), FileName: strings.Repeat("ñ", int(b)%100)}}
			}
		}
		sum := make([]int, len(msgs)+1) // sum[i] is the cost of msgs[:i]
		for i, m := range msgs {
			sum[i+1] = sum[i] + messageCost(m)
		}
		cost := func(from, to int) int { return sum[to] - sum[from] }
		checkPage := func(param string, wantEnd int) int {
			start, end := pageOf(msgs, param)
			if end != wantEnd || start < 0 || start > end || (end > 0 && start == end) {
				t.Fatalf("before=%q over %d messages: page [%d, %d), want it to end at %d", param, len(msgs), start, end, wantEnd)
			}
			if end-start > 1 && cost(start, end) > threadBudget {
				t.Fatalf("before=%q: page [%d, %d) costs %d, over %d", param, start, end, cost(start, end), threadBudget)
			}
			if start > 0 && cost(start-1, end) <= threadBudget {
				t.Fatalf("before=%q: page [%d, %d) leaves out message %d, which fits", param, start, end, start-1)
			}
			return start
		}

		wantEnd := len(msgs)
		if i, err := strconv.Atoi(before); err == nil && i >= 0 && i < len(msgs) && strconv.Itoa(i) == before {
			wantEnd = i
		}
		checkPage(before, wantEnd)

		// From the newest page, each earlier page ends where the last one started.
		start := checkPage("", len(msgs))
		for start > 0 {
			start = checkPage(msgs[start].ID, start)
		}
	})
}
