// Package limits holds the flood and flow limits of the room service: the
// per-room limiter of Prosody's mod_muc_limits, create_rate, the caps on
// concurrent history queries, and the token Bucket they share.
//
// It must never keep a clock of its own (time is passed in, so tests need
// none) nor render a stanza error: it answers with a Refusal, which the
// room core words for the client.
package limits
