// Package testenv runs a real Matrix homeserver (Dendrite, built from a pinned module) and real
// end-to-end-encryption-capable "staff" clients, for careline's integration tests and local demo.
//
// Everything binds to 127.0.0.1 only. Build and test with -tags goolm (pure-Go Olm).
package testenv
