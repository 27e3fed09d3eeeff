// Package xmppcheck proves, as a client, what a running Prosody serves: a
// minimal XMPP client written with the standard library (STARTTLS, SASL SCRAM,
// resource binding, IQ), and Verify, the self-test of `entrypoint verify`,
// which, on every domain of the plan, logs in as a throwaway account made over
// the admin socket, reads service discovery of the server, the account and
// the domain's components, checks each planned feature's modules and
// namespaces (pfe.Disco), does a few cheap round trips (a message archived and
// found again, an upload slot, a chat room created and destroyed) and deletes
// what it made.
//
// No XMPP library can be had for this project (the Go module proxy refuses
// them), so the client speaks only what the checks need.
package xmppcheck
