package portal

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func reportOpsPerSecond(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkThreadView renders a 40-message thread for a signed-in patient (SQLite), with
// as many concurrent requests as GOMAXPROCS, like a server.
func BenchmarkThreadView(b *testing.B) {
	e := newEnv(b, openSQLite(b))
	for i := range 40 {
		e.be.threads["pA"] = append(e.be.threads["pA"], Message{ID: fmt.Sprintf("m%d", i), SenderName: "Dr. Lee",
			Body: strings.Repeat("Please take the medication twice a day. ", 5), SentAt: time.Unix(int64(i)*3600, 0)})
	}
	br := e.signIn("pA")
	cookie := (&http.Cookie{Name: sessionCookie, Value: br.cookies[sessionCookie]}).String()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "/thread", nil)
			req.Header.Set("Cookie", cookie)
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("status %d", rec.Code)
				return
			}
		}
	})
	reportOpsPerSecond(b)
}

// BenchmarkCodeVerify times POST /code/verify with the right code (a session is created
// each time); opening the link and sending the code are not timed (SQLite).
func BenchmarkCodeVerify(b *testing.B) {
	e := newEnv(b, openSQLite(b))
	link := e.link("pA")
	for b.Loop() {
		b.StopTimer()
		e.clock.Advance(DefaultResendCooldown)
		br := e.browser()
		br.open(link)
		code := br.sendCode("pA")
		form := url.Values{"csrf": {br.csrf("/verify")}, "code": {code}}.Encode()
		req := httptest.NewRequest(http.MethodPost, "/code/verify", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: linkCookie, Value: br.cookies[linkCookie]})
		rec := httptest.NewRecorder()
		b.StartTimer()
		e.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther {
			b.Fatalf("status %d", rec.Code)
		}
	}
	reportOpsPerSecond(b)
}
