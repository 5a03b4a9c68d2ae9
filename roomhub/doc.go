// Package roomhub runs the room core: one actor per active room that takes
// the room's requests (package room) in order, applies MUC Light's rules
// with the store as the truth, writes history, and answers with replies and
// events handed to a Sink, which renders and delivers them.
//
// The actor, its mailbox and its history handling share the actor's
// unexported state, which is why they are one package of about 1,700 lines
// rather than three.
//
// It must never parse or build XML, import a codec, block on a session, or
// keep per-session state beyond a room's bounded set of XEP-0045 occupants.
package roomhub
