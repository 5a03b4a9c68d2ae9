// Package rooms is the group-chat service as the router sees it: every
// stanza addressed to a MUC Light service or one of its rooms comes here,
// is decoded by the codec of its dialect (muclight, muc, mam) into a plain
// request for the room core (roomhub), and every reply and event the core
// emits is rendered here for each recipient session, in the dialect that
// session speaks in that room: XEP-0045 for the sessions that entered it
// with presence, MUC Light for all others (or XEP-0045 for everyone in
// legacy mode). It also answers what needs no room actor (disco, blocking,
// the privacy list) and keeps the index of XEP-0045 occupancies that ends
// them with their sessions. Its exported aliases are the service's public
// vocabulary, so the server and the tests speak one package.
//
// It must never apply a room rule (that is the core's), block a room on a
// slow recipient, keep rooms in package variables, or answer a failed
// store call with silence.
package rooms
