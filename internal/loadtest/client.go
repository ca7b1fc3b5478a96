package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// webhookClient posts webhooks over keep-alive HTTP/1.1 connections, each used by one sender
// at a time. net/http's Transport runs a reader and a writer goroutine per connection and hands
// every request and response between them and the caller; the load tool shares the CPU with
// the bridge it measures, and those hand-offs were a tenth of its CPU per message. Here the
// sender writes the request in one piece and reads the response with net/http's own parser.
type webhookClient struct {
	ctx   context.Context
	addr  string
	hooks *Webhooks
	idle  chan *webhookConn
}

type webhookConn struct {
	conn net.Conn
	br   *bufio.Reader
	used bool // it carried a request before, so the bridge may have closed it since
	stop func() bool
}

// newWebhookClient keeps up to maxIdle connections open between requests. ctx ending aborts
// requests in flight.
func newWebhookClient(ctx context.Context, hooks *Webhooks, webhookURL string, maxIdle int) (*webhookClient, error) {
	u, err := url.Parse(webhookURL)
	if err != nil {
		return nil, err
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &webhookClient{ctx: ctx, addr: addr, hooks: hooks, idle: make(chan *webhookConn, maxIdle)}, nil
}

func (c *webhookClient) dial() (*webhookConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(c.ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	wc := &webhookConn{conn: conn, br: bufio.NewReaderSize(conn, 4096)}
	wc.stop = context.AfterFunc(c.ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return wc, nil
}

func (wc *webhookConn) close() {
	wc.stop()
	_ = wc.conn.Close()
}

// Post sends one webhook and reads the bridge's answer, returning its HTTP status.
func (c *webhookClient) Post(from, body string) (int, error) {
	bufp := requestBufs.Get().(*[]byte)
	defer requestBufs.Put(bufp)
	*bufp = c.hooks.AppendRaw((*bufp)[:0], from, body)
	var wc *webhookConn
	select {
	case wc = <-c.idle:
	default:
	}
	for {
		if wc == nil {
			var err error
			if wc, err = c.dial(); err != nil {
				return 0, err
			}
		}
		status, keep, err := wc.roundTrip(*bufp)
		if err != nil {
			wc.close()
			// The bridge closed this connection while it was idle, so the request was not
			// seen: send the same bytes on a new one (a bridge that did see it dedupes the SID).
			if wc.used && errors.Is(err, errClosedBeforeAnswer) {
				wc = nil
				continue
			}
			return 0, err
		}
		wc.used = true
		if !keep {
			wc.close()
			return status, nil
		}
		select {
		case c.idle <- wc:
		default:
			wc.close()
		}
		return status, nil
	}
}

var requestBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

var errClosedBeforeAnswer = errors.New("connection closed before any answer")

func (wc *webhookConn) roundTrip(request []byte) (status int, keep bool, err error) {
	if _, err = wc.conn.Write(request); err != nil {
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			err = fmt.Errorf("%w: %w", errClosedBeforeAnswer, err)
		}
		return 0, false, err
	}
	if _, err = wc.br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			err = fmt.Errorf("%w: %w", errClosedBeforeAnswer, err)
		}
		return 0, false, err
	}
	resp, err := http.ReadResponse(wc.br, nil)
	if err != nil {
		return 0, false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, false, err
	}
	return resp.StatusCode, !resp.Close, nil
}

// Close closes the idle connections.
func (c *webhookClient) Close() {
	for {
		select {
		case wc := <-c.idle:
			wc.close()
		default:
			return
		}
	}
}
