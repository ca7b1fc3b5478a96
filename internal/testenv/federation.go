package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Federating homeservers.
//
// Matrix servers find each other by server name. A name with an explicit port ("127.0.0.1:PORT")
// is used as it is: no .well-known lookup, no SRV record, no DNS (the resolution algorithm's
// steps 1 and 2), so two Dendrites on loopback can federate without touching the machine's
// resolver. Federation always speaks HTTPS, so each server serves the federation API with a
// certificate made here, on the port its name carries; the client-server API stays on plain
// HTTP on another port, as for a single server.
//
// Test-only relaxations, none of which a real deployment should copy:
//   - federation_api.disable_tls_validation: the certificates are self-signed;
//   - federation_api.deny_networks emptied: by default Dendrite refuses to federate with
//     loopback and private addresses (a guard against server-side request forgery);
//   - federation_api.key_perspectives emptied (already for every test server): signing keys
//     are fetched straight from the origin server, never through matrix.org.

// FederationServerName reserves a free loopback port and returns the server name a federating
// test homeserver must use: "127.0.0.1:PORT". Pass it as HomeserverOptions.ServerName with
// Federation set. Another process could take the port before Dendrite binds it; StartHomeserver
// then fails with Dendrite's "address already in use".
func FederationServerName() (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", port), nil
}

// federationAddr is where the federation listener binds: the server name itself, which
// FederationServerName made a 127.0.0.1 address.
func (hs *Homeserver) federationAddr() (string, error) {
	host, port, err := net.SplitHostPort(hs.ServerName)
	if err != nil || host != "127.0.0.1" || port == "" {
		return "", fmt.Errorf("a federating test homeserver needs a server name like 127.0.0.1:PORT (see FederationServerName), not %q", hs.ServerName)
	}
	return hs.ServerName, nil
}

// FederationURL is the https:// base URL other servers reach this one at ("" without federation).
func (hs *Homeserver) FederationURL() string {
	if !hs.opts.Federation {
		return ""
	}
	return "https://" + hs.ServerName
}

// enableFederation edits the generated config so the server federates on loopback, and writes
// the TLS certificate its federation listener serves.
func (hs *Homeserver) enableFederation(cfg map[string]any) error {
	if _, err := hs.federationAddr(); err != nil {
		return err
	}
	if err := writeSelfSignedCert(hs.tlsCertPath(), hs.tlsKeyPath()); err != nil {
		return err
	}
	for _, e := range []struct {
		path  []string
		value any
	}{
		{[]string{"global", "disable_federation"}, false},
		{[]string{"federation_api", "disable_tls_validation"}, true},
		{[]string{"federation_api", "deny_networks"}, []any{}},
		{[]string{"federation_api", "allow_networks"}, []any{"127.0.0.1/32"}},
		{[]string{"federation_api", "key_perspectives"}, []any{}},
		{[]string{"federation_api", "prefer_direct_fetch"}, true},
		// A partner that is briefly down should not be backed off for minutes in a test.
		{[]string{"federation_api", "send_max_retries"}, 8},
	} {
		if err := setPath(cfg, e.path, e.value); err != nil {
			return err
		}
	}
	return nil
}

// federationArgs are Dendrite's flags for the TLS listener, empty without federation.
func (hs *Homeserver) federationArgs() []string {
	if !hs.opts.Federation {
		return nil
	}
	addr, _ := hs.federationAddr() // checked in enableFederation
	return []string{"-https-bind-address", addr, "-tls-cert", hs.tlsCertPath(), "-tls-key", hs.tlsKeyPath()}
}

func (hs *Homeserver) tlsCertPath() string { return filepath.Join(hs.Dir, "federation.crt") }
func (hs *Homeserver) tlsKeyPath() string  { return filepath.Join(hs.Dir, "federation.key") }

// waitFederationReady waits until the server's signing keys are served over TLS on its
// federation port, which is what a remote server asks for first.
func (hs *Homeserver) waitFederationReady(ctx context.Context, exited <-chan struct{}) error {
	if !hs.opts.Federation {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // the test's own self-signed certificate
	}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.FederationURL()+"/_matrix/key/v2/server", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("dendrite exited while starting its federation listener")
		case <-ctx.Done():
			return fmt.Errorf("dendrite's federation API did not answer on %s: %w", hs.FederationURL(), ctx.Err())
		case <-tick.C:
		}
	}
}

// writeSelfSignedCert writes a P-256 certificate for 127.0.0.1 and localhost, valid for a day.
func writeSelfSignedCert(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "careline test homeserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err = os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
}
