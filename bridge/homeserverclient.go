package bridge

import (
	"net/http"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/matrix"
)

// homeserverIdleConns is how many idle connections to the homeserver careline keeps. Go's
// default is 2 per host, but the inbox's workers (inboxShards), the outbox and the portal all talk to
// the homeserver at once: with 2, most requests opened a new connection (a TLS handshake
// when the homeserver is remote) and left the old one in TIME_WAIT, measured as over a
// thousand at a time under load.
const homeserverIdleConns = 64

// keepHomeserverConnections makes bridgev2's appservice client keep enough idle connections
// to the homeserver for careline's concurrent senders.
func keepHomeserverConnections(br *bridgev2.Bridge) {
	mc, ok := br.Matrix.(*matrix.Connector)
	if !ok || mc.AS == nil || mc.AS.HTTPClient == nil {
		return
	}
	keepIdleConns(mc.AS.HTTPClient, homeserverIdleConns)
}

// keepIdleConns lets client keep n idle connections per host. A client on Go's default
// transport gets a copy of it; a transport of its own (a homeserver on a unix socket) is
// changed in place.
func keepIdleConns(client *http.Client, n int) {
	switch transport := client.Transport.(type) {
	case nil:
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns, t.MaxIdleConnsPerHost = max(t.MaxIdleConns, n), n
		client.Transport = t
	case *http.Transport:
		transport.MaxIdleConns, transport.MaxIdleConnsPerHost = max(transport.MaxIdleConns, n), max(transport.MaxIdleConnsPerHost, n)
	}
}
