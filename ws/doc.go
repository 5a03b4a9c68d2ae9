// Package ws is the XMPP-over-WebSocket endpoint of RFC 7395: the HTTP
// handshake, the <open/>/<close/> framing, SASL, resource binding, the
// session table and the routing of stanzas between local sessions and the
// services (such as MUC Light) registered for other domains.
//
// Each session has one reader goroutine (the HTTP handler's) and a writer
// goroutine that exists only while the session has something to send. Its
// outgoing queue is bounded in bytes; above a high-water mark the session
// that caused a delivery waits before its next stanza is read, and a session
// is closed only when its writer stops making progress or its backlog passes
// the bound (docs/02_send_queues.md). With XEP-0198 stream management a
// session whose connection drops stays registered, detached, until a new
// connection resumes it or its timeout passes (sm.go,
// docs/11_stream_management.md).
//
// The package must never block a caller on a slow client, never keep
// per-session state in package variables, and never let bad input panic the
// process: every protocol violation ends in a stanza or stream error.
package ws
