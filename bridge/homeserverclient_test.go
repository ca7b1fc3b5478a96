package bridge

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// TestKeepIdleConnsReusesConnections sends rounds of concurrent requests, as the inbox's
// workers do, and counts the connections the server saw opened: with Go's default of two
// idle connections per host, most requests of every round would open a new one.
func TestKeepIdleConnsReusesConnections(t *testing.T) {
	var opened atomic.Int64
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	server.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			opened.Add(1)
		}
	}
	server.Start()
	defer server.Close()

	const concurrent, rounds = 16, 20
	client := &http.Client{}
	keepIdleConns(client, homeserverIdleConns)
	for range rounds {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range concurrent {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				resp, err := client.Get(server.URL)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}()
		}
		close(start)
		wg.Wait()
	}
	// One connection per concurrent request is all that is needed (Go's transport may dial
	// a few more when a request finds no idle connection and one frees up meanwhile);
	// without kept idle connections every round opens up to concurrent-2 new ones again.
	if n := opened.Load(); n > 2*concurrent {
		t.Fatalf("%d connections opened for %d rounds of %d concurrent requests; want at most %d", n, rounds, concurrent, 2*concurrent)
	}
}

func TestKeepIdleConnsKeepsOwnTransport(t *testing.T) {
	own := &http.Transport{MaxIdleConnsPerHost: 1}
	client := &http.Client{Transport: own}
	keepIdleConns(client, 64)
	if client.Transport != own || own.MaxIdleConnsPerHost != 64 || own.MaxIdleConns < 64 {
		t.Fatalf("transport %p (own %p), idle per host %d, idle %d", client.Transport, own, own.MaxIdleConnsPerHost, own.MaxIdleConns)
	}
}
